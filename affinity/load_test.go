package affinity

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

// busyOn returns a movable IRQ delivered to one CPU with a wide mask (the
// kernel's default) firing rate times a second.
func busyOn(n, cpu int, mask string, rate float64) IRQ {
	irq := movableOn(n, mask)
	irq.Effective = sysfs.NewCPUSet(cpu)
	irq.Rate = rate
	return irq
}

// cpuLoad returns, after irqs, the rate and the busy IRQs (rate ≥
// threshold) per CPU of the movable IRQs, and their count per CPU.
func cpuLoad(irqs []IRQ, threshold float64) (rate map[int]float64, busy, count map[int]int) {
	rate, busy, count = map[int]float64{}, map[int]int{}, map[int]int{}
	for _, irq := range irqs {
		if !irq.Movable() {
			continue
		}
		cpu := irq.Where().First()
		rate[cpu] += irq.Rate
		count[cpu]++
		if irq.Rate >= threshold {
			busy[cpu]++
		}
	}
	return rate, busy, count
}

func spreadOf(count map[int]int, allowed sysfs.CPUSet) int {
	lo, hi := -1, 0
	for _, cpu := range allowed.CPUs() {
		n := count[cpu]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - lo
}

// measured is the machine of the issue, in the VM with 4 vCPUs: three busy
// virtio-serial IRQs (two of them on CPU1, where the kernel put them) and
// a dozen nearly idle ones, all with the kernel's wide masks.
func measured() []IRQ {
	var irqs []IRQ
	for i := 0; i < 12; i++ {
		irqs = append(irqs, busyOn(20+i, i%4, "0-3", 0.1*float64(i%3)))
	}
	return append(irqs, busyOn(40, 1, "0-3", 60), busyOn(41, 1, "0-3", 30), busyOn(42, 3, "0-3", 15))
}

// TestLoadSeparatesBusyIRQs: the measured VM's busy IRQs end on three
// distinct CPUs with counts within one, the moves that separate them say
// "load", and a second plan moves nothing.
func TestLoadSeparatesBusyIRQs(t *testing.T) {
	irqs := measured()
	allowed := cpus("0-3")
	p := Planner{}
	plan, err := p.Rebalance(irqs, allowed)
	if err != nil {
		t.Fatal(err)
	}
	after := applyPlan(irqs, plan)
	rate, busy, count := cpuLoad(after, busyThreshold(irqs))
	for cpu, n := range busy {
		if n > 1 {
			t.Errorf("CPU %d holds %d busy IRQs (rates per CPU %v); plan %+v", cpu, n, rate, plan.Moves)
		}
	}
	if s := spreadOf(count, allowed); s > 1 {
		t.Errorf("count spread %d (counts %v)", s, count)
	}
	if !slices.ContainsFunc(plan.Moves, func(m Move) bool { return m.IRQ == 41 || m.IRQ == 40 }) {
		t.Errorf("neither busy IRQ of CPU1 moved: %+v", plan.Moves)
	}
	again, err := p.Rebalance(after, allowed)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Moves) != 0 {
		t.Errorf("second plan moves %+v", again.Moves)
	}

	// Count only: the same machine planned without rates, move for move.
	counted := Planner{Balance: BalanceCount}
	got, _ := counted.Rebalance(irqs, allowed)
	blind := slices.Clone(irqs)
	for i := range blind {
		blind[i].Rate = 0
	}
	want, _ := (&Planner{}).Rebalance(blind, allowed)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("--balance count plans\n%+v\nwant the plan without rates\n%+v", got, want)
	}
}

// TestLoadReasons: a move made for load says so, with the rates.
func TestLoadReasons(t *testing.T) {
	// Every IRQ is settled on its CPU, counts even (2 each), and CPU0
	// holds both busy IRQs: only load can move one.
	irqs := []IRQ{busyOn(1, 0, "0", 50), busyOn(2, 0, "0", 40), busyOn(3, 1, "1", 0), busyOn(4, 1, "1", 0)}
	plan, err := (&Planner{}).Rebalance(irqs, cpus("0-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 2 {
		t.Fatalf("plan %+v, want a swap of IRQ 2 with an idle IRQ of CPU1", plan.Moves)
	}
	for _, m := range plan.Moves {
		if !strings.HasPrefix(m.Reason, "load: ") {
			t.Errorf("move %+v: reason does not start with \"load: \"", m)
		}
	}
	if m := plan.Moves[slices.IndexFunc(plan.Moves, func(m Move) bool { return m.IRQ == 2 })]; m.Reason != "load: 40/s off CPU 0 (90/s) to CPU 1 (0/s)" {
		t.Errorf("IRQ 2's reason %q", m.Reason)
	}
}

// TestLoadOffline: on a settled machine, the busy IRQ of a CPU that goes
// offline goes to the quiet CPU, not beside another busy one; by the
// quick settle's rebalance (the kernel put it on CPU0 with a mask of the
// online CPUs) and by a drain before the offline.
func TestLoadOffline(t *testing.T) {
	var settled []IRQ
	for cpu := 0; cpu < 4; cpu++ {
		for j := 0; j < 3; j++ {
			settled = append(settled, busyOn(10*cpu+j+10, cpu, fmt.Sprint(cpu), 0.2))
		}
	}
	settled = append(settled, busyOn(100, 0, "0", 40), busyOn(101, 1, "1", 35), busyOn(102, 2, "2", 30))
	// 15 IRQs: 4/4/4/3, CPU3 the quiet one.

	drain, err := (&Planner{}).Drain(settled, cpus("2"), cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	if m := movesOf(drain)[102]; !m.To.Equal(cpus("3")) {
		t.Errorf("drain 2: busy IRQ 102 goes to %s, want the quiet CPU3 (plan %+v)", m.To, drain.Moves)
	}

	// The kernel's migration: every IRQ of CPU2 now has the online CPUs as
	// its mask and fires on CPU0.
	offline := slices.Clone(settled)
	for i := range offline {
		if offline[i].Effective.Equal(cpus("2")) {
			offline[i].Affinity, offline[i].Effective = cpus("0-1,3"), cpus("0")
		}
	}
	allowed := cpus("0-1,3")
	plan, err := (&Planner{}).Rebalance(offline, allowed)
	if err != nil {
		t.Fatal(err)
	}
	after := applyPlan(offline, plan)
	if cpu := after[slices.IndexFunc(after, func(irq IRQ) bool { return irq.IRQ == 102 })].Where(); !cpu.Equal(cpus("3")) {
		t.Errorf("after the offline busy IRQ 102 is on %s, want CPU3 (plan %+v)", cpu, plan.Moves)
	}
	_, busy, count := cpuLoad(after, busyThreshold(offline))
	if s := spreadOf(count, allowed); s > 1 {
		t.Errorf("count spread %d (%v)", s, count)
	}
	for cpu, n := range busy {
		if n > 1 {
			t.Errorf("CPU %d holds %d busy IRQs", cpu, n)
		}
	}
}

// TestLoadPinsAndNodesWin: a pinned busy IRQ stays on its pin and its CPU
// counts as busy; busy IRQs of a node stay in the node, on distinct CPUs
// of it.
func TestLoadPinsAndNodesWin(t *testing.T) {
	irqs := []IRQ{busyOn(1, 1, "1", 80), busyOn(2, 1, "0-3", 50), busyOn(3, 1, "0-3", 40), busyOn(4, 0, "0-3", 0), busyOn(5, 2, "0-3", 0), busyOn(6, 3, "0-3", 0)}
	p := Planner{Pins: Pins{}}
	p.Pins[Key(irqs[0])] = Pin{IRQ: 1, CPUs: cpus("1")}
	plan, err := p.Rebalance(irqs, cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	after := applyPlan(irqs, plan)
	if _, moved := movesOf(plan)[1]; moved {
		t.Errorf("the pinned IRQ moved: %+v", plan.Moves)
	}
	for _, irq := range after[1:3] {
		if irq.Where().Contains(1) {
			t.Errorf("busy IRQ %d stays beside the pinned busy IRQ on CPU1: %+v", irq.IRQ, plan.Moves)
		}
	}

	nodes := twoNodes() // 0-3 and 4-7
	var numa []IRQ
	for i := 0; i < 8; i++ {
		numa = append(numa, nodeIRQ(10+i, 1, fmt.Sprint(4+i%4)))
	}
	for i := 0; i < 3; i++ {
		irq := nodeIRQ(30+i, 1, "5")
		irq.Rate = float64(30 + 10*i)
		numa = append(numa, irq)
	}
	np := Planner{Nodes: nodes}
	plan, err = np.Rebalance(numa, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	after = applyPlan(numa, plan)
	seen := map[int]bool{}
	for _, irq := range after {
		if irq.Rate == 0 {
			continue
		}
		cpu := irq.Where().First()
		if cpu < 4 || seen[cpu] {
			t.Errorf("busy IRQ %d of node 1 on CPU %d (plan %+v)", irq.IRQ, cpu, plan.Moves)
		}
		seen[cpu] = true
	}
}

// wobble returns irqs with every rate scaled by a factor within ±by.
func wobble(rng *rand.Rand, irqs []IRQ, by float64) []IRQ {
	out := slices.Clone(irqs)
	for i := range out {
		out[i].Rate *= 1 + by*(2*rng.Float64()-1)
	}
	return out
}

// TestLoadRandomMachines: on random machines (2–12 CPUs, some busy IRQs
// at 20–100/s and idle ones under 1/s, placed at random with single or
// wide masks), a rebalance keeps the count spread within one, leaves no
// CPU with two busy IRQs while another has none, is deterministic, and
// under rates that wobble by ±12% ten times over, nothing moves again.
func TestLoadRandomMachines(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		ncpu := 2 + rng.IntN(11)
		allowed := sysfs.NewCPUSet()
		for cpu := 0; cpu < ncpu; cpu++ {
			allowed = allowed.With(cpu)
		}
		n := ncpu + rng.IntN(4*ncpu)
		nbusy := rng.IntN(min(n, ncpu+3) + 1)
		var irqs []IRQ
		for i := 0; i < n; i++ {
			cpu := rng.IntN(ncpu)
			mask := fmt.Sprint(cpu)
			if rng.IntN(2) == 0 {
				mask = allowed.String()
			}
			rate := rng.Float64()
			if i < nbusy {
				rate = 20 + 80*rng.Float64()
			}
			irqs = append(irqs, busyOn(100+i, cpu, mask, rate))
		}
		name := fmt.Sprintf("seed %d (%d CPUs, %d IRQs, %d busy)", seed, ncpu, n, nbusy)
		p := Planner{}
		plan, err := p.Rebalance(irqs, allowed)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		same, _ := (&Planner{}).Rebalance(irqs, allowed)
		if !reflect.DeepEqual(plan, same) {
			t.Errorf("%s: two plans of the same input differ", name)
		}
		after := applyPlan(irqs, plan)
		_, busy, count := cpuLoad(after, busyThreshold(irqs))
		if s := spreadOf(count, allowed); s > 1 {
			t.Errorf("%s: count spread %d (%v)", name, s, count)
		}
		shared, quiet := -1, -1
		for _, cpu := range allowed.CPUs() {
			if busy[cpu] > 1 {
				shared = cpu
			}
			if busy[cpu] == 0 {
				quiet = cpu
			}
		}
		if shared >= 0 && quiet >= 0 {
			t.Errorf("%s: CPU %d holds %d busy IRQs while CPU %d has none", name, shared, busy[shared], quiet)
		}
		p.Steady = true
		for round := 0; round < 10; round++ {
			again, err := p.Rebalance(wobble(rng, after, 0.12), allowed)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Moves) > 0 {
				t.Errorf("%s: round %d of wobbling rates moves %+v", name, round, again.Moves)
				break
			}
		}
	}
}

// TestLoadCutsTheBusiestCPU: more busy IRQs than CPUs, two heavy ones
// stacked: the plan takes one off; a placement already within a quarter
// of the best is left alone.
func TestLoadCutsTheBusiestCPU(t *testing.T) {
	// 2 CPUs, counts 2/2: CPU0 has 100+90, CPU1 has 20+10.
	irqs := []IRQ{busyOn(1, 0, "0", 100), busyOn(2, 0, "0", 90), busyOn(3, 1, "1", 20), busyOn(4, 1, "1", 10)}
	plan, err := (&Planner{}).Rebalance(irqs, cpus("0-1"))
	if err != nil {
		t.Fatal(err)
	}
	rate, _, _ := cpuLoad(applyPlan(irqs, plan), MinBusyRate)
	if most := max(rate[0], rate[1]); most > 0.75*190 {
		t.Errorf("the busiest CPU is at %.0f/s after the plan (from 190/s): %+v", most, plan.Moves)
	}
	// The daemon's quick plan of a CPU event (Steady, DeferCuts) leaves
	// the cut to its next full plan, which makes it: it is material.
	steady := Planner{Steady: true, DeferCuts: true}
	if plan, err := steady.Rebalance(irqs, cpus("0-1")); err != nil || len(plan.Moves) != 0 {
		t.Errorf("a quick steady plan cut the busiest CPU: %+v (%v)", plan.Moves, err)
	}
	steady.DeferCuts = false
	plan, err = steady.Rebalance(irqs, cpus("0-1"))
	if err != nil {
		t.Fatal(err)
	}
	rate, _, _ = cpuLoad(applyPlan(irqs, plan), MinBusyRate)
	if most := max(rate[0], rate[1]); most > 0.75*190 {
		t.Errorf("the full steady plan leaves the busiest CPU at %.0f/s (from 190/s): %+v", most, plan.Moves)
	}
	// 100+20 against 90+10: a swap would give at best 110/110, not a cut
	// by a quarter: nothing moves.
	near := []IRQ{busyOn(1, 0, "0", 100), busyOn(2, 1, "1", 90), busyOn(3, 0, "0", 20), busyOn(4, 1, "1", 10)}
	if plan, _ := (&Planner{}).Rebalance(near, cpus("0-1")); len(plan.Moves) != 0 {
		t.Errorf("a placement within a quarter of the best moves: %+v", plan.Moves)
	}
}

// TestRateHistory: the median of three windows ignores one window's spike
// or dip, and MeasureRates divides by the window.
func TestRateHistory(t *testing.T) {
	var h RateHistory
	if h.Smoothed() != nil {
		t.Error("empty history gives rates")
	}
	h.Add(Rates{"a": 50, "b": 0.1})
	h.Add(Rates{"a": 52, "b": 900}) // b spikes once
	if got := h.Smoothed(); got["b"] != 0.1 || got["a"] != 50 {
		t.Errorf("two windows: %v, want the lower of each", got)
	}
	h.Add(Rates{"a": 2, "b": 0.2}) // a dips once
	got := h.Smoothed()
	if got["a"] != 50 || got["b"] != 0.2 {
		t.Errorf("three windows: %v, want a 50 and b 0.2", got)
	}
	h.Add(Rates{"a": 51, "b": 0.1, "c": 7})
	if h.Windows() != 3 {
		t.Errorf("%d windows kept", h.Windows())
	}
	if got := h.Smoothed(); got["a"] != 51 || got["c"] != 7 {
		t.Errorf("after a fourth window: %v", got)
	}
}
