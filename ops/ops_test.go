package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// rig is a simulated 4-CPU VM with a state file.
type rig struct {
	t   *testing.T
	sim *sysfstest.Sim
	env *Env
}

func newRig(t *testing.T, cfg sysfstest.Config) *rig {
	t.Helper()
	sim := sysfstest.New(t, cfg)
	store, err := state.OpenStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, sim: sim, env: &Env{FS: sim.FS(), Kernel: sim, Hotplug: sim, Store: store}}
}

func vm4(t *testing.T) *rig { return newRig(t, sysfstest.VM4(sysfstest.Kernel612)) }

// load reads the simulator's IRQs back through the engine's classifier.
func (r *rig) state() *affinity.State {
	r.t.Helper()
	report, err := List(context.Background(), r.env, ListRequest{})
	if err != nil {
		r.t.Fatal(err)
	}
	return report.State
}

// perCPU counts the movable IRQs effective on each online CPU, from the
// simulator's own state.
func (r *rig) perCPU() map[int]int {
	r.t.Helper()
	st := r.state()
	counts := map[int]int{}
	for _, cpu := range r.sim.Online().CPUs() {
		counts[cpu] = 0
	}
	for _, irq := range st.IRQs {
		if !irq.Movable() {
			continue
		}
		_, eff, ok := r.sim.State(irq.IRQ)
		if !ok {
			continue
		}
		for _, cpu := range eff.CPUs() {
			counts[cpu]++
		}
	}
	return counts
}

// spread is max − min of counts over cpus.
func spread(counts map[int]int, cpus sysfs.CPUSet) int {
	lo, hi := -1, -1
	for _, cpu := range cpus.CPUs() {
		n := counts[cpu]
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return hi - lo
}

func (r *rig) saved() state.Saved {
	r.t.Helper()
	s, err := r.env.Store.Load()
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func TestRebalanceThenNothing(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	report, err := Rebalance(ctx, r.env, RebalanceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if report.Done() == 0 {
		t.Fatal("the boot layout 5/2/1/1 needs moves; none done")
	}
	if s := spread(r.perCPU(), r.sim.Online()); s > 1 {
		t.Errorf("spread %d after rebalance: %v", s, r.perCPU())
	}
	again, err := Rebalance(ctx, r.env, RebalanceRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Plan.Moves) != 0 {
		t.Errorf("second rebalance plans %d writes: %+v", len(again.Plan.Moves), again.Plan.Moves)
	}
}

func TestDrainHoldsUntilUndrain(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	// From a balanced machine, a drain alone can keep the spread ≤ 1.
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	if by := r.saved().Drained[3]; by != affinity.DrainByDrain {
		t.Fatalf("state records CPU3 as %q, want drained by drain", by)
	}
	counts := r.perCPU()
	if counts[3] != 0 {
		t.Fatalf("CPU3 holds %d movable IRQs after drain", counts[3])
	}
	if s := spread(counts, sysfs.NewCPUSet(0, 1, 2)); s > 1 {
		t.Errorf("drain left spread %d over 0-2: %v", s, counts)
	}
	// A later rebalance (of the CLI, or the daemon's) keeps CPU3 empty,
	// also after an unrelated offline and online.
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.SetCPUOnline(1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.SetCPUOnline(1, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := r.perCPU()[3]; n != 0 {
		t.Fatalf("CPU3 holds %d movable IRQs after rebalances and hotplug of CPU1", n)
	}
	list, err := List(ctx, r.env, ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !list.State.Drained.Equal(sysfs.NewCPUSet(3)) || list.State.Allowed.Contains(3) {
		t.Errorf("list: drained %s allowed %s", list.State.Drained, list.State.Allowed)
	}
	if _, err := Undrain(ctx, r.env, UndrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	counts = r.perCPU()
	if counts[3] == 0 || spread(counts, r.sim.Online()) > 1 {
		t.Errorf("after undrain: %v, want CPU3 used and spread ≤ 1", counts)
	}
	if _, ok := r.saved().Drained[3]; ok {
		t.Error("undrain left CPU3 in the state")
	}
	if _, err := Undrain(ctx, r.env, UndrainRequest{CPUs: []int{3}}); !errors.Is(err, affinity.ErrBadCPU) {
		t.Errorf("undrain of a CPU not drained: %v, want ErrBadCPU", err)
	}
}

func TestDrainBadInputWritesNothing(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	for _, cpus := range [][]int{{7}, {0, 1, 2, 3}} {
		if _, err := Drain(ctx, r.env, DrainRequest{CPUs: cpus}); !errors.Is(err, affinity.ErrBadCPU) {
			t.Errorf("drain %v: %v, want ErrBadCPU", cpus, err)
		}
	}
	if err := r.sim.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{2}}); !errors.Is(err, affinity.ErrBadCPU) {
		t.Errorf("drain of an offline CPU: %v, want ErrBadCPU", err)
	}
	if w := r.sim.Writes(); len(w) != 0 {
		t.Errorf("bad input wrote %d times: %+v", len(w), w)
	}
	if _, err := os.Stat(r.env.Store.Path()); !os.IsNotExist(err) {
		t.Errorf("bad input created the state file: %v", err)
	}
}

func TestOfflineRecordsAndOnlineGivesBack(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	report, err := Offline(ctx, r.env, OfflineRequest{CPUs: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	if r.sim.Online().Contains(2) || !report.Offlined.Equal(sysfs.NewCPUSet(2)) || len(report.LeftBehind) != 0 {
		t.Fatalf("offline: online %s, offlined %s, left %v", r.sim.Online(), report.Offlined, report.LeftBehind)
	}
	if by := r.saved().Drained[2]; by != affinity.DrainByOffline {
		t.Fatalf("state records CPU2 as %q, want drained by offline", by)
	}
	// Brought back by hand (echo 1 > online): it stays drained.
	if err := r.sim.SetCPUOnline(2, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := r.perCPU()[2]; n != 0 {
		t.Fatalf("CPU2, back by hand but drained by offline, holds %d IRQs", n)
	}
	on, err := Online(ctx, r.env, OnlineRequest{CPUs: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	if !on.Undrained.Equal(sysfs.NewCPUSet(2)) {
		t.Errorf("online gave back %s, want 2", on.Undrained)
	}
	if counts := r.perCPU(); counts[2] == 0 || spread(counts, r.sim.Online()) > 1 {
		t.Errorf("after online: %v", counts)
	}
	if len(r.saved().Drained) != 0 {
		t.Errorf("drains left after online: %v", r.saved().Drained)
	}
}

// cancelAtWrite cancels ctx when the simulator sees the n-th write.
func cancelAtWrite(sim *sysfstest.Sim, n int, cancel context.CancelFunc) {
	seen := 0
	var hook func(*sysfstest.Sim) error
	hook = func(s *sysfstest.Sim) error {
		seen++
		if seen == n {
			cancel()
		} else {
			s.BeforeWrite(sysfstest.AnyIRQ, hook)
		}
		return nil
	}
	sim.BeforeWrite(sysfstest.AnyIRQ, hook)
}

func TestDrainInterrupted(t *testing.T) {
	r := vm4(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelAtWrite(r.sim, 1, cancel)
	report, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{0}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted drain: %v, want ErrInterrupted", err)
	}
	if len(report.Plan.Moves) < 2 || report.NotDone != len(report.Plan.Moves)-1 || len(report.Results) != 1 {
		t.Errorf("planned %d, results %d, not done %d; want one write done", len(report.Plan.Moves), len(report.Results), report.NotDone)
	}
	if got := len(r.sim.Writes()); got != 1 {
		t.Errorf("%d writes after the interruption at the first", got)
	}
	if _, ok := r.saved().Drained[0]; ok {
		t.Error("an interrupted drain was recorded")
	}
}

func TestOfflineInterruptedStaysOnline(t *testing.T) {
	r := vm4(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelAtWrite(r.sim, 1, cancel)
	report, err := Offline(ctx, r.env, OfflineRequest{CPUs: []int{0}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted offline: %v, want ErrInterrupted", err)
	}
	if !r.sim.Online().Contains(0) || !report.Offlined.IsEmpty() {
		t.Errorf("CPU0 taken offline after an interrupted drain (online %s)", r.sim.Online())
	}
}

func TestOfflineLeavesCPUWhenDrainLeavesIRQs(t *testing.T) {
	r := vm4(t)
	// Every write fails with ENOSPC: the drain cannot empty CPU0.
	r.sim.FailWrites(sysfstest.AnyIRQ, 28, sysfstest.Always)
	report, err := Offline(context.Background(), r.env, OfflineRequest{CPUs: []int{0}})
	if !errors.Is(err, ErrNotMoved) {
		t.Fatalf("offline with failed drain: %v, want ErrNotMoved", err)
	}
	if !r.sim.Online().Contains(0) || len(report.LeftBehind) == 0 {
		t.Errorf("online %s, left behind %v: want CPU0 kept online and the IRQs listed", r.sim.Online(), report.LeftBehind)
	}
}

func TestPinUnpin(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	if _, err := Pin(ctx, r.env, PinRequest{IRQ: 13, CPUs: sysfs.NewCPUSet(3)}); err != nil {
		t.Fatal(err)
	}
	if aff, _, _ := r.sim.State(13); !aff.Equal(sysfs.NewCPUSet(3)) {
		t.Fatalf("pin wrote %s", aff)
	}
	// The kernel breaks the pin on offline; a rebalance after online puts it back.
	if err := r.sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.SetCPUOnline(3, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if aff, _, _ := r.sim.State(13); !aff.Equal(sysfs.NewCPUSet(3)) {
		t.Fatalf("pin not restored after CPU3 returned: %s", aff)
	}
	if _, err := Unpin(ctx, r.env, UnpinRequest{IRQ: 13}); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(r.saved().Pins) != 0 {
		t.Errorf("unpinned IRQ learned again: %v", r.saved().Pins)
	}
	for _, bad := range []PinRequest{{IRQ: 999, CPUs: sysfs.NewCPUSet(1)}, {IRQ: 11, CPUs: sysfs.NewCPUSet(1)}, {IRQ: 13, CPUs: sysfs.NewCPUSet(9)}} {
		if _, err := Pin(ctx, r.env, bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("pin %+v: %v, want ErrBadRequest", bad, err)
		}
	}
	if _, err := Unpin(ctx, r.env, UnpinRequest{IRQ: 13}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unpin of an IRQ without pin: %v", err)
	}
}

// TestParallelPinsAllKept runs pins of different IRQs at once, each with
// its own Store on the same path as separate commands would: the lock
// makes each read-modify-write whole, so none is lost.
func TestParallelPinsAllKept(t *testing.T) {
	r := vm4(t)
	irqs := []int{13, 18, 20, 21, 22, 23}
	var wg sync.WaitGroup
	errs := make([]error, len(irqs))
	for i, irq := range irqs {
		wg.Go(func() {
			store, err := state.OpenStore(r.env.Store.Path())
			if err != nil {
				errs[i] = err
				return
			}
			env := *r.env
			env.Store = store
			_, errs[i] = Pin(context.Background(), &env, PinRequest{IRQ: irq, CPUs: sysfs.NewCPUSet(i % 4)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pin %d: %v", irqs[i], err)
		}
	}
	if got := len(r.saved().Pins); got != len(irqs) {
		t.Errorf("%d pins kept of %d: %v", got, len(irqs), r.saved().Pins)
	}
}

func TestLockContention(t *testing.T) {
	r := vm4(t)
	unlock, err := r.env.Store.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{1}})
		done <- err
	}()
	// The drain waits for the lock (the wait logs a line); cancel it, as
	// Ctrl-C would: it must stop without writing.
	cancel()
	if err := <-done; !errors.Is(err, ErrInterrupted) {
		t.Errorf("drain waiting for the lock, cancelled: %v, want ErrInterrupted", err)
	}
	if w := r.sim.Writes(); len(w) != 0 {
		t.Errorf("a drain that never got the lock wrote %d times", len(w))
	}
	// With a bounded wait it gives up with a clear error.
	r.env.LockWait = 1
	if _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{1}}); err == nil || errors.Is(err, ErrInterrupted) {
		t.Errorf("drain with the lock held elsewhere: %v, want a lock error", err)
	}
	unlock()
	r.env.LockWait = 0
	if _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{1}}); err != nil {
		t.Errorf("drain once the lock is free: %v", err)
	}
}

func TestNewerStateRefused(t *testing.T) {
	r := vm4(t)
	newer := []byte(`{"version": 99, "pins": {}, "future": true}` + "\n")
	if err := os.WriteFile(r.env.Store.Path(), newer, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{1}}); !errors.Is(err, state.ErrNewerState) {
		t.Errorf("drain on a newer state: %v, want ErrNewerState", err)
	}
	if got, _ := os.ReadFile(r.env.Store.Path()); string(got) != string(newer) {
		t.Errorf("newer state rewritten: %s", got)
	}
	if w := r.sim.Writes(); len(w) != 0 {
		t.Errorf("%d writes on a refused state", len(w))
	}
	// Reading still works.
	if _, err := List(context.Background(), r.env, ListRequest{}); err != nil {
		t.Errorf("list on a newer state: %v", err)
	}
}

func TestStateNotSavedFails(t *testing.T) {
	r := vm4(t)
	// Something replaces the state file by a directory while the pin
	// runs: the pin is written but cannot be recorded, and says so.
	path := r.env.Store.Path()
	r.sim.BeforeWrite(sysfstest.AnyIRQ, func(*sysfstest.Sim) error {
		os.Remove(path)
		return os.Mkdir(path, 0o755)
	})
	_, err := Pin(context.Background(), r.env, PinRequest{IRQ: 13, CPUs: sysfs.NewCPUSet(2)})
	if !errors.Is(err, ErrStateNotSaved) {
		t.Errorf("pin whose state cannot be saved: %v, want ErrStateNotSaved", err)
	}
}

func TestNoPrivilege(t *testing.T) {
	r := vm4(t)
	r.env.CheckAccess = func() error { return sysfs.ErrPermission }
	for name, op := range map[string]func() error{
		"rebalance": func() error { _, err := Rebalance(context.Background(), r.env, RebalanceRequest{}); return err },
		"drain":     func() error { _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{1}}); return err },
		"offline": func() error {
			_, err := Offline(context.Background(), r.env, OfflineRequest{CPUs: []int{1}})
			return err
		},
		"pin": func() error {
			_, err := Pin(context.Background(), r.env, PinRequest{IRQ: 13, CPUs: sysfs.NewCPUSet(1)})
			return err
		},
	} {
		if err := op(); !errors.Is(err, sysfs.ErrPermission) {
			t.Errorf("%s without privilege: %v", name, err)
		}
	}
	if _, err := os.Stat(r.env.Store.Path()); !os.IsNotExist(err) {
		t.Errorf("state written without privilege: %v", err)
	}
	// Dry runs and list need none.
	if _, err := Rebalance(context.Background(), r.env, RebalanceRequest{DryRun: true}); err != nil {
		t.Errorf("dry run without privilege: %v", err)
	}
}

// TestNonRootWriterLearnsNothing: when the kernel refuses writes for want
// of privilege (EACCES) after the access check let the command through (a
// file made read-only for this user meanwhile), the operation fails as
// "needs root" and learns no IRQ as managed.
func TestNonRootWriterLearnsNothing(t *testing.T) {
	r := vm4(t)
	r.env.CheckAccess = func() error { return nil }
	r.sim.DenyWrites()
	_, err := Rebalance(context.Background(), r.env, RebalanceRequest{})
	if !errors.Is(err, sysfs.ErrPermission) {
		t.Fatalf("rebalance with writes denied: %v, want ErrPermission", err)
	}
	if managed := r.saved().Managed; len(managed) != 0 {
		t.Errorf("denied writes were learned as managed: %v", managed)
	}
	// The same access check the CLI runs, against the simulator: refused.
	r.env.CheckAccess = r.sim.CheckWriteAccess
	if _, err := Drain(context.Background(), r.env, DrainRequest{CPUs: []int{1}}); !errors.Is(err, sysfs.ErrPermission) {
		t.Errorf("drain as non-root: %v, want ErrPermission", err)
	}
}

// numaRig is the 2-node 8-CPU VM: every PCI MSI on node 1 (CPUs 4-7).
func numaRig(t *testing.T) *rig {
	r := newRig(t, sysfstest.NUMA8(sysfstest.Kernel612))
	r.env.Settings.NUMA = true
	return r
}

// checkNodeLocal asserts that node-1 IRQs sit on node-1 CPUs in want and
// differ by at most one there, and that nothing is on an offline CPU.
func (r *rig) checkNodeLocal(what string, want sysfs.CPUSet) {
	r.t.Helper()
	st := r.state()
	counts := map[int]int{}
	for _, cpu := range want.CPUs() {
		counts[cpu] = 0
	}
	n := 0
	for _, irq := range st.IRQs {
		_, eff, _ := r.sim.State(irq.IRQ)
		if irq.Movable() && !eff.IsSubsetOf(r.sim.Online()) {
			r.t.Errorf("%s: IRQ %d effective %s, online %s", what, irq.IRQ, eff, r.sim.Online())
		}
		if !irq.Movable() || irq.Node != 1 {
			continue
		}
		n++
		if !eff.IsSubsetOf(want) {
			r.t.Errorf("%s: node-1 IRQ %d effective on %s, want within %s", what, irq.IRQ, eff, want)
		}
		for _, cpu := range eff.CPUs() {
			counts[cpu]++
		}
	}
	if n < 4 {
		r.t.Fatalf("%s: only %d node-1 IRQs: the snapshot lost the nodes", what, n)
	}
	if s := spread(counts, want); s > 1 {
		r.t.Errorf("%s: node-1 IRQs per CPU %v differ by %d", what, counts, s)
	}
}

// TestNUMALocal: rebalance keeps node-1 IRQs on 4-7, spread within the
// node; they stay in the node when one of its CPUs goes, spill to node 0
// only while all of 4-7 are offline, and come back with them.
func TestNUMALocal(t *testing.T) {
	r := numaRig(t)
	ctx := context.Background()
	node1 := sysfs.NewCPUSet(4, 5, 6, 7)
	rebalance := func() {
		t.Helper()
		if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	rebalance()
	r.checkNodeLocal("after rebalance", node1)
	if again, _ := Rebalance(ctx, r.env, RebalanceRequest{DryRun: true}); len(again.Plan.Moves) != 0 {
		t.Errorf("second rebalance plans %+v", again.Plan.Moves)
	}
	if err := r.sim.SetCPUOnline(5, false); err != nil {
		t.Fatal(err)
	}
	rebalance()
	r.checkNodeLocal("CPU5 offline", sysfs.NewCPUSet(4, 6, 7))
	for _, cpu := range []int{4, 6, 7} {
		if err := r.sim.SetCPUOnline(cpu, false); err != nil {
			t.Fatal(err)
		}
	}
	rebalance()
	r.checkNodeLocal("node 1 offline", sysfs.NewCPUSet(0, 1, 2, 3))
	for _, cpu := range node1.CPUs() {
		if err := r.sim.SetCPUOnline(cpu, true); err != nil {
			t.Fatal(err)
		}
	}
	rebalance()
	r.checkNodeLocal("node 1 back", node1)
	// With --numa ignore the same IRQs spread over the whole machine.
	r.env.Settings.NUMA = false
	rebalance()
	if counts := r.perCPU(); spread(counts, r.sim.Online()) > 1 {
		t.Errorf("--numa ignore: %v", counts)
	}
}

// TestUnpinVanishedIRQ: the pin of an IRQ whose driver went away is kept
// (the driver may come back), and unpin can still drop it.
func TestUnpinVanishedIRQ(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	if _, err := Pin(ctx, r.env, PinRequest{IRQ: 13, CPUs: sysfs.NewCPUSet(3)}); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.RemoveIRQ(13); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(r.saved().Pins) != 1 {
		t.Fatalf("the pin of a vanished IRQ was not kept: %v", r.saved().Pins)
	}
	report, err := Unpin(ctx, r.env, UnpinRequest{IRQ: 13})
	if err != nil {
		t.Fatalf("unpin of a vanished IRQ: %v", err)
	}
	if !report.Vanished || report.IRQ != 13 || !report.Pin.CPUs.Equal(sysfs.NewCPUSet(3)) {
		t.Errorf("report = %+v", report)
	}
	if len(r.saved().Pins) != 0 {
		t.Errorf("pins after unpin: %v", r.saved().Pins)
	}
	if _, err := Unpin(ctx, r.env, UnpinRequest{IRQ: 13}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a second unpin: %v, want ErrBadRequest", err)
	}
}

// TestPinUnchangedMask: pinning an IRQ to the mask it already has records
// the pin and writes nothing, so nothing is reported as narrowed.
func TestPinUnchangedMask(t *testing.T) {
	r := vm4(t)
	ctx := context.Background()
	aff, _, _ := r.sim.State(13)
	writes := len(r.sim.Writes())
	report, err := Pin(ctx, r.env, PinRequest{IRQ: 13, CPUs: aff})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Results) != 0 || len(report.Plan.Moves) != 0 {
		t.Errorf("pin to the same mask %s: plan %+v, results %+v; want nothing written", aff, report.Plan.Moves, report.Results)
	}
	if got := len(r.sim.Writes()); got != writes {
		t.Errorf("%d write(s) to the kernel for an unchanged mask", got-writes)
	}
	if pins := r.saved().Pins; len(pins) != 1 {
		t.Errorf("pins = %v, want the pin recorded", pins)
	}
}
