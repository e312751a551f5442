package affinity_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// These tests run plan → apply → re-read against the kernel simulator: the
// engine reads the simulator's tree with the real sysfs readers and writes
// through the simulator, which answers as the kernel would.

var versions = []sysfstest.Version{sysfstest.Kernel61, sysfstest.Kernel612}

// env is an engine wired to a simulated kernel.
type env struct {
	t   *testing.T
	sim *sysfstest.Sim
	eng *affinity.Engine
}

func newEnv(t *testing.T, cfg sysfstest.Config) *env {
	t.Helper()
	s := sysfstest.New(t, cfg)
	return &env{t: t, sim: s, eng: affinity.NewEngine(affinity.EngineConfig{FS: s.FS(), Kernel: s})}
}

// vm4 is the measured 4-CPU VM plus an SPI whose driver was unbound after
// it fired once: listed, without an action.
func vm4(v sysfstest.Version) sysfstest.Config {
	cfg := sysfstest.VM4(v)
	cfg.IRQs = append(cfg.IRQs, sysfstest.NoAction(15, "GICv3", 35, "Level").WithCounts(1, 0, 0, 0))
	return cfg
}

func (e *env) load() *affinity.State {
	e.t.Helper()
	st, err := e.eng.Load()
	if err != nil {
		e.t.Fatalf("Load: %v", err)
	}
	return st
}

func (e *env) apply(st *affinity.State, plan affinity.Plan, avoid sysfs.CPUSet) []affinity.Result {
	e.t.Helper()
	results := e.eng.Applier(st, avoid).Apply(context.Background(), plan, st.IRQs)
	if len(results) != len(plan.Moves) {
		e.t.Fatalf("%d results for %d moves", len(results), len(plan.Moves))
	}
	return results
}

func (e *env) rebalance() (affinity.Plan, []affinity.Result) {
	e.t.Helper()
	st := e.load()
	plan, err := e.eng.Planner().Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		e.t.Fatalf("Rebalance: %v", err)
	}
	return plan, e.apply(st, plan, sysfs.CPUSet{})
}

// engineRebalance rebalances as a writing command does: Load learning
// pins, ProbePins (which finds the managed IRQs whose masks look like
// pins), then Engine.Rebalance, which plans again after refused writes.
func (e *env) engineRebalance() (affinity.Plan, []affinity.Result) {
	e.t.Helper()
	e.eng.SetTrackPins(true)
	st := e.load()
	e.eng.ProbePins(st)
	_, plan, results, err := e.eng.Rebalance(context.Background(), st)
	if err != nil {
		e.t.Fatalf("Engine.Rebalance: %v", err)
	}
	return plan, results
}

func (e *env) drain(list string) (affinity.Plan, []affinity.Result) {
	e.t.Helper()
	st := e.load()
	drained := cpus(list)
	plan, err := e.eng.Planner().Drain(st.IRQs, drained, st.Allowed)
	if err != nil {
		e.t.Fatalf("Drain: %v", err)
	}
	return plan, e.apply(st, plan, drained)
}

// pinAll writes cpu to every movable IRQ through the simulator, as an admin
// pins every IRQ to CPU2 before that CPU goes offline in
// TestKernelHotplugBaseline (tests/vm/hotplug_test.go; docs/KERNELS.md,
// "Pinned masks are overwritten with the online mask and never restored").
func (e *env) pinAll(cpu int) {
	e.t.Helper()
	for _, irq := range e.sim.IRQs() {
		if e.sim.Kind(irq).Movable() {
			if err := e.sim.WriteAffinity(irq, sysfs.NewCPUSet(cpu)); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// movablePerCPU counts, from the simulator's truth, the movable IRQs
// effective on each CPU.
func (e *env) movablePerCPU() map[int]int {
	out := map[int]int{}
	for _, irq := range e.sim.IRQs() {
		if e.sim.Kind(irq).Movable() {
			_, eff, _ := e.sim.State(irq)
			out[eff.First()]++
		}
	}
	return out
}

// checkSpread fails unless every CPU of over holds a number of movable IRQs
// within one of every other, and no movable IRQ is elsewhere.
func (e *env) checkSpread(over sysfs.CPUSet) {
	e.t.Helper()
	per := e.movablePerCPU()
	lo, hi := -1, -1
	for _, cpu := range over.CPUs() {
		n := per[cpu]
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	for cpu, n := range per {
		if !over.Contains(cpu) && n > 0 {
			e.t.Errorf("%d movable IRQs on CPU %d, outside %s", n, cpu, over)
		}
	}
	if hi-lo > 1 {
		e.t.Errorf("movable IRQs per CPU %v: max−min = %d, want ≤ 1", per, hi-lo)
	}
}

// checkWrites fails if a write reached a non-movable IRQ other than one
// the kernel refused (which is how 6.1 teaches us an IRQ is managed), or if
// an accepted write named no online CPU.
func (e *env) checkWrites(from int, allowRefused bool) {
	e.t.Helper()
	for _, w := range e.sim.Writes()[from:] {
		kind := e.sim.Kind(w.IRQ)
		switch {
		case kind != 0 && !kind.Movable() && !(allowRefused && w.Errno != 0):
			e.t.Errorf("wrote %s to %s IRQ %d (errno %v)", w.CPUs, kind, w.IRQ, w.Errno)
		case w.Errno == 0 && !w.CPUs.IsSubsetOf(w.Online):
			e.t.Errorf("accepted write of %s to IRQ %d names CPUs outside online %s", w.CPUs, w.IRQ, w.Online)
		}
	}
}

func cpus(list string) sysfs.CPUSet {
	set, err := sysfs.ParseCPUList(list)
	if err != nil {
		panic(err)
	}
	return set
}

func statuses(results []affinity.Result) map[int]affinity.Status {
	out := map[int]affinity.Status{}
	for _, r := range results {
		out[r.IRQ] = r.Status
	}
	return out
}

func skipped(plan affinity.Plan) map[int]affinity.Skip {
	out := map[int]affinity.Skip{}
	for _, s := range plan.Skipped {
		out[s.IRQ] = s
	}
	return out
}

// TestRebalanceFromBoot: the VM as booted (5/2/1/1) is spread to within
// one per CPU, touching only movable IRQs and moving only the two
// interrupts CPU0 holds over its share (the others are narrowed where they
// fire), and a second rebalance plans no move at all.
func TestRebalanceFromBoot(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			e := newEnv(t, vm4(v))
			plan, results := e.rebalance()
			if len(plan.Moves) == 0 {
				t.Fatal("nothing planned on a 5/2/1/1 machine")
			}
			moved := 0
			for i, r := range results {
				m := plan.Moves[i]
				switch {
				case m.Narrow:
					if r.Status != affinity.StatusNarrowed || !r.Effective.Equal(r.To) || !r.Effective.Equal(m.From) {
						t.Errorf("IRQ %d: %s (%s), effective %s, want narrowed in place on %s", r.IRQ, r.Status, r.Reason, r.Effective, m.From)
					}
				default:
					moved++
					if r.Status != affinity.StatusMoved || !r.Effective.Equal(r.To) || r.Effective.Equal(m.From) || m.From.String() != "0" {
						t.Errorf("IRQ %d: %s (%s), effective %s, want moved from 0 to %s", r.IRQ, r.Status, r.Reason, r.Effective, r.To)
					}
				}
				if !r.Wrote() {
					t.Errorf("IRQ %d: %s does not count as written", r.IRQ, r.Status)
				}
			}
			// 9 movable IRQs on 4 CPUs: share 2, one CPU may hold 3.
			if moved != 2 {
				t.Errorf("%d interrupts moved, want the 2 that CPU0 holds over 3", moved)
			}
			e.checkSpread(cpus("0-3"))
			e.checkWrites(0, false)
			sk := skipped(plan)
			for _, irq := range []int{11, 15} {
				if _, ok := sk[irq]; !ok {
					t.Errorf("IRQ %d (%s) not in skipped: %v", irq, e.sim.Kind(irq), plan.Skipped)
				}
			}
			if v == sysfstest.Kernel612 {
				// Known managed from the 0444 mode before any write.
				for _, irq := range []int{24, 25, 26, 27} {
					if s := sk[irq]; s.Class != affinity.ClassManaged || !strings.Contains(s.Reason, "read-only") {
						t.Errorf("IRQ %d skipped as %+v, want managed (read-only)", irq, s)
					}
				}
			}

			before := len(e.sim.Writes())
			plan, _ = e.rebalance()
			if len(plan.Moves) != 0 {
				t.Errorf("second rebalance planned %v", plan.Moves)
			}
			if n := len(e.sim.Writes()) - before; n != 0 {
				t.Errorf("second rebalance wrote %d times", n)
			}
		})
	}
}

// TestManagedIsLearned: with every movable IRQ pinned to CPU2, rebalance
// wants to move virtio-blk's managed queue of CPU2 on 6.1, where nothing
// but a refused write (EIO) tells that it is managed; on 6.12 the 0444
// mode says so before any write.
func TestManagedIsLearned(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			e := newEnv(t, vm4(v))
			e.pinAll(2)
			start := len(e.sim.Writes())
			plan, results := e.rebalance()
			e.checkWrites(start, v == sysfstest.Kernel61)
			st := statuses(results)
			switch v {
			case sysfstest.Kernel61:
				r := results[slices.IndexFunc(results, func(r affinity.Result) bool { return r.IRQ == 26 })]
				if r.Status != affinity.StatusUnmovable || r.ErrorClass != "unmovable" || !strings.Contains(r.Reason, "EIO") {
					t.Fatalf("IRQ 26: %+v, want unmovable, refused with EIO", r)
				}
				for _, w := range e.sim.Writes()[start:] {
					if e.sim.Kind(w.IRQ) == sysfstest.KindManaged && w.Errno != syscall.EIO {
						t.Errorf("write to managed IRQ %d: errno %v, want EIO", w.IRQ, w.Errno)
					}
				}
				// Remembered: the next load classifies it managed and the
				// next rebalance leaves it alone.
				after := e.load()
				i := slices.IndexFunc(after.IRQs, func(q affinity.IRQ) bool { return q.IRQ == 26 })
				if after.IRQs[i].Class != affinity.ClassManaged || !strings.Contains(after.IRQs[i].Reason, "EIO") {
					t.Errorf("IRQ 26 reloaded as %s (%s), want managed", after.IRQs[i].Class, after.IRQs[i].Reason)
				}
				start = len(e.sim.Writes())
				plan, results = e.rebalance()
				if _, moved := statuses(results)[26]; moved {
					t.Error("the second rebalance wrote IRQ 26 again")
				}
				if s := skipped(plan)[26]; s.Class != affinity.ClassManaged {
					t.Errorf("IRQ 26 skipped as %+v, want managed", s)
				}
				e.checkWrites(start, false)
			case sysfstest.Kernel612:
				for _, irq := range []int{24, 25, 26, 27} {
					if _, moved := st[irq]; moved {
						t.Errorf("managed IRQ %d was written", irq)
					}
					if s := skipped(plan)[irq]; s.Class != affinity.ClassManaged {
						t.Errorf("IRQ %d skipped as %+v, want managed", irq, s)
					}
				}
			}
			for _, r := range results {
				if r.Status != affinity.StatusMoved {
					t.Errorf("IRQ %d: %s (%s)", r.IRQ, r.Status, r.Reason)
				}
			}
			e.checkSpread(cpus("0-3"))
			if plan, _ := e.rebalance(); len(plan.Moves) != 0 {
				t.Errorf("a further rebalance planned %v", plan.Moves)
			}
			if aff, eff, _ := e.sim.State(26); aff.String() != "2" || eff.String() != "2" {
				t.Errorf("managed IRQ 26 now %s/%s, want untouched 2/2", aff, eff)
			}
		})
	}
}

// TestDrainSpreadsRoundRobin: draining CPU2 with every movable IRQ on it
// leaves none there and deals them round-robin over 0, 1 and 3 rather than
// piling them on CPU0 as the kernel's own offline would.
func TestDrainSpreadsRoundRobin(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			e := newEnv(t, vm4(v))
			e.pinAll(2)
			start := len(e.sim.Writes())
			plan, results := e.drain("2")
			e.checkWrites(start, v == sysfstest.Kernel61)
			per := map[int]int{}
			for _, r := range results {
				if e.sim.Kind(r.IRQ) == sysfstest.KindManaged {
					if r.Status != affinity.StatusUnmovable {
						t.Errorf("managed IRQ %d: %s, want unmovable", r.IRQ, r.Status)
					}
					continue
				}
				if r.Status != affinity.StatusMoved || r.To.Contains(2) {
					t.Errorf("IRQ %d: %s to %s (%s)", r.IRQ, r.Status, r.To, r.Reason)
				}
				per[r.To.First()]++
			}
			if want := map[int]int{0: 3, 1: 3, 3: 3}; !equalCounts(per, want) {
				t.Errorf("targets per CPU %v, want %v (round-robin)", per, want)
			}
			// The plan itself cycles 0, 1, 3, 0, … in IRQ order (on 6.1
			// the managed queue 26 takes its turn too: nothing says it is
			// managed until the kernel refuses the write).
			var order []int
			for _, m := range plan.Moves {
				order = append(order, m.To.First())
			}
			for i := range order {
				if want := []int{0, 1, 3}[i%3]; order[i] != want {
					t.Errorf("targets in IRQ order %v, want 0,1,3 repeated", order)
					break
				}
			}
			if n := e.movablePerCPU()[2]; n != 0 {
				t.Errorf("%d movable IRQs still effective on CPU2", n)
			}
			// Per-CPU IRQs fire on CPU2 too: listed as left alone.
			if s := skipped(plan)[11]; s.Class != affinity.ClassPerCPU {
				t.Errorf("per-CPU IRQ 11 skipped as %+v, want per-cpu", s)
			}
			if v == sysfstest.Kernel612 {
				if s := skipped(plan)[26]; s.Class != affinity.ClassManaged || !strings.Contains(s.Reason, "shuts it down") {
					t.Errorf("IRQ 26 skipped as %+v", s)
				}
			}
		})
	}
}

func equalCounts(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestStaleMaskRetry: the target CPU goes offline at the very moment of the
// write; the kernel says EINVAL, the applier re-reads the online CPUs and
// moves the IRQ to another online CPU, and no write ever names the CPU
// that went away.
func TestStaleMaskRetry(t *testing.T) {
	// Drain of CPU2 on 6.12 plans 13→0 18→1 20→3 21→0 22→1 23→3 28→0 29→1 30→3.
	tests := []struct {
		name    string
		hookIRQ int // CPU3 goes offline when this IRQ is written
	}{
		{"last move to the CPU", 30},
		{"first move to the CPU", 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, vm4(sysfstest.Kernel612))
			e.pinAll(2)
			e.sim.OfflineAtWrite(tc.hookIRQ, 3)
			start := len(e.sim.Writes())
			plan, results := e.drain("2")
			if i := slices.IndexFunc(plan.Moves, func(m affinity.Move) bool { return m.IRQ == tc.hookIRQ }); i < 0 || plan.Moves[i].To.String() != "3" {
				t.Fatalf("plan %v does not move IRQ %d to CPU3", plan.Moves, tc.hookIRQ)
			}
			r := results[slices.IndexFunc(results, func(r affinity.Result) bool { return r.IRQ == tc.hookIRQ })]
			if r.Status != affinity.StatusMoved || r.To.Contains(3) || r.To.Contains(2) || !r.Effective.Equal(r.To) {
				t.Errorf("IRQ %d: %+v, want moved to an online CPU other than 2 and 3", tc.hookIRQ, r)
			}
			sawStale := false
			for _, w := range e.sim.Writes()[start:] {
				if sawStale && w.CPUs.Contains(3) {
					t.Errorf("wrote %s to IRQ %d after CPU3 went offline", w.CPUs, w.IRQ)
				}
				if w.Errno == syscall.EINVAL {
					sawStale = true
				}
				if w.Errno == 0 && !w.CPUs.IsSubsetOf(w.Online) {
					t.Errorf("accepted write of %s while online was %s", w.CPUs, w.Online)
				}
			}
			if !sawStale {
				t.Error("the hook did not make a write meet an offline CPU")
			}
			for _, r := range results {
				if r.Status != affinity.StatusMoved {
					// Moves planned for CPU3 after it went offline are
					// refused by the applier without a write, not
					// retargeted (see Applier.applyOne).
					t.Logf("IRQ %d: %s (%s)", r.IRQ, r.Status, r.Reason)
				}
			}
			// The IRQs already moved to CPU3 were moved off by the kernel
			// itself when it went offline (possibly back onto CPU2, which
			// is still online: the kernel knows nothing of the drain).
			if per := e.movablePerCPU(); per[3] != 0 {
				t.Errorf("movable IRQs per CPU %v: some on offline CPU3", per)
			}
		})
	}
}

// TestWriteErrors drives one planned move (IRQ 13 from CPU0 to CPU2)
// through the error answers a kernel can give.
func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*sysfstest.Sim)
		status affinity.Status
		class  sysfs.WriteErrorClass // Result.ErrorClass
		writes int                   // writes of IRQ 13
	}{
		{"ENOSPC", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.ENOSPC, sysfstest.Always) }, affinity.StatusFailed, "no-space", 1},
		{"EBUSY once", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EBUSY, 1) }, affinity.StatusMoved, "", 2},
		{"EAGAIN once", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EAGAIN, 1) }, affinity.StatusMoved, "", 2},
		{"EBUSY always", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EBUSY, sysfstest.Always) }, affinity.StatusFailed, "transient", 2},
		{"EINVAL once, CPU still online", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EINVAL, 1) }, affinity.StatusMoved, "", 2},
		{"EINVAL always", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EINVAL, sysfstest.Always) }, affinity.StatusFailed, "stale-mask", 2},
		{"unknown errno", func(s *sysfstest.Sim) { s.FailWrites(13, syscall.EFAULT, 1) }, affinity.StatusFailed, "other", 1},
		{"freed at the write", func(s *sysfstest.Sim) { s.RemoveAtWrite(13) }, affinity.StatusVanished, "gone", 1},
		{"freed since the snapshot", func(s *sysfstest.Sim) { _ = s.RemoveIRQ(13) }, affinity.StatusVanished, "gone", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, vm4(sysfstest.Kernel612))
			st := e.load()
			plan := affinity.Plan{Moves: []affinity.Move{{IRQ: 13, From: cpus("0"), To: cpus("2"), Reason: "test"}}}
			tc.setup(e.sim)
			r := e.apply(st, plan, sysfs.CPUSet{})[0]
			if r.Status != tc.status || r.ErrorClass != tc.class {
				t.Errorf("result %+v, want status %s, error class %q", r, tc.status, tc.class)
			}
			if r.ErrorClass != "" && !slices.Contains(sysfs.WriteErrorClasses, r.ErrorClass) {
				t.Errorf("error class %q is not in sysfs.WriteErrorClasses %v", r.ErrorClass, sysfs.WriteErrorClasses)
			}
			n := 0
			for _, w := range e.sim.Writes() {
				if w.IRQ == 13 {
					n++
				}
			}
			if n != tc.writes {
				t.Errorf("%d writes of IRQ 13, want %d", n, tc.writes)
			}
			aff, eff, ok := e.sim.State(13)
			switch tc.status {
			case affinity.StatusMoved:
				if aff.String() != "2" || eff.String() != "2" || !r.Effective.Equal(eff) {
					t.Errorf("IRQ 13 now %s/%s, result effective %s; want 2", aff, eff, r.Effective)
				}
			case affinity.StatusVanished:
				if ok {
					t.Error("IRQ 13 still exists")
				}
			default:
				if eff.String() != "0" {
					t.Errorf("IRQ 13 effective %s after a failed move, want still 0", eff)
				}
			}
		})
	}
}

// TestKernelOfflineThenRebalance: the kernel's own offline of CPU2 piles
// the SPIs on CPU0 and loses every pin; a rebalance afterwards spreads them
// over the online CPUs and leaves the shut-down managed queue alone.
func TestKernelOfflineThenRebalance(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			e := newEnv(t, vm4(v))
			e.pinAll(2)
			if err := e.sim.SetCPUOnline(2, false); err != nil {
				t.Fatal(err)
			}
			var spis []int
			for _, irq := range e.sim.IRQs() {
				if e.sim.Kind(irq) == sysfstest.KindSPI {
					spis = append(spis, irq)
				}
			}
			onCPU0 := func() int {
				n := 0
				for _, irq := range spis {
					if _, eff, _ := e.sim.State(irq); eff.String() == "0" {
						n++
					}
				}
				return n
			}
			if n := onCPU0(); n != len(spis) {
				t.Fatalf("precondition: %d of %d SPIs on CPU0 after the kernel's offline", n, len(spis))
			}
			if per := e.movablePerCPU(); per[0] <= per[1]+1 && per[0] <= per[3]+1 {
				t.Fatalf("precondition: the kernel's offline left %v, no pile on CPU0 to spread", per)
			}
			start := len(e.sim.Writes())
			// As the CLI and the daemon rebalance: on 6.1 the probe of
			// their pin-like masks shows the managed queues of the online
			// CPUs; the one shut down on CPU2 is planned a move until its
			// refusal tells what it is, and the engine then plans again so
			// that the movable IRQs end up even.
			_, results := e.engineRebalance()
			for _, r := range results {
				if !r.Wrote() && e.sim.Kind(r.IRQ).Movable() {
					t.Errorf("IRQ %d: %s (%s)", r.IRQ, r.Status, r.Reason)
				}
			}
			e.checkWrites(start, v == sysfstest.Kernel61)
			e.checkSpread(cpus("0-1,3"))
			if aff, eff, _ := e.sim.State(26); aff.String() != "2" || eff.String() != "2" {
				t.Errorf("shut-down managed IRQ 26 now %s/%s, want 2/2", aff, eff)
			}
			for _, w := range e.sim.Writes()[start:] {
				if w.CPUs.Contains(2) {
					t.Errorf("wrote %s (offline CPU2) to IRQ %d", w.CPUs, w.IRQ)
				}
			}
			if plan, _ := e.rebalance(); len(plan.Moves) != 0 {
				t.Errorf("second rebalance planned %v", plan.Moves)
			}
		})
	}
}

// TestBannedAndIsolatedCPUsGetNothing: isolated, nohz_full and banned CPUs
// receive no IRQ unless isolated ones are explicitly included.
func TestBannedAndIsolatedCPUsGetNothing(t *testing.T) {
	tests := []struct {
		name       string
		banned     affinity.BannedCPUs
		spreadOver string
	}{
		{"isolated CPU3 is banned", affinity.BannedCPUs{}, "0-2"},
		{"isolated CPU3 included", affinity.BannedCPUs{IncludeIsolated: true}, "0-3"},
		{"banned CPU1, isolated CPU3", affinity.BannedCPUs{User: cpus("1")}, "0,2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := vm4(sysfstest.Kernel612)
			cfg.Isolated, cfg.NohzFull = cpus("3"), cpus("3")
			e := newEnv(t, cfg)
			e.eng.Configure(affinity.Settings{Banned: tc.banned})
			_, results := e.rebalance()
			for _, r := range results {
				if !r.Wrote() || r.Status == affinity.StatusPending {
					t.Errorf("IRQ %d: %s (%s)", r.IRQ, r.Status, r.Reason)
				}
			}
			e.checkSpread(cpus(tc.spreadOver))
		})
	}
}

// TestErrorsAreClassified checks that the simulator's refusals carry the
// errno the applier names in its reasons.
func TestErrorsAreClassified(t *testing.T) {
	e := newEnv(t, vm4(sysfstest.Kernel61))
	err := e.sim.WriteAffinity(26, cpus("1"))
	var errno syscall.Errno
	if !errors.Is(err, sysfs.ErrUnmovable) || !errors.As(err, &errno) || errno != syscall.EIO {
		t.Errorf("write to a managed IRQ on 6.1: %v", err)
	}
}

// fakeKernel accepts every write; ReadEffective answers what the test set,
// as a chip that delivers where it likes would.
type fakeKernel struct {
	effective map[int]sysfs.CPUSet
}

func (k fakeKernel) WriteAffinity(int, sysfs.CPUSet) error { return nil }
func (k fakeKernel) ReadEffective(irq int) (sysfs.CPUSet, error) {
	return k.effective[irq], nil
}
func (k fakeKernel) OnlineCPUs() (sysfs.CPUSet, error) { return cpus("0-3"), nil }

// TestApplyStatuses: an accepted write is narrowed when the interrupt
// still fires where it fired before (Move.From), moved when it now fires
// elsewhere within the new mask, pending when outside it.
func TestApplyStatuses(t *testing.T) {
	tests := []struct {
		from, to, after string
		want            affinity.Status
	}{
		{"0", "0", "0", affinity.StatusNarrowed},
		{"0", "2", "2", affinity.StatusMoved},
		{"0", "2", "0", affinity.StatusPending},
		{"0-3", "1", "1", affinity.StatusMoved}, // was delivered to any of 0-3
		{"1", "1-2", "1", affinity.StatusNarrowed},
		{"1", "1-2", "2", affinity.StatusMoved},
		{"1", "2", "", affinity.StatusPending},
	}
	plan := affinity.Plan{}
	k := fakeKernel{effective: map[int]sysfs.CPUSet{}}
	for i, tc := range tests {
		plan.Moves = append(plan.Moves, affinity.Move{IRQ: 100 + i, From: cpus(tc.from), To: cpus(tc.to)})
		k.effective[100+i] = cpus(tc.after)
	}
	a := &affinity.Applier{Kernel: k, Allowed: cpus("0-3")}
	results := a.Apply(context.Background(), plan, nil)
	if len(results) != len(tests) {
		t.Fatalf("%d results for %d moves", len(results), len(tests))
	}
	for i, tc := range tests {
		r := results[i]
		if r.Status != tc.want || !r.Wrote() {
			t.Errorf("from %s to %s, effective after %q: %s (wrote %v), want %s", tc.from, tc.to, tc.after, r.Status, r.Wrote(), tc.want)
		}
	}
	// Every accepted write is an expectation for verify; a narrowed IRQ
	// is expected where it stayed.
	want := affinity.ExpectAfter(results, nil)
	if len(want) != len(tests) || want[0].Expected.String() != "0" || want[4].Expected.String() != "1" || want[2].Expected.String() != "2" {
		t.Errorf("expectations %+v", want)
	}
}

func TestResultWrote(t *testing.T) {
	for status, want := range map[affinity.Status]bool{
		affinity.StatusMoved: true, affinity.StatusNarrowed: true, affinity.StatusPending: true,
		affinity.StatusUnmovable: false, affinity.StatusVanished: false, affinity.StatusFailed: false,
	} {
		if got := (affinity.Result{Status: status}).Wrote(); got != want {
			t.Errorf("%s: Wrote() = %v, want %v", status, got, want)
		}
	}
}

// TestApplyStopsWhenCancelled: ctx is cancelled during the second write;
// that write completes, no later one is made, and the results hold only
// the moves attempted.
func TestApplyStopsWhenCancelled(t *testing.T) {
	e := newEnv(t, vm4(sysfstest.Kernel612))
	st := e.load()
	plan := affinity.Plan{Moves: []affinity.Move{
		{IRQ: 13, From: cpus("0"), To: cpus("1")},
		{IRQ: 18, From: cpus("0"), To: cpus("2")},
		{IRQ: 20, From: cpus("0"), To: cpus("3")},
		{IRQ: 22, From: cpus("0"), To: cpus("1")},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.sim.BeforeWrite(18, func(*sysfstest.Sim) error { cancel(); return nil })
	start := len(e.sim.Writes())
	results := e.eng.Applier(st, sysfs.CPUSet{}).Apply(ctx, plan, st.IRQs)
	if len(results) != 2 || results[0].IRQ != 13 || results[1].IRQ != 18 {
		t.Fatalf("results %+v, want those of IRQs 13 and 18 only", results)
	}
	if results[1].Status != affinity.StatusMoved {
		t.Errorf("IRQ 18, written as ctx was cancelled: %+v", results[1])
	}
	var written []int
	for _, w := range e.sim.Writes()[start:] {
		written = append(written, w.IRQ)
	}
	if !slices.Equal(written, []int{13, 18}) {
		t.Errorf("writes after the cancel: IRQs %v, want 13 and 18", written)
	}
	for _, irq := range []int{20, 22} {
		if aff, _, _ := e.sim.State(irq); aff.Len() == 1 {
			t.Errorf("IRQ %d written after the cancel: mask %s", irq, aff)
		}
	}
}
