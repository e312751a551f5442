package sysfs

import (
	"context"
	"time"

	"github.com/irqshift/irqshift/internal/ctxsleep"
)

// ProcSampler counts interrupts from /proc/interrupts deltas: the fallback
// when eBPF is not available. It is coarser than the eBPF counter: counts
// of CPUs that went offline during the window are lost with their column,
// and it cannot tell a shared IRQ's handlers apart.
type ProcSampler struct {
	FS FS
	// Wait waits out the window; nil sleeps. Tests make interrupts here.
	Wait func(ctx context.Context, window time.Duration) error
}

// Method implements affinity.Sampler.
func (ProcSampler) Method() string { return "proc-interrupts" }

// Sample reads /proc/interrupts before and after the window and returns,
// per IRQ of irqs, the count increase per CPU.
func (s ProcSampler) Sample(ctx context.Context, irqs []int, window time.Duration) (map[int]map[int]uint64, error) {
	before, err := s.FS.Interrupts()
	if err != nil {
		return nil, err
	}
	wait := s.Wait
	if wait == nil {
		wait = ctxsleep.Sleep
	}
	if err := wait(ctx, window); err != nil {
		return nil, err
	}
	after, err := s.FS.Interrupts()
	if err != nil {
		return nil, err
	}
	want := make(map[int]bool, len(irqs))
	for _, irq := range irqs {
		want[irq] = true
	}
	prev := map[int]map[int]uint64{}
	for _, row := range before.IRQs {
		if want[row.IRQ] {
			prev[row.IRQ] = perCPU(before.CPUs, row.Counts)
		}
	}
	out := map[int]map[int]uint64{}
	for _, row := range after.IRQs {
		if !want[row.IRQ] {
			continue
		}
		old := prev[row.IRQ]
		for cpu, n := range perCPU(after.CPUs, row.Counts) {
			// A CPU that came online in the window starts from its
			// count before it went offline; a freed and reused IRQ
			// restarts at zero. Either way, never a negative delta.
			if d := n - old[cpu]; n > old[cpu] && d > 0 {
				if out[row.IRQ] == nil {
					out[row.IRQ] = map[int]uint64{}
				}
				out[row.IRQ][cpu] = d
			}
		}
	}
	return out, nil
}

func perCPU(cpus []int, counts []uint64) map[int]uint64 {
	m := make(map[int]uint64, len(cpus))
	for i, cpu := range cpus {
		if i < len(counts) {
			m[cpu] = counts[i]
		}
	}
	return m
}
