package affinity

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func cpus(list string) sysfs.CPUSet {
	s, err := sysfs.ParseCPUList(list)
	if err != nil {
		panic(err)
	}
	return s
}

// movableOn returns a movable IRQ whose mask and effective affinity are list.
func movableOn(n int, list string) IRQ {
	return IRQ{IRQ: n, Actions: []string{"dev"}, Affinity: cpus(list), Effective: cpus(list), HasEffective: true, Class: ClassMovable}
}

func TestCursorPick(t *testing.T) {
	tests := []struct {
		name    string
		next    int
		allowed string
		ok      func(int) bool
		want    int
		wantNxt int
	}{
		{name: "zero value starts at lowest", next: 0, allowed: "1-3", want: 1, wantNxt: 2},
		{name: "continues after previous", next: 2, allowed: "0-3", want: 2, wantNxt: 3},
		{name: "wraps", next: 4, allowed: "0-3", want: 0, wantNxt: 1},
		{name: "skips missing CPUs", next: 1, allowed: "0,2", want: 2, wantNxt: 3},
		{name: "skips refused", next: 0, allowed: "0-3", ok: func(c int) bool { return c == 3 }, want: 3, wantNxt: 4},
		{name: "all refused", next: 0, allowed: "0-3", ok: func(int) bool { return false }, want: -1, wantNxt: 0},
		{name: "empty", next: 0, allowed: "", want: -1, wantNxt: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Cursor{Next: tt.next}
			if got := c.Pick(cpus(tt.allowed), tt.ok); got != tt.want || c.Next != tt.wantNxt {
				t.Errorf("Pick = %d (next %d), want %d (next %d)", got, c.Next, tt.want, tt.wantNxt)
			}
		})
	}
}

// loads counts movable IRQs per CPU after applying plan to irqs.
func loads(irqs []IRQ, plan Plan) map[int]int {
	target := map[int]sysfs.CPUSet{}
	for _, irq := range irqs {
		if irq.Movable() {
			target[irq.IRQ] = irq.Where()
		}
	}
	for _, m := range plan.Moves {
		target[m.IRQ] = m.To
	}
	out := map[int]int{}
	for _, set := range target {
		for _, c := range set.CPUs() {
			out[c]++
		}
	}
	return out
}

func TestRebalance(t *testing.T) {
	perCPU := IRQ{IRQ: 11, Actions: []string{"arch_timer"}, Affinity: cpus("0-3"), HasEffective: true, Class: ClassPerCPU, Reason: "per-CPU: GIC PPI 27"}
	tests := []struct {
		name      string
		irqs      []IRQ
		allowed   string
		wantMoves map[int]string // IRQ → target
		// wantNarrow are the moves that only narrow the mask to the CPU
		// the IRQ is delivered to.
		wantNarrow []int
		wantSkip   []int
	}{
		{
			name:       "kernel default: all on CPU0, all-CPU masks",
			irqs:       []IRQ{perCPU, {IRQ: 13, Actions: []string{"uart"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}, {IRQ: 16, Actions: []string{"rtc"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}, {IRQ: 22, Actions: []string{"virtio3"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}},
			allowed:    "0-3",
			wantMoves:  map[int]string{13: "0", 16: "1", 22: "2"},
			wantNarrow: []int{13},
			wantSkip:   []int{11},
		},
		{
			name:      "already balanced: nothing to do",
			irqs:      []IRQ{movableOn(20, "0"), movableOn(21, "1"), movableOn(22, "2"), movableOn(23, "3"), movableOn(24, "0")},
			allowed:   "0-3",
			wantMoves: map[int]string{},
		},
		{
			name:      "piled on CPU0: keeps its share, deals the rest",
			irqs:      []IRQ{movableOn(20, "0"), movableOn(21, "0"), movableOn(22, "0"), movableOn(23, "0")},
			allowed:   "0-3",
			wantMoves: map[int]string{21: "1", 22: "2", 23: "3"},
		},
		{
			name:      "IRQ on a banned CPU moves",
			irqs:      []IRQ{movableOn(20, "0"), movableOn(21, "3")},
			allowed:   "0-2",
			wantMoves: map[int]string{21: "1"},
		},
		{
			name:      "multi-CPU mask is narrowed to one CPU",
			irqs:      []IRQ{movableOn(20, "2-3")},
			allowed:   "0-3",
			wantMoves: map[int]string{20: "0"},
		},
		{
			name:       "effective differs from a single-CPU mask",
			irqs:       []IRQ{{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("1"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}},
			allowed:    "0-3",
			wantMoves:  map[int]string{20: "0"},
			wantNarrow: []int{20},
		},
		{
			name:       "wide mask, effective on an allowed CPU: narrowed in place",
			irqs:       []IRQ{{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("0-3"), Effective: cpus("2"), HasEffective: true, Class: ClassMovable}},
			allowed:    "0-3",
			wantMoves:  map[int]string{20: "2"},
			wantNarrow: []int{20},
		},
		{
			name:      "no effective file, wide mask: dealt like any other",
			irqs:      []IRQ{{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("2-3"), Class: ClassMovable}},
			allowed:   "0-3",
			wantMoves: map[int]string{20: "0"},
		},
		{
			name:      "no effective file, single-CPU mask: settled",
			irqs:      []IRQ{{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("3"), Class: ClassMovable}},
			allowed:   "0-3",
			wantMoves: map[int]string{},
		},
		{
			name: "over its share: settled IRQs stay, the one to narrow moves",
			irqs: []IRQ{
				{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("0-1"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable},
				movableOn(21, "0"), movableOn(22, "0"), movableOn(23, "1"),
			},
			allowed:   "0-1",
			wantMoves: map[int]string{20: "1"},
		},
		{
			name: "the extra place goes to the CPU whose extra IRQ is settled",
			irqs: []IRQ{
				{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("0-2"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable},
				{IRQ: 21, Actions: []string{"x"}, Affinity: cpus("0-2"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable},
				movableOn(22, "1"), movableOn(23, "1"),
			},
			// share 1, extra 1: CPU1 keeps both (no write), CPU0 keeps 20
			// narrowed and 21 goes to the empty CPU2.
			allowed:    "0-2",
			wantMoves:  map[int]string{20: "0", 21: "2"},
			wantNarrow: []int{20},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Planner
			plan, err := p.Rebalance(tt.irqs, cpus(tt.allowed))
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			narrow := map[int]bool{}
			for _, irq := range tt.wantNarrow {
				narrow[irq] = true
			}
			for _, m := range plan.Moves {
				got[m.IRQ] = m.To.String()
				if m.To.Len() != 1 || !m.To.IsSubsetOf(cpus(tt.allowed)) {
					t.Errorf("IRQ %d: target %q is not one allowed CPU", m.IRQ, m.To)
				}
				wantReason := "rebalance"
				if narrow[m.IRQ] {
					wantReason = "narrow"
				}
				if m.Narrow != narrow[m.IRQ] || m.Reason != wantReason {
					t.Errorf("IRQ %d: narrow %v reason %q, want %v %q", m.IRQ, m.Narrow, m.Reason, narrow[m.IRQ], wantReason)
				}
			}
			if len(got) != len(tt.wantMoves) {
				t.Errorf("moves = %v, want %v", got, tt.wantMoves)
			}
			for irq, want := range tt.wantMoves {
				if got[irq] != want {
					t.Errorf("IRQ %d to %q, want %q (all: %v)", irq, got[irq], want, got)
				}
			}
			if len(plan.Skipped) != len(tt.wantSkip) {
				t.Errorf("skipped = %v, want IRQs %v", plan.Skipped, tt.wantSkip)
			}
		})
	}
}

// TestRebalanceBalancedAndIdempotent checks the two properties that matter
// on every input shape: counts per CPU differ by at most one, and a second
// rebalance of the result plans nothing.
func TestRebalanceBalancedAndIdempotent(t *testing.T) {
	for n := 0; n < 12; n++ {
		for _, allowed := range []string{"0", "0-1", "0-3", "1,3,5", "0-2,7"} {
			var irqs []IRQ
			for i := range n {
				irqs = append(irqs, movableOn(100+i, []string{"0", "0-3", "3", "1", "7"}[i%5]))
			}
			var p Planner
			plan, err := p.Rebalance(irqs, cpus(allowed))
			if err != nil {
				t.Fatal(err)
			}
			l := loads(irqs, plan)
			lo, hi := n, 0
			for _, c := range cpus(allowed).CPUs() {
				lo, hi = min(lo, l[c]), max(hi, l[c])
			}
			if n > 0 && hi-lo > 1 {
				t.Errorf("n=%d allowed=%s: loads %v differ by %d", n, allowed, l, hi-lo)
			}
			// Apply the plan and rebalance again.
			after := make([]IRQ, len(irqs))
			copy(after, irqs)
			for _, m := range plan.Moves {
				for i := range after {
					if after[i].IRQ == m.IRQ {
						after[i].Affinity, after[i].Effective = m.To, m.To
					}
				}
			}
			again, err := p.Rebalance(after, cpus(allowed))
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Moves) != 0 {
				t.Errorf("n=%d allowed=%s: second rebalance moves %v", n, allowed, again.Moves)
			}
		}
	}
}

// applyPlan returns irqs as they are after plan, the chip delivering each
// moved IRQ to its new single-CPU mask.
func applyPlan(irqs []IRQ, plan Plan) []IRQ {
	after := slices.Clone(irqs)
	for _, m := range plan.Moves {
		for i := range after {
			if after[i].IRQ == m.IRQ {
				after[i].Affinity = m.To
				if after[i].HasEffective {
					after[i].Effective = m.To
				}
			}
		}
	}
	return after
}

// TestRebalanceNarrowsInPlace: on a 2-CPU host whose 18 movable IRQs sit
// 9/9 by effective CPU with masks 0-1, rebalance narrows all 18 masks and
// moves no interrupt; a second run plans nothing.
func TestRebalanceNarrowsInPlace(t *testing.T) {
	var irqs []IRQ
	for i := range 18 {
		irqs = append(irqs, IRQ{IRQ: 100 + i, Actions: []string{"dev"}, Affinity: cpus("0-1"),
			Effective: sysfs.NewCPUSet(i % 2), HasEffective: true, Class: ClassMovable})
	}
	var p Planner
	plan, err := p.Rebalance(irqs, cpus("0-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 18 {
		t.Fatalf("%d writes planned, want 18", len(plan.Moves))
	}
	for i, m := range plan.Moves {
		if !m.Narrow || m.Reason != "narrow" || !m.To.Equal(irqs[i].Effective) || !m.From.Equal(irqs[i].Effective) {
			t.Errorf("IRQ %d (effective %s): %+v, want narrowed to its effective CPU", m.IRQ, irqs[i].Effective, m)
		}
	}
	if p.Cursor.Next != 0 {
		t.Errorf("cursor moved to %d by a plan that places nothing", p.Cursor.Next)
	}
	if again, _ := p.Rebalance(applyPlan(irqs, plan), cpus("0-1")); len(again.Moves) != 0 {
		t.Errorf("second rebalance plans %+v", again.Moves)
	}

	// 10/8: one interrupt must move, the other 17 are only narrowed.
	irqs[1].Effective = cpus("0")
	plan, _ = p.Rebalance(irqs, cpus("0-1"))
	moved := 0
	for _, m := range plan.Moves {
		if !m.Narrow {
			moved++
			if m.From.String() != "0" || m.To.String() != "1" || m.Reason != "rebalance" {
				t.Errorf("move %+v, want one IRQ from 0 to 1", m)
			}
		}
	}
	if len(plan.Moves) != 18 || moved != 1 {
		t.Errorf("%d writes, %d moves; want 18 writes, 1 move", len(plan.Moves), moved)
	}
}

// TestRebalanceFewestMoves checks on random inputs that a rebalance moves
// the fewest interrupts that can even the counts (an IRQ stays on its CPU
// whenever that CPU is allowed and within its share), writes the fewest
// masks among such plans, marks exactly the in-place writes as Narrow,
// balances, and plans nothing the second time.
func TestRebalanceFewestMoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		ncpu := 1 + rng.IntN(9)
		possible := cpus(fmt.Sprintf("0-%d", ncpu))
		var allowed sysfs.CPUSet
		for _, c := range possible.CPUs() {
			if rng.IntN(4) != 0 {
				allowed = allowed.With(c)
			}
		}
		if allowed.IsEmpty() {
			allowed = allowed.With(rng.IntN(ncpu + 1))
		}
		var irqs []IRQ
		for i := range rng.IntN(40) {
			irq := IRQ{IRQ: 100 + i, Actions: []string{"dev"}, HasEffective: true, Class: ClassMovable}
			cpu := rng.IntN(ncpu + 1)
			switch rng.IntN(5) {
			case 0: // settled
				irq.Affinity, irq.Effective = sysfs.NewCPUSet(cpu), sysfs.NewCPUSet(cpu)
			case 1: // the kernel's default mask
				irq.Affinity, irq.Effective = possible, sysfs.NewCPUSet(cpu)
			case 2: // delivered to several CPUs
				irq.Affinity, irq.Effective = possible, sysfs.NewCPUSet(cpu, (cpu+1)%(ncpu+1))
			case 3: // no effective file
				irq.HasEffective = false
				irq.Affinity = sysfs.NewCPUSet(cpu)
				if rng.IntN(2) == 0 {
					irq.Affinity = possible
				}
			case 4: // not a movable IRQ
				irq.Class, irq.Affinity, irq.Effective = ClassManaged, sysfs.NewCPUSet(cpu), sysfs.NewCPUSet(cpu)
			}
			irqs = append(irqs, irq)
		}
		// The optimum, counted independently of the planner.
		n, on, settled := 0, map[int]int{}, map[int]int{}
		for _, irq := range irqs {
			if !irq.Movable() {
				continue
			}
			n++
			if w := irq.Where(); w.Len() == 1 && allowed.Contains(w.First()) {
				on[w.First()]++
				if irq.Affinity.Equal(w) {
					settled[w.First()]++
				}
			}
		}
		share, extra := n/allowed.Len(), n%allowed.Len()
		keep, keepSettled, over, overSettled := 0, 0, 0, 0
		for _, c := range allowed.CPUs() {
			keep += min(on[c], share)
			keepSettled += min(settled[c], share)
			if on[c] > share {
				over++
			}
			if settled[c] > share {
				overSettled++
			}
		}
		wantMoves := n - keep - min(extra, over)
		wantWrites := n - keepSettled - min(extra, overSettled)

		p := Planner{Cursor: Cursor{Next: rng.IntN(ncpu + 2)}}
		plan, err := p.Rebalance(irqs, allowed)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("iter %d (%d IRQs over %s)", iter, n, allowed)
		moves := 0
		for _, m := range plan.Moves {
			i := slices.IndexFunc(irqs, func(q IRQ) bool { return q.IRQ == m.IRQ })
			where := irqs[i].Where()
			inPlace := where.Len() == 1 && m.To.Equal(where)
			if m.Narrow != inPlace || (m.Reason == "narrow") != inPlace {
				t.Fatalf("%s: IRQ %d on %s to %s: narrow %v reason %q", name, m.IRQ, where, m.To, m.Narrow, m.Reason)
			}
			if !m.Narrow {
				moves++
			}
		}
		if moves != wantMoves || len(plan.Moves) != wantWrites {
			t.Fatalf("%s: %d moves in %d writes, want %d in %d: %+v", name, moves, len(plan.Moves), wantMoves, wantWrites, plan.Moves)
		}
		l := loads(irqs, plan)
		for _, c := range allowed.CPUs() {
			if l[c] != share && l[c] != share+1 {
				t.Fatalf("%s: CPU %d holds %d, want %d or %d: %v", name, c, l[c], share, share+1, l)
			}
		}
		if again, _ := p.Rebalance(applyPlan(irqs, plan), allowed); len(again.Moves) != 0 {
			t.Fatalf("%s: second rebalance plans %+v", name, again.Moves)
		}
	}
}

// TestRebalanceCursorKeepsSpreading: the IRQ that must go somewhere goes to
// the least-loaded CPU, and the cursor breaks ties between them from one
// plan to the next.
func TestRebalanceCursorKeepsSpreading(t *testing.T) {
	var p Planner
	var got []string
	for range 4 {
		// One IRQ per CPU of 1-3, one on the banned CPU 4: CPU0 is the
		// least loaded every time.
		irqs := []IRQ{movableOn(20, "1"), movableOn(21, "2"), movableOn(22, "3"), movableOn(23, "4")}
		plan, _ := p.Rebalance(irqs, cpus("0-3"))
		if len(plan.Moves) != 1 || plan.Moves[0].IRQ != 23 {
			t.Fatalf("plan %+v, want IRQ 23 moved", plan.Moves)
		}
		got = append(got, plan.Moves[0].To.String())
	}
	if want := []string{"0", "0", "0", "0"}; !slices.Equal(got, want) {
		t.Errorf("targets %v, want the least-loaded CPU0 each time", got)
	}
	got = nil
	for range 5 {
		irqs := []IRQ{movableOn(20, "0"), movableOn(21, "1"), movableOn(22, "2"), movableOn(23, "4")}
		plan, _ := p.Rebalance(irqs, cpus("0-2"))
		got = append(got, plan.Moves[0].To.String())
	}
	// Four earlier picks of CPU0 left the cursor at 1.
	if want := []string{"1", "2", "0", "1", "2"}; !slices.Equal(got, want) {
		t.Errorf("ties broken as %v, want %v (the cursor continues)", got, want)
	}
}

func TestRebalanceDeterministic(t *testing.T) {
	irqs := []IRQ{movableOn(1, "0-3"), movableOn(2, "0-3"), movableOn(3, "0-3")}
	a, b := Planner{Cursor: Cursor{Next: 2}}, Planner{Cursor: Cursor{Next: 2}}
	pa, _ := a.Rebalance(irqs, cpus("0-3"))
	pb, _ := b.Rebalance(irqs, cpus("0-3"))
	for i := range pa.Moves {
		if !pa.Moves[i].To.Equal(pb.Moves[i].To) {
			t.Fatalf("same input and cursor, different plans: %v vs %v", pa.Moves, pb.Moves)
		}
	}
	if pa.Moves[0].To.String() != "2" {
		t.Errorf("first move to %q, want the cursor's CPU 2", pa.Moves[0].To)
	}
}

func TestDrain(t *testing.T) {
	managed := IRQ{IRQ: 26, Actions: []string{"virtio2-req.2"}, Affinity: cpus("2"), Effective: cpus("2"), HasEffective: true, Class: ClassManaged, Reason: "managed: smp_affinity_list is read-only"}
	noEffective := IRQ{IRQ: 40, Actions: []string{"old"}, Affinity: cpus("1-2"), Class: ClassMovable}
	irqs := []IRQ{movableOn(20, "2"), movableOn(21, "2"), movableOn(22, "2"), movableOn(23, "0"), movableOn(24, "2-3"), managed, noEffective}
	var p Planner
	plan, err := p.Drain(irqs, cpus("2"), cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, m := range plan.Moves {
		got[m.IRQ] = m.To.String()
		if m.Narrow || m.Reason != "drain 2" {
			t.Errorf("IRQ %d: narrow %v reason %q, want a drain move", m.IRQ, m.Narrow, m.Reason)
		}
	}
	// 24's effective is 2-3 here, so it is on CPU2; 40 has no effective
	// file and its mask includes 2. CPU0 already holds 23, so the first
	// goes to 1, the next to 3, then the cursor breaks the ties: 0, 1, 3.
	want := map[int]string{20: "1", 21: "3", 22: "0", 24: "1", 40: "3"}
	if len(got) != len(want) {
		t.Fatalf("moves %v, want %v", got, want)
	}
	for irq, cpu := range want {
		if got[irq] != cpu {
			t.Errorf("IRQ %d to %q, want %q", irq, got[irq], cpu)
		}
	}
	if len(plan.Skipped) != 1 || plan.Skipped[0].IRQ != 26 || plan.Skipped[0].Class != ClassManaged {
		t.Errorf("skipped = %+v, want managed IRQ 26", plan.Skipped)
	}
}

// TestDrainCursorBreaksTies: among equally loaded CPUs the cursor picks,
// and it survives between drains so that they keep spreading.
func TestDrainCursorBreaksTies(t *testing.T) {
	p := Planner{Cursor: Cursor{Next: 2}}
	irqs := []IRQ{movableOn(50, "3"), movableOn(60, "0"), movableOn(61, "1"), movableOn(62, "2")}
	var got []string
	for range 3 {
		plan, err := p.Drain(irqs, cpus("3"), cpus("0-3"))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, plan.Moves[0].To.String())
	}
	if want := []string{"2", "0", "1"}; !slices.Equal(got, want) {
		t.Errorf("successive drains went to %v, want %v (cursor from 2, skipping the drained CPU3)", got, want)
	}
}

// TestDrainLeastLoaded: draining CPU1 of 18 IRQs dealt round-robin over
// 0-3 (5/5/4/4) sends its five to the least-loaded CPUs: 6/6/6, where the
// cursor alone gave 7/6/5.
func TestDrainLeastLoaded(t *testing.T) {
	var irqs []IRQ
	for i := range 18 {
		irqs = append(irqs, movableOn(100+i, fmt.Sprint(i%4)))
	}
	var p Planner
	plan, err := p.Drain(irqs, cpus("1"), cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 5 {
		t.Fatalf("%d moves, want the 5 IRQs of CPU1: %+v", len(plan.Moves), plan.Moves)
	}
	l := loads(irqs, plan)
	if want := map[int]int{0: 6, 2: 6, 3: 6}; !maps.Equal(l, want) {
		t.Errorf("movable IRQs per CPU after the drain %v, want %v", l, want)
	}
}

// TestDrainPinnedFirst: a pinned IRQ on the drained CPU moves within its
// pin, and that CPU's load counts it before the others are placed.
func TestDrainPinnedFirst(t *testing.T) {
	irqs := []IRQ{movableOn(20, "3"), movableOn(21, "3"), movableOn(22, "3"), movableOn(23, "0")}
	p := Planner{Pins: Pins{Key(irqs[2]): {IRQ: 22, CPUs: cpus("1,3")}}}
	plan, err := p.Drain(irqs, cpus("3"), cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, m := range plan.Moves {
		got[m.IRQ] = m.To.String()
	}
	// 22 goes to 1 (its pin); CPU0 holds 23; so 20 and 21 go to 2, then
	// to whichever of 0, 1, 2 the cursor finds first: 0.
	if want := map[int]string{20: "2", 21: "0", 22: "1"}; !maps.Equal(got, want) {
		t.Errorf("moves %v, want %v", got, want)
	}
}

// TestDrainBalancedWhenPossible: whatever the loads, a drain leaves the
// movable IRQs per target CPU within one of each other whenever moving the
// drained CPUs' IRQs can achieve it, and otherwise raises no CPU above the
// most loaded one.
func TestDrainBalancedWhenPossible(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 500 {
		ncpu := 2 + rng.IntN(7)
		var irqs []IRQ
		for i := range rng.IntN(30) {
			irqs = append(irqs, movableOn(100+i, fmt.Sprint(rng.IntN(ncpu))))
		}
		drained := sysfs.NewCPUSet(rng.IntN(ncpu))
		if rng.IntN(3) == 0 {
			drained = drained.With(rng.IntN(ncpu))
		}
		allowed := cpus(fmt.Sprintf("0-%d", ncpu-1))
		targets := allowed.Difference(drained)
		if targets.IsEmpty() {
			continue
		}
		stay := map[int]int{}
		moving := 0
		for _, irq := range irqs {
			if drained.Contains(irq.Effective.First()) {
				moving++
			} else {
				stay[irq.Effective.First()]++
			}
		}
		top := 0
		for _, c := range targets.CPUs() {
			top = max(top, stay[c])
		}
		room := 0 // IRQs needed to lift every target to top-1
		for _, c := range targets.CPUs() {
			room += max(0, top-1-stay[c])
		}
		p := Planner{Cursor: Cursor{Next: rng.IntN(ncpu + 1)}}
		plan, err := p.Drain(irqs, drained, allowed)
		if err != nil {
			t.Fatal(err)
		}
		l := loads(irqs, plan)
		lo, hi := len(irqs), 0
		for _, c := range targets.CPUs() {
			lo, hi = min(lo, l[c]), max(hi, l[c])
		}
		for _, c := range drained.CPUs() {
			if l[c] != 0 {
				t.Fatalf("iter %d: %d IRQs left on drained CPU %d", iter, l[c], c)
			}
		}
		switch {
		case moving >= room && hi-lo > 1:
			t.Fatalf("iter %d: drain %s over %d CPUs: loads %v before %v differ by %d, want ≤ 1", iter, drained, ncpu, l, stay, hi-lo)
		case moving < room && hi > top:
			t.Fatalf("iter %d: drain %s: loads %v before %v: a CPU went above the most loaded (%d)", iter, drained, l, stay, top)
		}
	}
}

func TestDrainLastAllowedCPU(t *testing.T) {
	var p Planner
	_, err := p.Drain([]IRQ{movableOn(20, "1")}, cpus("1"), cpus("1"))
	if !errors.Is(err, ErrBadCPU) {
		t.Fatalf("err = %v, want ErrBadCPU", err)
	}
}

func TestCheckCPUs(t *testing.T) {
	info := sysfs.CPUInfo{Possible: cpus("0-3"), Online: cpus("0-2"), Hotpluggable: cpus("1-3")}
	tests := []struct {
		name    string
		cpus    []int
		allowed string
		offline bool
		wantErr bool
	}{
		{name: "ok", cpus: []int{2}, allowed: "0-2"},
		{name: "two", cpus: []int{1, 2}, allowed: "0-2"},
		{name: "none", cpus: nil, allowed: "0-2", wantErr: true},
		{name: "out of range", cpus: []int{9}, allowed: "0-2", wantErr: true},
		{name: "negative", cpus: []int{-1}, allowed: "0-2", wantErr: true},
		{name: "offline", cpus: []int{3}, allowed: "0-2", wantErr: true},
		{name: "last allowed", cpus: []int{2}, allowed: "2", wantErr: true},
		{name: "not hotpluggable", cpus: []int{0}, allowed: "0-2", offline: true, wantErr: true},
		{name: "drain boot CPU is fine", cpus: []int{0}, allowed: "0-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckCPUs(tt.cpus, info, cpus(tt.allowed), tt.offline)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadCPU) {
				t.Errorf("err %v does not wrap ErrBadCPU", err)
			}
		})
	}
}
