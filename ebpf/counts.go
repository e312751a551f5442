package ebpf

import "time"

// Counts holds interrupt counts by IRQ number, as returned by Counter.Snapshot.
type Counts map[int]IRQCounts

// IRQCounts holds the counts of one IRQ.
type IRQCounts struct {
	// PerCPU maps a CPU number to the number of handler entries on that CPU. CPUs that never ran
	// the IRQ's handler are absent.
	PerCPU map[int]uint64
	// Last is when the IRQ last fired on any CPU: CLOCK_MONOTONIC (bpf_ktime_get_ns), the time
	// since boot excluding suspend.
	Last time.Duration
}

// Total returns the sum of the counts over all CPUs.
func (ic IRQCounts) Total() uint64 {
	var n uint64
	for _, v := range ic.PerCPU {
		n += v
	}
	return n
}

// Sub returns what happened between before and c, two snapshots of the same Counter: for each
// IRQ, the count per CPU minus the count in before. CPUs whose count did not change are left out,
// and so are IRQs with no change on any CPU, so the result lists only what fired. Last is c's.
// A count lower than before's (before came from another Counter, which was closed) is taken to
// have restarted from zero: its delta is the count itself. Sub never returns nil.
func (c Counts) Sub(before Counts) Counts {
	out := make(Counts)
	for irq, now := range c {
		prev := before[irq].PerCPU
		var perCPU map[int]uint64
		for cpu, n := range now.PerCPU {
			d := n
			if p := prev[cpu]; p <= n {
				d = n - p
			}
			if d == 0 {
				continue
			}
			if perCPU == nil {
				perCPU = make(map[int]uint64)
			}
			perCPU[cpu] = d
		}
		if perCPU != nil {
			out[irq] = IRQCounts{PerCPU: perCPU, Last: now.Last}
		}
	}
	return out
}
