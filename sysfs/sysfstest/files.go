package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
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
	return sysfs.NewFS(filepath.Join(s.root, "proc"), filepath.Join(s.root, "sys"))
}

// writeFile replaces the file at rel (relative to Root) with content and
// gives it mode, whatever mode it had.
func (s *Sim) writeFile(rel, content string, mode os.FileMode) error {
	path := filepath.Join(s.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_ = os.Chmod(path, 0o644) // may not exist yet
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func (s *Sim) syncAll() error {
	if err := s.syncCPUs(); err != nil {
		return err
	}
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed {
			if err := s.syncIRQ(st); err != nil {
				return err
			}
		}
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
	var b strings.Builder
	fmt.Fprintf(&b, "%*s", prec+8, "")
	for _, cpu := range online {
		fmt.Fprintf(&b, "CPU%-8d", cpu)
	}
	b.WriteByte('\n')
	for _, n := range s.order {
		st := s.irqs[n]
		if !st.listed() {
			continue
		}
		fmt.Fprintf(&b, "%*d: ", prec, n)
		for _, cpu := range online {
			fmt.Fprintf(&b, "%10d ", st.Counts[cpu])
		}
		fmt.Fprintf(&b, " %8s", st.Chip)
		if st.NoHWIRQ {
			fmt.Fprintf(&b, " %*s", prec, "")
		} else {
			fmt.Fprintf(&b, " %*d", prec, st.HWIRQ)
		}
		fmt.Fprintf(&b, " %-8s", st.Trigger)
		if len(st.Actions) > 0 {
			b.WriteString("  " + strings.Join(st.Actions, ", "))
		}
		b.WriteByte('\n')
	}
	sep := ""
	if prec >= 4 {
		sep = " "
	}
	for i, name := range ipiNames[s.kernel] {
		fmt.Fprintf(&b, "%*s%d:%s", prec-1, "IPI", i, sep)
		for range online {
			fmt.Fprintf(&b, "%10d ", 0)
		}
		fmt.Fprintf(&b, "      %s\n", name)
	}
	fmt.Fprintf(&b, "%*s: %10d\n", prec, "Err", 0)
	if err := s.writeFile(filepath.Join("proc", "interrupts"), b.String(), 0o444); err != nil {
		return err
	}
	return s.writeFile(filepath.Join("proc", "irq", "default_smp_affinity"),
		upTo(s.cfg.Possible).Mask(s.cfg.Possible)+"\n", 0o644)
}
