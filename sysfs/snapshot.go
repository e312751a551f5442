package sysfs

import (
	"errors"
	"fmt"
	"runtime"
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
}

// snapshotWorkers bounds the goroutines reading /proc/irq/N: the reads are
// system calls, and a few in flight hide their latency.
var snapshotWorkers = max(4, runtime.GOMAXPROCS(0))

// SnapshotWith reads the whole state. It fails on unreadable or malformed
// files; it never returns a partial snapshot with a nil error.
//
// static nil reads every CPU file. A caller that already read the CPU
// files that do not change while the machine runs (possible, present,
// isolated, nohz_full, which CPUs can be hotplugged, NUMA nodes) passes
// them, and only /sys/devices/system/cpu/online is read again. The daemon
// does this on every hotplug event, where each file read is time before
// the first write.
func (fs FS) SnapshotWith(static *CPUInfo) (*Snapshot, error) {
	var cpus CPUInfo
	var err error
	if static == nil {
		cpus, err = fs.CPUInfo()
	} else {
		cpus = *static
		cpus.Online, err = fs.OnlineCPUs()
	}
	if err != nil {
		return nil, err
	}
	interrupts, err := fs.Interrupts()
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{
		CPUs:       cpus,
		Interrupts: interrupts,
		Affinity:   make(map[int]IRQAffinity, len(interrupts.IRQs)),
		Kernel:     map[int]KernelIRQ{},
		IRQNodes:   make(map[int]int, len(interrupts.IRQs)),
	}
	rows := interrupts.IRQs
	affinity := make([]IRQAffinity, len(rows))
	nodes := make([]int, len(rows))
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	workers := min(snapshotWorkers, len(rows))
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			var path irqPath
			for i := w; i < len(rows); i += workers {
				path.reset(fs.proc, rows[i].IRQ)
				affinity[i], buf, errs[i] = irqAffinityAt(&path, rows[i].IRQ, buf)
				if errs[i] == nil {
					nodes[i], buf = readNode(path.file("node"), buf)
				}
			}
		})
	}
	wg.Wait()
	for i, row := range rows {
		switch {
		case errors.Is(errs[i], ErrGone):
			snap.Vanished = append(snap.Vanished, row.IRQ)
			continue
		case errs[i] != nil:
			return nil, errs[i]
		}
		snap.Affinity[row.IRQ] = affinity[i]
		if row.HasHWIRQ {
			continue
		}
		k, err := fs.KernelIRQ(row.IRQ)
		switch {
		case isNotExist(err):
			// No /sys/kernel/irq (CONFIG_SPARSE_IRQ off), or freed just now.
		case err != nil:
			return nil, fmt.Errorf("IRQ %d: %w", row.IRQ, err)
		default:
			snap.Kernel[row.IRQ] = k
		}
	}
	fs.irqNodes(snap, nodes)
	return snap, nil
}
