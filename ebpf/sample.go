package ebpf

import (
	"context"
	"time"
)

// Sampler counts interrupts with the eBPF program for one window at a
// time: it loads and attaches the program for the IRQs asked about, so it
// costs nothing between windows.
type Sampler struct{}

// Method implements affinity.Sampler.
func (Sampler) Method() string { return "ebpf" }

// Sample attaches a Counter watching irqs, waits for window and returns the
// interrupts counted per IRQ and CPU. Errors from Open wrap ErrNoTracefs,
// ErrPermission or ErrNotSupported, so callers can fall back.
func (Sampler) Sample(ctx context.Context, irqs []int, window time.Duration) (map[int]map[int]uint64, error) {
	c, err := Open(irqs)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	before, err := c.Snapshot()
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	after, err := c.Snapshot()
	if err != nil {
		return nil, err
	}
	out := make(map[int]map[int]uint64)
	for irq, counts := range after.Sub(before) {
		out[irq] = counts.PerCPU
	}
	return out, nil
}
