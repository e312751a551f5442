package sysfstest

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/irqshift/irqshift/sysfs"
	"golang.org/x/sys/unix"
)

// ipiNames are the arm64 IPI rows of /proc/interrupts
// (arch/arm64/kernel/smp.c, ipi_types), as printed by the measured kernels.
var ipiNames = map[Version][]string{
	Kernel61: {
		"Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
		"CPU stop (for crash dump) interrupts", "Timer broadcast interrupts",
		"IRQ work interrupts", "CPU wake-up interrupts",
	},
	Kernel612: {
		"Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
		"CPU stop NMIs", "Timer broadcast interrupts", "IRQ work interrupts",
		"CPU backtrace interrupts", "KGDB roundup interrupts",
	},
}

func (s *Sim) mkdirs() (sysfs.FS, error) {
	for _, dir := range []string{
		filepath.Join(s.root, "proc", "irq"),
		filepath.Join(s.root, "sys", "kernel", "irq"),
		filepath.Join(s.root, "sys", "devices", "system", "cpu"),
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return sysfs.FS{}, err
		}
	}
	s.files, s.dirs = map[string]fileState{}, map[string]bool{}
	s.seed = maphash.MakeSeed()
	s.umask = probeUmask(s.root)
	s.asRoot = os.Geteuid() == 0
	return sysfs.NewFS(filepath.Join(s.root, "proc"), filepath.Join(s.root, "sys"))
}

// writeFile replaces the file at rel (relative to Root) with content and
// gives it mode, whatever mode it had.
//
// A big tree is tens of thousands of files, rewritten on every hotplug, so
// the simulator remembers the directories it made and, for each file, the
// mode it gave it and a hash of what it wrote. It writes with the fewest
// system calls (open, write, close; fchmod only where the umask or an
// earlier mode is in the way) and leaves alone a read-only file whose
// content has not changed. The files an admin writes (smp_affinity,
// smp_affinity_list, cpuN/online) are always rewritten, as they always
// were: a test may write them behind the simulator's back (as root even
// the 0444 ones), and the next change of state puts the kernel's view
// back. Whatever else changed the tree meanwhile (a file or directory
// removed, a file the simulator did not make) makes the fast write fail,
// and the careful way, as before, takes over.
func (s *Sim) writeFile(rel, content string, mode os.FileMode) error {
	path := filepath.Join(s.root, rel)
	dir := filepath.Dir(rel)
	sum := maphash.String(s.seed, content)
	s.fmu.Lock()
	made := s.dirs[dir]
	known, seen := s.files[rel]
	s.fmu.Unlock()
	if !made {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
	}
	if seen && known.mode == mode && mode&0o222 == 0 && known.sum == sum && !adminFile(rel) {
		return nil
	}
	var err error
	switch {
	case !seen:
		// A new file: O_EXCL, so that one already there (a tree built
		// over an old one) takes the careful way.
		err = writeFast(path, content, mode, unix.O_CREAT|unix.O_EXCL, mode&^s.umask != mode)
	case known.mode&0o200 == 0 && !s.asRoot:
		err = errors.New("read-only") // open would fail with EACCES
	default:
		err = writeFast(path, content, mode, 0, known.mode != mode)
	}
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		_ = os.Chmod(path, 0o644) // may not exist yet
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	s.fmu.Lock()
	s.dirs[dir] = true
	s.files[rel] = fileState{mode: mode, sum: sum}
	s.fmu.Unlock()
	return nil
}

// adminFile reports whether rel is a file that an admin writes.
func adminFile(rel string) bool {
	switch filepath.Base(rel) {
	case "smp_affinity", "smp_affinity_list", "online", "default_smp_affinity":
		return true
	}
	return false
}

// fileState is what writeFile remembers of a file it wrote.
type fileState struct {
	mode os.FileMode
	sum  uint64 // maphash of the content
}

// probeUmask learns the process's umask without changing it (umask(2)
// would, for every goroutine): it creates a file 0777 in dir and reads
// back the mode. On failure it assumes the worst, so that every new file
// is chmodded.
func probeUmask(dir string) os.FileMode {
	f, err := os.CreateTemp(dir, ".umask-")
	if err != nil {
		return 0o777
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	if err := os.Remove(name); err != nil {
		return 0o777
	}
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o777)
	if err != nil {
		return 0o777
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return 0o777
	}
	return 0o777 &^ os.FileMode(st.Mode&0o777)
}

// writeFast opens path for writing with the extra flags (O_TRUNC always),
// writes content and, when chmod is set, gives it mode.
func writeFast(path, content string, mode os.FileMode, flags int, chmod bool) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC|flags, uint32(mode.Perm()))
	if err != nil {
		return err
	}
	data := []byte(content)
	for len(data) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, data)
		data = data[max(n, 0):]
		if err == unix.EINTR {
			err = nil
		}
	}
	if err == nil && chmod {
		err = unix.Fchmod(fd, uint32(mode.Perm()))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

// forget drops what writeFile remembers of the files and directories
// under rel, which was removed.
func (s *Sim) forget(rel string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	prefix := rel + string(filepath.Separator)
	for name := range s.files {
		if name == rel || strings.HasPrefix(name, prefix) {
			delete(s.files, name)
		}
	}
	for name := range s.dirs {
		if name == rel || strings.HasPrefix(name, prefix) {
			delete(s.dirs, name)
		}
	}
}

func (s *Sim) syncAll() error {
	if err := s.syncCPUs(); err != nil {
		return err
	}
	irqs := make([]*irqState, 0, len(s.order))
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed {
			irqs = append(irqs, st)
		}
	}
	// The IRQs' files are independent: a few writers hide the system
	// calls' latency on big trees.
	workers := 1
	if len(irqs) >= 256 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(irqs); i += workers {
				if errs[w] = s.syncIRQ(irqs[i]); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.syncInterrupts()
}

// cpuList formats a set as the kernel's cpulist files do ("0-3\n"; "\n"
// when empty).
func cpuList(set sysfs.CPUSet) string { return set.String() + "\n" }

// syncCPUs writes /sys/devices/system/cpu and /sys/devices/system/node.
func (s *Sim) syncCPUs() error {
	cpuDir := filepath.Join("sys", "devices", "system", "cpu")
	nohz := "(null)\n"
	if !s.cfg.NohzFull.IsEmpty() {
		nohz = cpuList(s.cfg.NohzFull)
	}
	files := map[string]string{
		"possible":   cpuList(upTo(s.cfg.Possible)),
		"present":    cpuList(s.present),
		"online":     cpuList(s.online),
		"offline":    cpuList(upTo(s.cfg.Possible).Difference(s.online)),
		"isolated":   cpuList(s.cfg.Isolated),
		"nohz_full":  nohz,
		"kernel_max": "511\n",
	}
	for name, content := range files {
		if err := s.writeFile(filepath.Join(cpuDir, name), content, 0o444); err != nil {
			return err
		}
	}
	for _, cpu := range s.present.CPUs() {
		dir := filepath.Join(s.root, cpuDir, "cpu"+strconv.Itoa(cpu))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if !s.hotplug.Contains(cpu) {
			continue
		}
		value := "0\n"
		if s.online.Contains(cpu) {
			value = "1\n"
		}
		if err := s.writeFile(filepath.Join(cpuDir, "cpu"+strconv.Itoa(cpu), "online"), value, 0o644); err != nil {
			return err
		}
	}
	if s.cfg.NoNUMA {
		return nil
	}
	nodes := s.cfg.Nodes
	if nodes == nil {
		nodes = []sysfs.CPUSet{s.present}
	}
	for i, cpus := range nodes {
		rel := filepath.Join("sys", "devices", "system", "node", "node"+strconv.Itoa(i), "cpulist")
		if err := s.writeFile(rel, cpuList(cpus), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// syncPCI writes <sys>/bus/pci/devices/<BDF>/numa_node of each PCI device
// that an IRQ's chip name names. The kernel's entries are symlinks into
// /sys/devices/pci0000:00; plain directories read the same.
func (s *Sim) syncPCI() error {
	for bdf, node := range s.pciNode {
		if err := s.writeFile(filepath.Join("sys", "bus", "pci", "devices", bdf, "numa_node"), strconv.Itoa(node)+"\n", 0o444); err != nil {
			return err
		}
	}
	return nil
}

// affinityMode is the mode of smp_affinity and smp_affinity_list.
func (s *Sim) affinityMode(st *irqState) os.FileMode {
	if s.kernel == Kernel612 && (st.Kind == KindPerCPU || st.Kind == KindManaged) {
		return 0o444
	}
	return 0o644
}

// syncIRQ writes /proc/irq/N and /sys/kernel/irq/N. No directory per action
// is made: git would drop the empty directories of the e2e trees, and
// irqshift does not read them.
func (s *Sim) syncIRQ(st *irqState) error {
	nbits := s.cfg.Possible
	n := strconv.Itoa(st.IRQ.IRQ)
	mode := s.affinityMode(st)
	proc := func(name string) string { return filepath.Join("proc", "irq", n, name) }
	hw := ""
	if !st.NoHWIRQ {
		hw = strconv.FormatUint(st.HWIRQ, 10) + "\n"
	}
	actions := ""
	if len(st.Actions) > 0 {
		actions = strings.Join(st.Actions, ",") + "\n"
	}
	counts := make([]string, s.cfg.Possible)
	for cpu := range counts {
		counts[cpu] = strconv.FormatUint(st.Counts[cpu], 10)
	}
	typ := "edge\n"
	if st.Trigger == "Level" {
		typ = "level\n"
	}
	sys := func(name string) string { return filepath.Join("sys", "kernel", "irq", n, name) }
	for _, f := range []struct {
		rel, content string
		mode         os.FileMode
	}{
		{proc("smp_affinity"), st.Affinity.Mask(nbits) + "\n", mode},
		{proc("smp_affinity_list"), cpuList(st.Affinity), mode},
		{proc("effective_affinity"), st.Effective.Mask(nbits) + "\n", 0o444},
		{proc("effective_affinity_list"), cpuList(st.Effective), 0o444},
		{proc("affinity_hint"), st.Hint.Mask(nbits) + "\n", 0o444},
		{proc("node"), strconv.Itoa(st.Node) + "\n", 0o444},
		{sys("actions"), actions, 0o444},
		{sys("chip_name"), st.Chip + "\n", 0o444},
		{sys("hwirq"), hw, 0o444},
		{sys("name"), "", 0o444},
		{sys("per_cpu_count"), strings.Join(counts, ",") + "\n", 0o444},
		{sys("type"), typ, 0o444},
		{sys("wakeup"), "disabled\n", 0o444},
	} {
		if err := s.writeFile(f.rel, f.content, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// listed reports whether show_interrupts prints a row for st: not hidden,
// and with an action or some interrupt counted.
func (st *irqState) listed() bool {
	if st.removed || st.Hidden {
		return false
	}
	if len(st.Actions) > 0 {
		return true
	}
	for _, c := range st.Counts {
		if c != 0 {
			return true
		}
	}
	return false
}

// syncInterrupts writes /proc/interrupts in the kernel's format
// (kernel/irq/proc.c show_interrupts, arch/arm64/kernel/smp.c
// arch_show_interrupts): a header of the online CPUs only, then "%*d: ",
// "%10u " per online CPU, " %8s" chip, " %*lu" hwirq (blank without a
// domain), " %-8s" Level/Edge, "  " and the actions joined by ", ".
func (s *Sim) syncInterrupts() error {
	nrIRQs := 64
	if len(s.order) > 0 {
		nrIRQs = max(nrIRQs, s.order[len(s.order)-1]+1)
	}
	prec := 3
	for j := 1000; prec < 10 && j <= nrIRQs; prec++ {
		j *= 10
	}
	online := s.online.CPUs()
	var b []byte
	b = append(b, strings.Repeat(" ", prec+8)...)
	for _, cpu := range online {
		start := len(b)
		b = padRight(strconv.AppendInt(append(b, "CPU"...), int64(cpu), 10), start+11)
	}
	b = append(b, '\n')
	var tmp []byte
	for _, n := range s.order {
		st := s.irqs[n]
		if !st.listed() {
			continue
		}
		b = padLeft(b, strconv.AppendInt(tmp[:0], int64(n), 10), prec)
		b = append(b, ": "...)
		for _, cpu := range online {
			b = append(padLeft(b, strconv.AppendUint(tmp[:0], st.Counts[cpu], 10), 10), ' ')
		}
		b = padLeft(append(b, ' '), []byte(st.Chip), 8)
		b = append(b, ' ')
		if st.NoHWIRQ {
			b = padLeft(b, nil, prec)
		} else {
			b = padLeft(b, strconv.AppendUint(tmp[:0], st.HWIRQ, 10), prec)
		}
		b = append(b, ' ')
		start := len(b)
		b = padRight(append(b, st.Trigger...), start+8)
		if len(st.Actions) > 0 {
			b = append(append(b, "  "...), strings.Join(st.Actions, ", ")...)
		}
		b = append(b, '\n')
	}
	sep := ""
	if prec >= 4 {
		sep = " "
	}
	zeros := strings.Repeat(fmt.Sprintf("%10d ", 0), len(online))
	for i, name := range ipiNames[s.kernel] {
		b = fmt.Appendf(b, "%*s%d:%s%s      %s\n", prec-1, "IPI", i, sep, zeros, name)
	}
	b = fmt.Appendf(b, "%*s: %10d\n", prec, "Err", 0)
	if err := s.writeFile(filepath.Join("proc", "interrupts"), string(b), 0o444); err != nil {
		return err
	}
	return s.writeFile(filepath.Join("proc", "irq", "default_smp_affinity"),
		upTo(s.cfg.Possible).Mask(s.cfg.Possible)+"\n", 0o644)
}

// padLeft appends field to b right-aligned in width columns ("%*s").
func padLeft(b, field []byte, width int) []byte {
	for range width - len(field) {
		b = append(b, ' ')
	}
	return append(b, field...)
}

// padRight pads b with spaces up to length n ("%-*s" of what ends b).
func padRight(b []byte, n int) []byte {
	for len(b) < n {
		b = append(b, ' ')
	}
	return b
}
