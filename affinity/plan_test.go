package affinity

import (
	"errors"
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
		wantSkip  []int
	}{
		{
			name:      "kernel default: all on CPU0, all-CPU masks",
			irqs:      []IRQ{perCPU, {IRQ: 13, Actions: []string{"uart"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}, {IRQ: 16, Actions: []string{"rtc"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}, {IRQ: 22, Actions: []string{"virtio3"}, Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}},
			allowed:   "0-3",
			wantMoves: map[int]string{13: "0", 16: "1", 22: "2"},
			wantSkip:  []int{11},
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
			name:      "effective differs from a single-CPU mask",
			irqs:      []IRQ{{IRQ: 20, Actions: []string{"x"}, Affinity: cpus("1"), Effective: cpus("0"), HasEffective: true, Class: ClassMovable}},
			allowed:   "0-3",
			wantMoves: map[int]string{20: "0"},
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
			for _, m := range plan.Moves {
				got[m.IRQ] = m.To.String()
				if m.To.Len() != 1 || !m.To.IsSubsetOf(cpus(tt.allowed)) {
					t.Errorf("IRQ %d: target %q is not one allowed CPU", m.IRQ, m.To)
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
	}
	// 24's effective is 2-3 here, so it is on CPU2; 40 has no effective
	// file and its mask includes 2. Round-robin from CPU0 skipping 2.
	want := map[int]string{20: "0", 21: "1", 22: "3", 24: "0", 40: "1"}
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
	// The cursor survives: the next drain continues where this one stopped.
	plan, _ = p.Drain([]IRQ{movableOn(50, "3")}, cpus("3"), cpus("0-3"))
	if plan.Moves[0].To.String() != "2" {
		t.Errorf("second drain went to %q, want 2 (cursor continues)", plan.Moves[0].To)
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
