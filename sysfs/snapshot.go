package sysfs

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// Snapshot is one reading of everything irqshift plans from: the CPUs,
// /proc/interrupts, and /proc/irq/N for each numbered row. The files are
// read one after the other, not atomically: an IRQ freed in between is
// listed in Vanished, not an error.
type Snapshot struct {
	CPUs       CPUInfo
	Interrupts Interrupts
	// Affinity holds /proc/irq/N (mask, its mode, effective mask) for
	// every IRQ of Interrupts.IRQs that still existed when it was read.
	Affinity map[int]IRQAffinity
	// Kernel holds /sys/kernel/irq/N for the IRQs that /proc/interrupts
	// printed without a hwirq, where the kernel has that directory: it is
	// the only thing it adds, and reading it for every IRQ would double
	// the snapshot's cost.
	Kernel map[int]KernelIRQ
	// IRQNodes maps an IRQ of Affinity to the NUMA node of its device,
	// for every IRQ whose node is known; an IRQ absent from it has none
	// known. The node is /proc/irq/N/node; where that says -1 and the chip
	// is a per-device PCI MSI domain ("ITS-PCI-MSIX-0000:00:02.0", kernel
	// 6.12), it is the PCI device's /sys/bus/pci/devices/<BDF>/numa_node
	// (read once per device). A node file that cannot be read or parsed
	// leaves the IRQ's node unknown; it is not an error.
	IRQNodes map[int]int
	// Vanished lists IRQs that /proc/interrupts showed but that were gone
	// by the time /proc/irq/N was read.
	Vanished []int

	// Incremental marks a snapshot made by Refresh: only the files an
	// event can have changed were read again, and the counts and the
	// header of Interrupts are those of the full snapshot it started from.
	Incremental bool
	// Reread lists, for an incremental snapshot, the IRQs whose
	// /proc/irq/N files it read again, and Appeared those it found new.
	Reread   []int
	Appeared []int

	// dirs are the numbers of /proc/irq's directories, sorted, read before
	// /proc/interrupts: Refresh compares them to find IRQs that appeared
	// or vanished. nil when the directory could not be listed. dirLinks
	// is /proc/irq's link count, read just before: 2 + its
	// subdirectories, which tells Refresh whether to list it again.
	dirs     []int
	dirLinks uint64
	// rawNodes is what each IRQ's /proc/irq/N/node said (nodeNone and
	// nodeBad included), so that a later snapshot need not read it again.
	rawNodes map[int]int
	// shared: IRQNodes, rawNodes and Kernel are those of the snapshot
	// this one was refreshed from (see own).
	shared bool
}

// snapshotWorkers bounds the goroutines reading /proc/irq/N: the reads are
// system calls, and a few in flight hide their latency. Asked at each
// snapshot, not when the package loads: the daemon lowers GOMAXPROCS after
// start where it cannot restart with it set, and 256 readers on a 256-CPU
// machine were 256 goroutines per full snapshot.
func snapshotWorkers() int { return max(4, runtime.GOMAXPROCS(0)) }

// SnapshotOptions is what a caller that reads the machine again and again
// (the daemon) already knows, so that a snapshot reads less.
type SnapshotOptions struct {
	// Static, when set, holds the CPU files that do not change while the
	// machine runs (possible, present, isolated, nohz_full, which CPUs can
	// be hotplugged, NUMA nodes): only /sys/devices/system/cpu/online is
	// read again. Nil reads every CPU file.
	Static *CPUInfo
	// Previous, when set, is an earlier snapshot of the same machine. An
	// IRQ it lists with the same chip and actions keeps its node: the
	// kernel sets a descriptor's node when the device allocates it and
	// never changes it, so the node file is not read again (a third of
	// the files of a snapshot).
	Previous *Snapshot
	// NoCounts leaves every row's Counts nil: a reader that plans and
	// never shows counts (the daemon) is spared converting, allocating and
	// collecting them (8 MB on 256 CPUs × 4096 IRQs).
	NoCounts bool
}

// Snapshot reads the whole state. It fails on unreadable or malformed
// files; it never returns a partial snapshot with a nil error.
func (fs FS) Snapshot(opts SnapshotOptions) (*Snapshot, error) {
	cpus, err := fs.onlineWith(opts.Static)
	if err != nil {
		return nil, err
	}
	// Listed before /proc/interrupts: an IRQ allocated in between is then
	// missing from both, and Refresh finds it later as new.
	links, _ := fs.irqDirLinks()
	var dirs []int
	if prev := opts.Previous; prev != nil && prev.dirs != nil && links != 0 && links == prev.dirLinks {
		dirs = prev.dirs // same count of IRQ directories: see Refresh
	} else {
		dirs, _ = fs.irqDirs()
	}
	// With a previous snapshot, the /proc/irq/N files of its IRQs are
	// read while /proc/interrupts is read and parsed: the one is system
	// calls, the other CPU, and together they took the time of both.
	var early *irqReads
	if prev := opts.Previous; prev != nil && len(prev.Interrupts.IRQs) > 0 {
		irqs := make([]int, len(prev.Interrupts.IRQs))
		for i, row := range prev.Interrupts.IRQs {
			irqs[i] = row.IRQ
		}
		// The mode of smp_affinity_list is fixed when the descriptor is
		// set up: it is prev's for the same descriptor, so not asked
		// (an fstat per IRQ); rows that are not the same are read again.
		early = fs.startIRQReads(irqs, nil, func(i int) (bool, bool) { return prev.Affinity[irqs[i]].ReadOnly, true })
	}
	interrupts, err := fs.interrupts(!opts.NoCounts)
	if early != nil {
		early.wait()
	}
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{
		CPUs:       cpus,
		Interrupts: interrupts,
		Affinity:   make(map[int]IRQAffinity, len(interrupts.IRQs)),
		Kernel:     map[int]KernelIRQ{},
		IRQNodes:   make(map[int]int, len(interrupts.IRQs)),
		dirs:       dirs,
		dirLinks:   links,
		rawNodes:   make(map[int]int, len(interrupts.IRQs)),
	}
	rows := interrupts.IRQs
	same := sameAsPrevious(rows, opts.Previous)
	nodes := knownNodes(rows, opts.Previous, same)
	affinity := make([]IRQAffinity, len(rows))
	errs := make([]error, len(rows))
	// What the early reads did not get is read now: new IRQs, any that
	// failed (one freed and allocated again meanwhile), and those whose
	// node file is still to read.
	var late []int
	var lateAt []int
	for i, row := range rows {
		if aff, ok := early.result(row.IRQ); ok && same[i] && nodes[i] != nodeUnread {
			affinity[i] = aff
			continue
		}
		late, lateAt = append(late, row.IRQ), append(lateAt, i)
	}
	reads := fs.startIRQReads(late, func(i int) bool { return nodes[lateAt[i]] == nodeUnread }, nil)
	reads.wait()
	for j, i := range lateAt {
		affinity[i], errs[i] = reads.affinity[j], reads.errs[j]
		if errs[i] == nil && nodes[i] == nodeUnread {
			nodes[i] = reads.nodes[j]
		}
	}
	for i, row := range rows {
		switch {
		case errors.Is(errs[i], ErrGone):
			snap.Vanished = append(snap.Vanished, row.IRQ)
			continue
		case errs[i] != nil:
			return nil, errs[i]
		}
		snap.Affinity[row.IRQ] = affinity[i]
		snap.rawNodes[row.IRQ] = nodes[i]
		if row.HasHWIRQ {
			continue
		}
		if err := fs.addKernelIRQ(snap, row.IRQ); err != nil {
			return nil, err
		}
	}
	fs.irqNodes(snap, nodes)
	return snap, nil
}

// onlineWith reads the CPU files, or with static only the online list.
func (fs FS) onlineWith(static *CPUInfo) (CPUInfo, error) {
	if static == nil {
		return fs.CPUInfo()
	}
	cpus := *static
	var err error
	if cpus.Online, err = fs.OnlineCPUs(); err != nil {
		return CPUInfo{}, err
	}
	return cpus, fs.checkOnline(cpus)
}

// addKernelIRQ records /sys/kernel/irq/N of irq in snap.Kernel, where the
// kernel has it.
func (fs FS) addKernelIRQ(snap *Snapshot, irq int) error {
	k, err := fs.KernelIRQ(irq)
	switch {
	case isNotExist(err):
		// No /sys/kernel/irq (CONFIG_SPARSE_IRQ off), or freed just now.
	case err != nil:
		return fmt.Errorf("IRQ %d: %w", irq, err)
	default:
		snap.Kernel[irq] = k
	}
	return nil
}

// nodeUnread marks a row whose node file is still to be read.
const nodeUnread = -3

// sameAsPrevious reports, for each row, whether prev listed the same
// descriptor: the same IRQ number with the same chip and actions. What
// the kernel fixes when a descriptor is set up (its node, the mode of its
// smp_affinity_list) is then prev's.
func sameAsPrevious(rows []Interrupt, prev *Snapshot) []bool {
	same := make([]bool, len(rows))
	if prev == nil {
		return same
	}
	// Both lists are in the kernel's order, ascending IRQ numbers; the
	// parser accepts others, and then an index finds the rows.
	old := prev.Interrupts.IRQs
	var index map[int]int
	j := 0
	for i, row := range rows {
		for j < len(old) && old[j].IRQ < row.IRQ {
			j++
		}
		k := j
		if k >= len(old) || old[k].IRQ != row.IRQ {
			if index == nil {
				index = make(map[int]int, len(old))
				for n, o := range old {
					index[o.IRQ] = n
				}
			}
			var ok bool
			if k, ok = index[row.IRQ]; !ok {
				continue
			}
		}
		same[i] = old[k].Chip == row.Chip && slices.Equal(old[k].Actions, row.Actions)
	}
	return same
}

// knownNodes returns, for each row, the node file's reading that prev
// holds for the same descriptor (same), or nodeUnread. A reading that
// failed (nodeBad) is read again.
func knownNodes(rows []Interrupt, prev *Snapshot, same []bool) []int {
	nodes := make([]int, len(rows))
	for i, row := range rows {
		nodes[i] = nodeUnread
		if !same[i] || prev.rawNodes == nil {
			continue
		}
		if n, ok := prev.rawNodes[row.IRQ]; ok && n != nodeBad {
			nodes[i] = n
		}
	}
	return nodes
}

// irqReads reads /proc/irq/N (affinity, and node where asked) of a list
// of IRQs over snapshotWorkers() goroutines.
type irqReads struct {
	irqs     []int
	index    map[int]int
	affinity []IRQAffinity
	nodes    []int
	errs     []error
	wg       sync.WaitGroup
}

// startIRQReads starts reading irqs; wantNode(i), when set, says whether
// to read the node file of irqs[i] too, and knownMode(i), when set and
// sure, gives the ReadOnly of irqs[i] without asking the file's mode.
// Call wait before the results.
func (fs FS) startIRQReads(irqs []int, wantNode func(i int) bool, knownMode func(i int) (readOnly, sure bool)) *irqReads {
	r := &irqReads{irqs: irqs, affinity: make([]IRQAffinity, len(irqs)), nodes: make([]int, len(irqs)), errs: make([]error, len(irqs))}
	workers := min(snapshotWorkers(), len(irqs))
	for w := range workers {
		r.wg.Go(func() {
			buf := make([]byte, 0, 256)
			var path irqPath
			for i := w; i < len(irqs); i += workers {
				path.reset(fs.proc, irqs[i])
				readOnly, sure := false, false
				if knownMode != nil {
					readOnly, sure = knownMode(i)
				}
				r.affinity[i], buf, r.errs[i] = irqAffinityAt(&path, irqs[i], buf, !sure)
				if sure {
					r.affinity[i].ReadOnly = readOnly
				}
				r.nodes[i] = nodeUnread
				if r.errs[i] == nil && wantNode != nil && wantNode(i) {
					r.nodes[i], buf = readNode(path.file("node"), buf)
				}
			}
		})
	}
	return r
}

func (r *irqReads) wait() { r.wg.Wait() }

// result is the affinity read of irq, when it was read without error.
// Call it after wait.
func (r *irqReads) result(irq int) (IRQAffinity, bool) {
	if r == nil {
		return IRQAffinity{}, false
	}
	if r.index == nil {
		r.index = make(map[int]int, len(r.irqs))
		for i, irq := range r.irqs {
			r.index[irq] = i
		}
	}
	i, ok := r.index[irq]
	if !ok || r.errs[i] != nil {
		return IRQAffinity{}, false
	}
	return r.affinity[i], true
}
