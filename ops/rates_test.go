package ops

import (
	"context"
	"errors"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// busyVM is VM4 (6.12) with three virtio-serial ports' MSIs, 40-42, firing
// 60, 30 and 15 times a second, where the kernel's ITS put them: 40 and
// 41 on CPU1, 42 on CPU3 (two busy IRQs on one CPU, as measured in the VM).
func busyVM(t *testing.T) (*rig, *fakeClock) {
	t.Helper()
	r := newRig(t, sysfstest.VM4Busy(sysfstest.Kernel612))
	for irq, rate := range map[int]float64{40: 60, 41: 30, 42: 15} {
		if err := r.sim.SetRate(irq, rate); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{sim: r.sim, now: time.Unix(1_000_000, 0)}
	r.env.Clock, r.env.Wait = clock.Now, clock.Wait
	return r, clock
}

// fakeClock is the test's time: a window passes at once, the simulated
// IRQs firing for its length.
type fakeClock struct {
	mu    sync.Mutex
	sim   *sysfstest.Sim
	now   time.Time
	waits int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waits++
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.sim.Advance(d)
}

// busyCPUs returns the effective CPU of each busy IRQ, from the simulator.
func (r *rig) busyCPUs(irqs ...int) map[int]int {
	r.t.Helper()
	where := map[int]int{}
	for _, irq := range irqs {
		_, eff, ok := r.sim.State(irq)
		if !ok || eff.Len() != 1 {
			r.t.Fatalf("IRQ %d: effective %s", irq, eff)
		}
		where[irq] = eff.First()
	}
	return where
}

func distinct(where map[int]int) bool {
	seen := map[int]bool{}
	for _, cpu := range where {
		if seen[cpu] {
			return false
		}
		seen[cpu] = true
	}
	return true
}

// TestSampledList: list --sample measures each IRQ's rate over the window.
func TestSampledList(t *testing.T) {
	r, _ := busyVM(t)
	report, err := List(context.Background(), r.env, ListRequest{Sample: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]float64{40: 60, 41: 30, 42: 15, 20: 0}
	for _, irq := range report.State.IRQs {
		if w, ok := want[irq.IRQ]; ok && math.Abs(irq.Rate-w) > 0.5 {
			t.Errorf("IRQ %d: rate %.2f, want %.0f", irq.IRQ, irq.Rate, w)
		}
	}
	unsampled, err := List(context.Background(), r.env, ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, irq := range unsampled.State.IRQs {
		if irq.Rate != 0 {
			t.Errorf("list without a window gives IRQ %d a rate of %.1f", irq.IRQ, irq.Rate)
		}
	}
}

// TestSampledRebalance: with a window the busy IRQs end on distinct CPUs
// with the counts still within one; without one (counts only) the plan is
// blind to them and leaves two on CPU1.
func TestSampledRebalance(t *testing.T) {
	r, _ := busyVM(t)
	if _, err := Rebalance(context.Background(), r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if where := r.busyCPUs(40, 41, 42); distinct(where) {
		t.Logf("counts only happened to separate them: %v", where)
	}
	if _, err := Rebalance(context.Background(), r.env, RebalanceRequest{Sample: time.Second}); err != nil {
		t.Fatal(err)
	}
	where := r.busyCPUs(40, 41, 42)
	if !distinct(where) {
		t.Errorf("busy IRQs after a sampled rebalance: %v, want three CPUs", where)
	}
	if s := spread(r.perCPU(), r.sim.Online()); s > 1 {
		t.Errorf("count spread %d: %v", s, r.perCPU())
	}
	// Steady: the same rates again move nothing.
	report, err := Rebalance(context.Background(), r.env, RebalanceRequest{Sample: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Plan.Moves) != 0 {
		t.Errorf("a second sampled rebalance moves %+v", report.Plan.Moves)
	}
}

// TestSampledDrain: draining the CPU of a busy IRQ sends it to a CPU with
// no busy IRQ.
func TestSampledDrain(t *testing.T) {
	r, _ := busyVM(t)
	if _, err := Rebalance(context.Background(), r.env, RebalanceRequest{Sample: time.Second}); err != nil {
		t.Fatal(err)
	}
	before := r.busyCPUs(40, 41, 42)
	cpu := before[42]
	if _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{cpu}, Sample: time.Second}); err != nil {
		t.Fatal(err)
	}
	after := r.busyCPUs(40, 41, 42)
	if after[42] == cpu || !distinct(after) {
		t.Errorf("drain %d: busy IRQs went from %v to %v, want IRQ 42 alone on another CPU", cpu, before, after)
	}
}

// TestSampleRefusesFirst: bad input and a user who may not write are
// refused before the window; an interrupted window changes nothing.
func TestSampleRefusesFirst(t *testing.T) {
	r, clock := busyVM(t)
	_, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{9}, Sample: time.Second})
	if !errors.Is(err, affinity.ErrBadCPU) {
		t.Errorf("drain 9: %v, want ErrBadCPU", err)
	}
	if err := r.sim.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Offline(context.Background(), r.env, OfflineRequest{CPUs: []int{2}, Sample: time.Second}); !errors.Is(err, affinity.ErrBadCPU) {
		t.Errorf("offline of an offline CPU: %v, want ErrBadCPU", err)
	}
	r.env.CheckAccess = func() error { return sysfs.ErrPermission }
	if _, err := Rebalance(context.Background(), r.env, RebalanceRequest{Sample: time.Second}); !errors.Is(err, sysfs.ErrPermission) {
		t.Errorf("rebalance without privilege: %v, want ErrPermission", err)
	}
	if clock.waits != 0 {
		t.Errorf("%d windows waited before refusing", clock.waits)
	}
	r.env.CheckAccess = func() error { return nil }

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Rebalance(ctx, r.env, RebalanceRequest{Sample: time.Second})
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("interrupted window: %v, want ErrInterrupted", err)
	}
	if _, err := os.Stat(r.env.Store.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted rebalance left a state file: %v", err)
	}
}
