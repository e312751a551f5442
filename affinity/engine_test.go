package affinity_test

import (
	"context"
	"os"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// TestProbePinsFindsManagedQueues: on kernel 6.1 the virtio-blk queues'
// masks ("0", "1", …) look like admin pins; the probe's refused rewrite
// shows they are managed, and nothing changes in the kernel.
func TestProbePinsFindsManagedQueues(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
	e := affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, TrackPins: true})
	st, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	learned := map[int]bool{}
	for _, p := range st.LearnedPins {
		learned[p.IRQ] = true
	}
	managed := []int{}
	for _, irq := range sim.IRQs() {
		if sim.Kind(irq) == sysfstest.KindManaged {
			managed = append(managed, irq)
			if !learned[irq] {
				t.Fatalf("managed IRQ %d not mistaken for a pin before the probe; the test proves nothing", irq)
			}
		}
	}
	before := map[int]string{}
	for _, irq := range managed {
		aff, _, _ := sim.State(irq)
		before[irq] = aff.String()
	}
	e.ProbePins(st)
	if len(st.LearnedPins) != 0 || len(e.Pins()) != 0 {
		t.Errorf("pins left after the probe: %+v", e.Pins())
	}
	for _, irq := range st.IRQs {
		for _, m := range managed {
			if irq.IRQ == m && irq.Class != affinity.ClassManaged {
				t.Errorf("IRQ %d class %s after the probe", m, irq.Class)
			}
		}
	}
	for _, irq := range managed {
		if aff, _, _ := sim.State(irq); aff.String() != before[irq] {
			t.Errorf("probe changed IRQ %d: %s -> %s", irq, before[irq], aff)
		}
	}
	// The next load knows them from memory, without another write.
	writes := len(sim.Writes())
	again, _ := e.Load()
	e.ProbePins(again)
	if len(sim.Writes()) != writes || len(again.LearnedPins) != 0 {
		t.Errorf("second load probed again or relearned pins: %+v", again.LearnedPins)
	}
}

// TestRebalanceReplansAfterRefusals: with every IRQ pinned to CPU0 on 6.1
// the first plan gives the managed queues places; their refusals must not
// leave the movable IRQs uneven.
func TestRebalanceReplansAfterRefusals(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
	for _, irq := range sim.IRQs() {
		if sim.Kind(irq).Movable() {
			if err := sim.WriteAffinity(irq, sysfs.NewCPUSet(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	e := affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim})
	st, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	_, _, results, err := e.Rebalance(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range results {
		if r.Status == affinity.StatusUnmovable {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no write was refused; the test proves nothing")
	}
	load := map[int]int{0: 0, 1: 0, 2: 0, 3: 0}
	for _, irq := range sim.IRQs() {
		if sim.Kind(irq).Movable() {
			_, eff, _ := sim.State(irq)
			load[eff.First()]++
		}
	}
	lo, hi := 99, 0
	for _, n := range load {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		t.Errorf("movable IRQs per CPU %v after %d refusals", load, refused)
	}
	st, _ = e.Load()
	if plan, _ := e.Planner().Rebalance(st.IRQs, st.Allowed); len(plan.Moves) != 0 {
		t.Errorf("a second rebalance still plans %+v", plan.Moves)
	}
}

// TestCacheStaticCPUs: with the cache on, Load re-reads only the online
// list; isolated CPUs read at the first Load stay banned even if the file
// is changed (it cannot change at run time), until ForgetCPUs.
func TestCacheStaticCPUs(t *testing.T) {
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	cfg.Isolated = sysfs.NewCPUSet(3)
	sim := sysfstest.New(t, cfg)
	e := affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, CacheStaticCPUs: true})
	st, err := e.Load()
	if err != nil || st.Allowed.String() != "0-2" {
		t.Fatalf("first load: allowed %s, %v", st.Allowed, err)
	}
	if err := sim.SetCPUOnline(1, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sim.FS().SysPath(sysfs.CPUDir, "isolated"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ = e.Load()
	if st.Allowed.String() != "0,2" {
		t.Errorf("cached load: allowed %s, want 0,2 (online re-read, isolated cached)", st.Allowed)
	}
	e.ForgetCPUs()
	st, _ = e.Load()
	if st.Allowed.String() != "0,2-3" {
		t.Errorf("after ForgetCPUs: allowed %s, want 0,2-3", st.Allowed)
	}
}

// TestDriverHintIsNoPin: a narrow mask that equals the IRQ's
// affinity_hint is the driver's own spreading of its queues, not a pin;
// the same mask on an IRQ with no such hint is one.
func TestDriverHintIsNoPin(t *testing.T) {
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	for i, q := range cfg.IRQs {
		switch q.IRQ {
		case 29: // virtio0-input.0: the driver spreads it to CPU2
			cfg.IRQs[i] = q.WithHint(2).WithAffinity(2)
		case 21: // virtio1-input: the operator's echo 2 > smp_affinity_list
			cfg.IRQs[i] = q.WithHint().WithAffinity(2)
		}
	}
	sim := sysfstest.New(t, cfg)
	e := affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, TrackPins: true})
	st, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	learned := map[int]bool{}
	for _, pin := range st.LearnedPins {
		learned[pin.IRQ] = true
	}
	if learned[29] {
		t.Error("IRQ 29's mask, its driver's affinity_hint, was learned as a pin")
	}
	if !learned[21] {
		t.Errorf("IRQ 21's hand-set mask was not learned as a pin: %v", st.LearnedPins)
	}
	if _, ok := e.Pins()[affinity.Key(st.IRQs[indexOf(st.IRQs, 29)])]; ok {
		t.Error("IRQ 29 has a pin")
	}
}

func indexOf(irqs []affinity.IRQ, n int) int {
	for i, irq := range irqs {
		if irq.IRQ == n {
			return i
		}
	}
	return -1
}

// TestNoLearnPins: with NoLearnPins (--learn-pins=false) a mask set by
// hand is not learned, and a rebalance spreads the IRQ like any other.
func TestNoLearnPins(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	if err := sim.WriteAffinity(21, sysfs.NewCPUSet(2)); err != nil {
		t.Fatal(err)
	}
	for _, no := range []bool{false, true} {
		e := affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, TrackPins: true, NoLearnPins: no})
		st, err := e.Load()
		if err != nil {
			t.Fatal(err)
		}
		learned := len(st.LearnedPins) == 1 && st.LearnedPins[0].IRQ == 21
		if learned == no {
			t.Errorf("NoLearnPins %v: learned %v", no, st.LearnedPins)
		}
		if _, err := e.Load(); err != nil {
			t.Fatal(err)
		}
		if n := len(e.Pins()); no && n != 0 {
			t.Errorf("NoLearnPins: %d pins after a second load", n)
		}
	}
}
