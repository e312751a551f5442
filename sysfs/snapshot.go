package sysfs

import (
	"errors"
	"fmt"
	"os"
)

// Snapshot is one reading of everything irqshift plans from: the CPUs,
// /proc/interrupts, /proc/irq/N for each numbered row and, where the kernel
// has it, /sys/kernel/irq/N. The files are read one after the other, not
// atomically: an IRQ freed in between is listed in Vanished, not an error.
type Snapshot struct {
	CPUs       CPUInfo
	Interrupts Interrupts
	// Affinity holds /proc/irq/N for every IRQ of Interrupts.IRQs that
	// still existed when it was read.
	Affinity map[int]IRQAffinity
	// Kernel holds /sys/kernel/irq/N; nil when the kernel has no such
	// directory (CONFIG_SPARSE_IRQ off).
	Kernel map[int]KernelIRQ
	// Vanished lists IRQs that /proc/interrupts showed but that were gone
	// by the time /proc/irq/N was read.
	Vanished []int
}

// Snapshot reads the whole state. It fails on unreadable or malformed
// files; it never returns a partial snapshot with a nil error.
func (fs FS) Snapshot() (*Snapshot, error) {
	cpus, err := fs.CPUInfo()
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
	}
	info, err := os.Stat(fs.SysPath("kernel", "irq"))
	hasKernelDir := err == nil && info.IsDir()
	if hasKernelDir {
		snap.Kernel = make(map[int]KernelIRQ, len(interrupts.IRQs))
	}
	for _, row := range interrupts.IRQs {
		aff, err := fs.IRQAffinity(row.IRQ)
		if errors.Is(err, ErrGone) {
			snap.Vanished = append(snap.Vanished, row.IRQ)
			continue
		}
		if err != nil {
			return nil, err
		}
		snap.Affinity[row.IRQ] = aff
		if hasKernelDir {
			k, err := fs.KernelIRQ(row.IRQ)
			switch {
			case isNotExist(err):
				// Either freed just now or a kernel that lists only some
				// descriptors there; /proc is what we act on.
			case err != nil:
				return nil, fmt.Errorf("IRQ %d: %w", row.IRQ, err)
			default:
				snap.Kernel[row.IRQ] = k
			}
		}
	}
	return snap, nil
}
