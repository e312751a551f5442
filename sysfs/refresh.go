package sysfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoRefresh means Refresh cannot bring this snapshot up to date (it
// was not made by Snapshot, /proc/irq could not be listed, or the kernel
// has no /sys/kernel/irq to describe a new IRQ): take a full snapshot.
var ErrNoRefresh = errors.New("snapshot cannot be refreshed; take a full one")

// Refresh is the snapshot of a CPU hotplug event: it brings prev up to
// date reading only what the caller says the event can have changed, so
// that its cost does not grow with the machine. Which IRQs an event can
// have moved is not decided here but by the caller, which knows how each
// IRQ is classified (affinity.Engine.LoadChanged); Refresh only reads:
//
//   - /proc/irq/N again for each IRQ of prev that reread lists (in any
//     order; a number prev has no row for is ignored); Reread lists them
//     in the order of prev's rows;
//   - /proc/irq, to find the IRQs that appeared or vanished. It is listed
//     again only when its link count (2 + its subdirectories; procfs
//     keeps it exact) changed: listing 4096 directories was half of the
//     refresh.
//
// online is the online CPUs as the caller read them (FS.OnlineWithin) just
// before, which it needs to choose reread; it becomes the result's. Every
// other IRQ keeps prev's files. An IRQ freed while another was allocated
// keeps the count: the one freed is found gone when read or written
// (ErrGone), the new one by the next full snapshot, which the daemon
// takes right after. A new IRQ is described from /sys/kernel/irq/N; one
// without an action is left out, as /proc/interrupts leaves it out until
// it counts an interrupt.
//
// The result is Incremental: its /proc/interrupts counts and header are
// prev's. prev is not modified.
func (fs FS) Refresh(prev *Snapshot, online CPUSet, reread []int) (*Snapshot, error) {
	if prev == nil || prev.dirs == nil || prev.rawNodes == nil {
		return nil, ErrNoRefresh
	}
	links, err := fs.irqDirLinks()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoRefresh, err)
	}
	dirs := prev.dirs
	sameDirs := links == prev.dirLinks
	if !sameDirs {
		if dirs, err = fs.irqDirs(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoRefresh, err)
		}
	}
	if !slices.IsSorted(reread) {
		reread = slices.Sorted(slices.Values(reread))
	}
	cpus := prev.CPUs
	cpus.Online = online
	snap := &Snapshot{
		CPUs:        cpus,
		Interrupts:  Interrupts{CPUs: prev.Interrupts.CPUs},
		Affinity:    maps.Clone(prev.Affinity),
		Kernel:      prev.Kernel,   // copied by own() before a change
		IRQNodes:    prev.IRQNodes, // copied by own() before a change
		Incremental: true,
		dirs:        dirs,
		dirLinks:    links,
		rawNodes:    prev.rawNodes,
		shared:      true,
	}
	rows := make([]Interrupt, 0, len(prev.Interrupts.IRQs))
	var buf []byte
	var path irqPath
	// next walks reread alongside prev's rows, which come in IRQ order:
	// every number before it is below the last row's.
	next, last := 0, -1
	for _, row := range prev.Interrupts.IRQs {
		if row.IRQ < last {
			next = 0 // rows out of order: search reread from its start
		}
		last = row.IRQ
		for next < len(reread) && reread[next] < row.IRQ {
			next++
		}
		if _, ok := prev.Affinity[row.IRQ]; !ok {
			continue // gone already when prev was read
		}
		if !sameDirs {
			if _, exists := slices.BinarySearch(dirs, row.IRQ); !exists {
				snap.drop(row.IRQ)
				continue
			}
		}
		if next < len(reread) && reread[next] == row.IRQ {
			path.reset(fs.proc, row.IRQ)
			var fresh IRQAffinity
			fresh, buf, err = irqAffinityAt(&path, row.IRQ, buf, true)
			switch {
			case errors.Is(err, ErrGone):
				snap.drop(row.IRQ)
				continue
			case err != nil:
				return nil, err
			}
			snap.Affinity[row.IRQ] = fresh
			snap.Reread = append(snap.Reread, row.IRQ)
		}
		rows = append(rows, row)
	}
	var added []Interrupt
	var listed map[int]bool // prev's rows, built when a directory is new
	for _, irq := range dirs {
		if sameDirs {
			break // no directory came (or, as many as went)
		}
		if _, known := slices.BinarySearch(prev.dirs, irq); known {
			continue
		}
		if listed == nil {
			// A row prev read although its directory was not listed (it
			// was allocated between the two) is not new.
			listed = make(map[int]bool, len(prev.Interrupts.IRQs))
			for _, row := range prev.Interrupts.IRQs {
				listed[row.IRQ] = true
			}
		}
		if listed[irq] {
			continue
		}
		row, ok, err := fs.newIRQ(snap, irq, &path, &buf)
		if err != nil {
			return nil, err
		}
		if ok {
			added = append(added, row)
			snap.Appeared = append(snap.Appeared, irq)
		}
	}
	if len(added) > 0 {
		rows = append(rows, added...)
		slices.SortStableFunc(rows, func(a, b Interrupt) int { return a.IRQ - b.IRQ })
	}
	snap.Interrupts.IRQs = rows
	return snap, nil
}

// own gives s its own node and Kernel maps, which Refresh shares with the
// snapshot it started from until it changes them.
func (s *Snapshot) own() {
	if s.shared {
		s.IRQNodes, s.rawNodes, s.Kernel, s.shared = maps.Clone(s.IRQNodes), maps.Clone(s.rawNodes), maps.Clone(s.Kernel), false
	}
}

// drop forgets an IRQ that vanished since the snapshot was copied.
func (s *Snapshot) drop(irq int) {
	s.own()
	delete(s.Affinity, irq)
	delete(s.IRQNodes, irq)
	delete(s.rawNodes, irq)
	s.Vanished = append(s.Vanished, irq)
}

// newIRQ reads an IRQ that appeared since the last snapshot into snap and
// returns its row, or false when it has no action (or vanished again).
func (fs FS) newIRQ(snap *Snapshot, irq int, path *irqPath, buf *[]byte) (Interrupt, bool, error) {
	k, err := fs.KernelIRQ(irq)
	switch {
	case isNotExist(err):
		if dir := fs.SysPath("kernel", "irq"); !isDir(dir) {
			// Without CONFIG_SPARSE_IRQ only /proc/interrupts says what
			// the new IRQ is.
			return Interrupt{}, false, fmt.Errorf("%w: no %s", ErrNoRefresh, dir)
		}
		return Interrupt{}, false, nil // freed again
	case err != nil:
		return Interrupt{}, false, fmt.Errorf("IRQ %d: %w", irq, err)
	case len(k.Actions) == 0:
		return Interrupt{}, false, nil
	}
	row := Interrupt{IRQ: irq, Chip: k.ChipName, HWIRQ: k.HWIRQ, HasHWIRQ: k.HasHWIRQ,
		Trigger: triggerOfType(k.Type), Handler: k.Name, Actions: k.Actions}
	path.reset(fs.proc, irq)
	aff, grown, err := irqAffinityAt(path, irq, *buf, true)
	*buf = grown
	switch {
	case errors.Is(err, ErrGone):
		return Interrupt{}, false, nil
	case err != nil:
		return Interrupt{}, false, err
	}
	node, grown := readNode(path.file("node"), *buf)
	*buf = grown
	snap.own()
	snap.Affinity[irq] = aff
	snap.rawNodes[irq] = node
	if !k.HasHWIRQ {
		snap.Kernel[irq] = k
	}
	fs.setNode(snap, row, node, nil)
	return row, true, nil
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// triggerOfType turns /sys/kernel/irq/N/type ("edge", "level") into the
// word /proc/interrupts prints.
func triggerOfType(t string) string {
	switch strings.ToLower(t) {
	case "edge":
		return "Edge"
	case "level":
		return "Level"
	}
	return ""
}

// IRQDirLinks is the link count of /proc/irq: 2 plus one per IRQ
// directory, so it changes when IRQs are allocated or freed (a driver
// loaded, bound or unbound), for the cost of one stat.
func (fs FS) IRQDirLinks() (uint64, error) { return fs.irqDirLinks() }

// irqDirLinks is the link count of /proc/irq.
func (fs FS) irqDirLinks() (uint64, error) {
	var st unix.Stat_t
	dir := fs.ProcPath("irq")
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("%w: stat %s: %w", ErrFileRead, dir, err)
	}
	return uint64(st.Nlink), nil
}

// irqDirs lists the IRQ numbers of /proc/irq, sorted, with getdents(2)
// into one buffer: os.ReadDir's entry per IRQ cost more than the listing.
func (fs FS) irqDirs() ([]int, error) {
	dir := fs.ProcPath("irq")
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrFileRead, dir, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	var irqs []int
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: getdents %s: %w", ErrFileRead, dir, err)
		}
		if n <= 0 {
			break
		}
		irqs = appendDirentNumbers(irqs, buf[:n])
	}
	slices.Sort(irqs)
	return irqs, nil
}

// appendDirentNumbers appends the names of the linux_dirent64 records in
// b that are decimal numbers (no sign, no leading zero but "0").
func appendDirentNumbers(irqs []int, b []byte) []int {
	const nameOff = int(unsafe.Offsetof(unix.Dirent{}.Name))
	const reclenOff = int(unsafe.Offsetof(unix.Dirent{}.Reclen))
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[reclenOff:]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if i := slices.Index(name, 0); i >= 0 {
			name = name[:i]
		}
		if n, ok := parseDecimalUint(name); ok && n <= maxIRQ && (len(name) == 1 || name[0] != '0') {
			irqs = append(irqs, int(n))
		}
		b = b[reclen:]
	}
	return irqs
}
