package affinity

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

// twoNodes is a machine of two NUMA nodes: CPUs 0-3 and 4-7.
func twoNodes() map[int]sysfs.CPUSet {
	return map[int]sysfs.CPUSet{0: cpus("0-3"), 1: cpus("4-7")}
}

// nodeIRQ is a movable IRQ of a device on node, its mask and effective
// affinity list.
func nodeIRQ(n, node int, list string) IRQ {
	irq := movableOn(n, list)
	irq.Node = node
	return irq
}

// kernelDefault is a movable IRQ of node with the kernel's default mask
// (mask, all CPUs of the machine) delivered to cpu.
func kernelDefault(n, node int, mask string, cpu int) IRQ {
	irq := nodeIRQ(n, node, mask)
	irq.Effective = sysfs.NewCPUSet(cpu)
	return irq
}

// numaCheck asserts what Rebalance promises with Nodes, on irqs after plan:
// a pinned IRQ (pin with an allowed CPU) ends within its pin; every other
// movable IRQ on one CPU of its home; per node home, the counts on its CPUs
// differ by at most one, and with share 0 no CPU holds two while another of
// the home holds none; no CPU holding a node-less IRQ is above the lowest
// total plus one, and the totals differ by at most one when every IRQ is
// node-less; a move that brings an IRQ into its node says "numa: node N";
// and a second rebalance plans nothing. It returns the unpinned movable
// IRQs per allowed CPU.
func numaCheck(t *testing.T, name string, p Planner, irqs []IRQ, allowed sysfs.CPUSet, plan Plan) map[int]int {
	t.Helper()
	before := map[int]IRQ{}
	for _, irq := range irqs {
		before[irq.IRQ] = irq
	}
	for _, m := range plan.Moves {
		irq := before[m.IRQ]
		home := p.Home(irq, allowed)
		switch {
		case strings.HasPrefix(m.Reason, "restore pin "):
		case m.Narrow, m.Reason == "narrow":
			if !m.Narrow || m.Reason != "narrow" || !isNarrow(&irq, m.To) {
				t.Errorf("%s: IRQ %d on %s: %+v is not an in-place narrowing", name, m.IRQ, irq.Where(), m)
			}
		case home.Equal(allowed) || irq.Where().IsSubsetOf(home):
			if m.Reason != "rebalance" {
				t.Errorf("%s: IRQ %d (node %d) from %s to %s: reason %q, want rebalance", name, m.IRQ, irq.Node, irq.Where(), m.To, m.Reason)
			}
		default:
			if want := fmt.Sprintf("numa: node %d", irq.Node); m.Reason != want {
				t.Errorf("%s: IRQ %d (node %d) from %s to %s: reason %q, want %q", name, m.IRQ, irq.Node, irq.Where(), m.To, m.Reason, want)
			}
		}
	}
	after := applyPlan(irqs, plan)
	total := map[int]int{}
	for _, cpu := range allowed.CPUs() {
		total[cpu] = 0
	}
	perHome := map[string]map[int]int{}
	homes := map[string]sysfs.CPUSet{}
	nodeless := map[int]bool{} // CPUs holding a node-less IRQ
	for _, irq := range after {
		if !irq.Movable() {
			continue
		}
		if target, _, ok := p.Pins.pinTarget(irq, allowed); ok && !target.IsEmpty() && !p.IncludePinned {
			if !irq.Where().IsSubsetOf(target) {
				t.Errorf("%s: pinned IRQ %d ends on %s, not within %s", name, irq.IRQ, irq.Where(), target)
			}
			continue
		}
		home := p.Home(irq, allowed)
		w := irq.Where()
		if w.Len() != 1 || !irq.Affinity.Equal(w) || !w.IsSubsetOf(home) {
			t.Errorf("%s: IRQ %d (node %d) ends on mask %s effective %s, want one CPU of its home %s", name, irq.IRQ, irq.Node, irq.Affinity, w, home)
			continue
		}
		cpu := w.First()
		total[cpu]++
		if home.Equal(allowed) {
			nodeless[cpu] = true
			continue
		}
		if perHome[home.String()] == nil {
			perHome[home.String()] = map[int]int{}
			homes[home.String()] = home
		}
		perHome[home.String()][cpu]++
	}
	for key, home := range homes {
		lo, hi := -1, 0
		for _, cpu := range home.CPUs() {
			n := perHome[key][cpu]
			if lo < 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		if hi-lo > 1 {
			t.Errorf("%s: home %s holds %v: max−min = %d, want ≤ 1", name, home, perHome[key], hi-lo)
		}
		if lo == 0 && hi >= 2 {
			t.Errorf("%s: home %s: a CPU holds %d while another holds none: %v", name, home, hi, perHome[key])
		}
	}
	lo, hi := -1, 0
	for _, n := range total {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	for cpu := range nodeless {
		if total[cpu] > lo+1 {
			t.Errorf("%s: CPU %d holds a node-less IRQ at total %d, lowest total %d: %v", name, cpu, total[cpu], lo, total)
		}
	}
	if len(homes) == 0 && hi-lo > 1 {
		t.Errorf("%s: only node-less IRQs, totals %v differ by %d", name, total, hi-lo)
	}
	again := p // a copy: the check must not move the caller's cursor
	if second, err := again.Rebalance(after, allowed); err != nil || len(second.Moves) != 0 {
		t.Errorf("%s: second rebalance plans %+v (err %v)", name, second.Moves, err)
	}
	return total
}

func movesOf(plan Plan) map[int]Move {
	out := map[int]Move{}
	for _, m := range plan.Moves {
		out[m.IRQ] = m
	}
	return out
}

func TestHome(t *testing.T) {
	p := Planner{Nodes: map[int]sysfs.CPUSet{0: cpus("0-3"), 1: cpus("4-7"), 2: {}}}
	tests := []struct {
		name    string
		node    int
		nodes   map[int]sysfs.CPUSet
		allowed string
		want    string
	}{
		{name: "its node", node: 1, allowed: "0-7", want: "4-7"},
		{name: "the allowed part of its node", node: 1, allowed: "0-5,7", want: "4-5,7"},
		{name: "its node all offline", node: 1, allowed: "0-3", want: "0-3"},
		{name: "unknown node", node: -1, allowed: "0-7", want: "0-7"},
		{name: "memory-only node", node: 2, allowed: "0-7", want: "0-7"},
		{name: "node not in Nodes", node: 5, allowed: "0-7", want: "0-7"},
		{name: "NUMA ignored", node: 1, nodes: map[int]sysfs.CPUSet{}, allowed: "0-7", want: "0-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := p
			if tt.nodes != nil {
				q.Nodes = tt.nodes
			}
			if got := q.Home(nodeIRQ(20, tt.node, "0"), cpus(tt.allowed)); got.String() != tt.want {
				t.Errorf("Home = %q, want %q", got, tt.want)
			}
		})
	}
	var none Planner
	if got := none.Home(nodeIRQ(20, 1, "0"), cpus("0-7")); got.String() != "0-7" {
		t.Errorf("Home with Nodes nil = %q, want all allowed", got)
	}
}

// TestNUMASpreadWithinNode: after boot every IRQ has the kernel's mask and
// fires on CPU0; node-1 IRQs go to 4-7, node-0 IRQs stay on 0-3, each
// spread within one.
func TestNUMASpreadWithinNode(t *testing.T) {
	var irqs []IRQ
	for i := range 6 {
		irqs = append(irqs, kernelDefault(100+i, 1, "0-7", 0))
	}
	for i := range 5 {
		irqs = append(irqs, kernelDefault(200+i, 0, "0-7", 0))
	}
	p := Planner{Nodes: twoNodes()}
	plan, err := p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	moves := movesOf(plan)
	for i := range 6 {
		m := moves[100+i]
		if !m.To.IsSubsetOf(cpus("4-7")) || m.To.Len() != 1 || m.Reason != "numa: node 1" || m.Narrow {
			t.Errorf("node-1 IRQ %d: %+v, want moved to one CPU of 4-7 for numa: node 1", 100+i, m)
		}
	}
	for i := range 5 {
		if m := moves[200+i]; !m.To.IsSubsetOf(cpus("0-3")) || m.To.Len() != 1 {
			t.Errorf("node-0 IRQ %d: %+v, want one CPU of 0-3", 200+i, m)
		}
	}
	total := numaCheck(t, "boot", p, irqs, cpus("0-7"), plan)
	// 6 over 4-7 and 5 over 0-3: 2,2,1,1 and 2,1,1,1 in some order.
	if got := total[4] + total[5] + total[6] + total[7]; got != 6 {
		t.Errorf("node 1 holds %d IRQs, want 6: %v", got, total)
	}
	if total[0] != 2 || total[1]+total[2]+total[3] != 3 {
		t.Errorf("node 0 %v: want CPU0 to keep its share (narrowed) and 3 over 1-3", total)
	}
}

// TestNUMABackToNode: node 1 went offline, the kernel moved its IRQs to
// CPU0 and irqshift spread them over 0-3; when 4-7 return every node-1 IRQ
// goes back, and the node-0 IRQs do not move.
func TestNUMABackToNode(t *testing.T) {
	var irqs []IRQ
	for i := range 8 {
		irqs = append(irqs, kernelDefault(100+i, 1, "0-3", 0)) // the kernel's overwrite
	}
	for i := range 4 {
		irqs = append(irqs, nodeIRQ(200+i, 0, fmt.Sprint(i)))
	}
	p := Planner{Nodes: twoNodes()}
	offline, err := p.Rebalance(irqs, cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	l := numaCheck(t, "node 1 offline", p, irqs, cpus("0-3"), offline)
	if want := map[int]int{0: 3, 1: 3, 2: 3, 3: 3}; !maps.Equal(l, want) {
		t.Errorf("node 1 offline: loads %v, want %v", l, want)
	}
	for _, m := range offline.Moves {
		if m.IRQ >= 200 {
			t.Errorf("node-0 IRQ moved while node 1 was offline: %+v", m)
		}
	}

	for _, tt := range []struct {
		name string
		irqs []IRQ
	}{
		{"as irqshift left them", applyPlan(irqs, offline)},
		{"as the kernel left them", irqs},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := p
			plan, err := q.Rebalance(tt.irqs, cpus("0-7"))
			if err != nil {
				t.Fatal(err)
			}
			moves := movesOf(plan)
			for i := range 8 {
				m, ok := moves[100+i]
				if !ok || m.Narrow || m.Reason != "numa: node 1" || !m.To.IsSubsetOf(cpus("4-7")) {
					t.Errorf("node-1 IRQ %d: %+v (planned %v), want back into 4-7", 100+i, m, ok)
				}
			}
			for i := range 4 {
				if m, ok := moves[200+i]; ok {
					t.Errorf("node-0 IRQ %d moved: %+v", 200+i, m)
				}
			}
			l := numaCheck(t, tt.name, q, tt.irqs, cpus("0-7"), plan)
			if want := map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}; !maps.Equal(l, want) {
				t.Errorf("loads %v, want %v", l, want)
			}
		})
	}
}

// TestNUMANodeOffline: with node 1 all offline its IRQs have no node to go
// to and are spread over 0-3 with node 0's, as one group.
func TestNUMANodeOffline(t *testing.T) {
	var irqs []IRQ
	for i := range 7 {
		irqs = append(irqs, kernelDefault(100+i, 1, "0-3", 0))
	}
	irqs = append(irqs, nodeIRQ(200, 0, "1"), nodeIRQ(201, 0, "1"), nodeIRQ(202, 0, "1"), nodeIRQ(203, -1, "2"))
	p := Planner{Nodes: twoNodes()}
	plan, err := p.Rebalance(irqs, cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	l := numaCheck(t, "node 1 offline", p, irqs, cpus("0-3"), plan)
	if want := map[int]int{0: 3, 1: 3, 2: 3, 3: 2}; !maps.Equal(l, want) {
		t.Errorf("loads %v, want 11 IRQs over 0-3 within one (3,3,3,2)", l)
	}
	for _, m := range plan.Moves {
		if m.Reason != "rebalance" && m.Reason != "narrow" {
			t.Errorf("IRQ %d: reason %q, want rebalance (no node to go to)", m.IRQ, m.Reason)
		}
	}
}

// TestNUMABannedCPU: a banned CPU of node 1 leaves node-1 IRQs on the rest
// of node 1.
func TestNUMABannedCPU(t *testing.T) {
	irqs := []IRQ{nodeIRQ(100, 1, "5"), nodeIRQ(101, 1, "5"), nodeIRQ(102, 1, "4"), nodeIRQ(103, 1, "6"),
		nodeIRQ(104, 1, "7"), kernelDefault(105, 1, "0-7", 5), nodeIRQ(200, 0, "0")}
	allowed := cpus("0-4,6-7")
	p := Planner{Nodes: twoNodes()}
	plan, err := p.Rebalance(irqs, allowed)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range plan.Moves {
		if !m.To.IsSubsetOf(cpus("4,6-7")) {
			t.Errorf("IRQ %d to %s, want within the rest of node 1 (4,6-7)", m.IRQ, m.To)
		}
		if m.IRQ == 102 || m.IRQ == 103 || m.IRQ == 104 || m.IRQ == 200 {
			t.Errorf("IRQ %d moved from its CPU within its share: %+v", m.IRQ, m)
		}
	}
	if len(plan.Moves) != 3 {
		t.Errorf("moves %+v, want the three IRQs of the banned CPU 5", plan.Moves)
	}
	l := numaCheck(t, "CPU5 banned", p, irqs, allowed, plan)
	if want := map[int]int{0: 1, 1: 0, 2: 0, 3: 0, 4: 2, 6: 2, 7: 2}; !maps.Equal(l, want) {
		t.Errorf("loads %v, want %v", l, want)
	}
}

// TestNUMANodeless: IRQs without a node fill the least-loaded CPUs of the
// whole machine, around what the nodes hold; those already on a CPU within
// their share stay.
func TestNUMANodeless(t *testing.T) {
	var irqs []IRQ
	for i := range 8 {
		irqs = append(irqs, nodeIRQ(100+i, 0, fmt.Sprint(i%4))) // 2 per CPU of node 0
	}
	for i := range 9 {
		irqs = append(irqs, kernelDefault(300+i, -1, "0-7", 0))
	}
	irqs = append(irqs, nodeIRQ(400, -1, "5"))
	p := Planner{Nodes: twoNodes()}
	plan, err := p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range plan.Moves {
		if m.IRQ < 300 || m.IRQ == 400 {
			t.Errorf("IRQ %d moved: %+v, want it kept", m.IRQ, m)
		}
	}
	l := numaCheck(t, "node-less", p, irqs, cpus("0-7"), plan)
	// 18 IRQs over 8 CPUs: node 0 holds 8, so the 10 node-less fill 4-7 to
	// 2 (IRQ 400 stays on 5), and the last two make two CPUs 3.
	// CPU0 is at the level (2) and holds more: it keeps one of the two
	// extra places, narrowed; the other goes to a CPU at the level.
	threes := 0
	for cpu, n := range l {
		if n != 2 && n != 3 {
			t.Errorf("CPU %d holds %d, want 2 or 3: %v", cpu, n, l)
		}
		if n == 3 {
			threes++
		}
	}
	if l[0] != 3 || threes != 2 {
		t.Errorf("loads %v, want CPU0 and one other at 3, the rest at 2", l)
	}
	if m := movesOf(plan)[300]; !m.Narrow || m.To.String() != "0" {
		t.Errorf("IRQ 300: %+v, want narrowed in place on CPU0", m)
	}

	// A node that is too full for the rest to even: node-less IRQs fill
	// the emptiest CPUs and none joins the full node.
	irqs = nil
	for i := range 12 {
		irqs = append(irqs, nodeIRQ(100+i, 0, fmt.Sprint(i%4))) // 3 per CPU of node 0
	}
	for i := range 4 {
		irqs = append(irqs, nodeIRQ(300+i, -1, "0"))
	}
	plan, err = p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	l = numaCheck(t, "full node", p, irqs, cpus("0-7"), plan)
	if want := map[int]int{0: 3, 1: 3, 2: 3, 3: 3, 4: 1, 5: 1, 6: 1, 7: 1}; !maps.Equal(l, want) {
		t.Errorf("loads %v, want %v", l, want)
	}
}

// TestNUMAPinWins: a node-1 IRQ pinned to CPU0 stays there, and one whose
// pin the kernel broke goes back to it, not to its node.
func TestNUMAPinWins(t *testing.T) {
	irqs := []IRQ{nodeIRQ(100, 1, "0"), kernelDefault(101, 1, "0-7", 6), nodeIRQ(102, 1, "0")}
	p := Planner{Nodes: twoNodes(), Pins: Pins{
		Key(irqs[0]): {IRQ: 100, CPUs: cpus("0")},
		Key(irqs[1]): {IRQ: 101, CPUs: cpus("1")},
	}}
	plan, err := p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	moves := movesOf(plan)
	if _, ok := moves[100]; ok || len(plan.Skipped) != 1 || plan.Skipped[0].IRQ != 100 || plan.Skipped[0].Class != SkipPinned {
		t.Errorf("pinned IRQ 100: moves %+v skipped %+v, want it left on its pin", plan.Moves, plan.Skipped)
	}
	if m := moves[101]; m.To.String() != "1" || m.Reason != "restore pin 1" {
		t.Errorf("IRQ 101: %+v, want its pin 1 restored", m)
	}
	if m := moves[102]; !m.To.IsSubsetOf(cpus("4-7")) || m.Reason != "numa: node 1" {
		t.Errorf("unpinned IRQ 102: %+v, want back to node 1", m)
	}
	numaCheck(t, "pins", p, irqs, cpus("0-7"), plan)

	// A pin with no allowed CPU left: the IRQ goes home until it returns.
	plan, err = p.Rebalance(irqs, cpus("2-7"))
	if err != nil {
		t.Fatal(err)
	}
	if m := movesOf(plan)[100]; !m.To.IsSubsetOf(cpus("4-7")) {
		t.Errorf("IRQ 100 with its pin CPU banned: %+v, want within node 1", m)
	}
	numaCheck(t, "pin banned", p, irqs, cpus("2-7"), plan)
}

// TestNUMAMemoryOnlyNode: the IRQs of a node without CPUs, or of one the
// planner does not know, are placed over every allowed CPU.
func TestNUMAMemoryOnlyNode(t *testing.T) {
	nodes := twoNodes()
	nodes[2] = sysfs.CPUSet{}
	var irqs []IRQ
	for i := range 10 {
		irqs = append(irqs, kernelDefault(100+i, 2, "0-7", 0))
	}
	irqs = append(irqs, kernelDefault(110, 3, "0-7", 0), kernelDefault(111, 3, "0-7", 0))
	p := Planner{Nodes: nodes}
	plan, err := p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	l := numaCheck(t, "memory-only node", p, irqs, cpus("0-7"), plan)
	for cpu, n := range l {
		if n != 1 && n != 2 {
			t.Errorf("CPU %d holds %d of 12 IRQs over 8 CPUs: %v", cpu, n, l)
		}
	}
}

// TestNUMAIgnored: with Nodes nil, or one node holding every CPU, the plan
// is the one without NUMA, move for move, and leaves the same cursor.
func TestNUMAIgnored(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for iter := range 500 {
		ncpu := 1 + rng.IntN(9)
		possible := cpus(fmt.Sprintf("0-%d", ncpu-1))
		var allowed sysfs.CPUSet
		for _, c := range possible.CPUs() {
			if rng.IntN(4) != 0 {
				allowed = allowed.With(c)
			}
		}
		if allowed.IsEmpty() {
			allowed = allowed.With(rng.IntN(ncpu))
		}
		var irqs []IRQ
		for i := range rng.IntN(30) {
			cpu := rng.IntN(ncpu)
			irq := kernelDefault(100+i, rng.IntN(3)-1, possible.String(), cpu)
			if rng.IntN(2) == 0 {
				irq.Affinity = irq.Effective
			}
			irqs = append(irqs, irq)
		}
		cursor := Cursor{Next: rng.IntN(ncpu + 1)}
		plain := Planner{Cursor: cursor}
		want, err := plain.Rebalance(irqs, allowed)
		if err != nil {
			t.Fatal(err)
		}
		drained := sysfs.NewCPUSet(allowed.CPUs()[rng.IntN(allowed.Len())])
		wantDrain, wantDrainErr := plain.Drain(irqs, drained, allowed)
		for _, nodes := range []map[int]sysfs.CPUSet{nil, {}, {0: possible}, {0: possible, 1: {}}} {
			p := Planner{Cursor: cursor, Nodes: nodes}
			got, err := p.Rebalance(irqs, allowed)
			if err != nil {
				t.Fatal(err)
			}
			gotDrain, gotDrainErr := p.Drain(irqs, drained, allowed)
			name := fmt.Sprintf("iter %d nodes %v", iter, nodes)
			if !samePlan(got, want) || p.Cursor != plain.Cursor {
				t.Fatalf("%s: rebalance %+v (cursor %v), without NUMA %+v (cursor %v)", name, got.Moves, p.Cursor, want.Moves, plain.Cursor)
			}
			if (gotDrainErr == nil) != (wantDrainErr == nil) || !samePlan(gotDrain, wantDrain) {
				t.Fatalf("%s: drain %s: %+v, without NUMA %+v", name, drained, gotDrain.Moves, wantDrain.Moves)
			}
		}
	}
}

func samePlan(a, b Plan) bool {
	return slices.EqualFunc(a.Moves, b.Moves, func(x, y Move) bool {
		return x.IRQ == y.IRQ && x.From.Equal(y.From) && x.To.Equal(y.To) && x.Narrow == y.Narrow && x.Reason == y.Reason
	}) && slices.Equal(a.Skipped, b.Skipped)
}

// TestNUMALarge runs seeded random machines of 4 nodes × 16 CPUs (64) and
// 4 × 32 (128) with random IRQ counts per node, from few (share 0) to
// several per CPU, IRQs anywhere (on their node or not, settled, with the
// kernel's mask, on several CPUs, without an effective file), some
// node-less, unmovable or pinned, and random CPUs or whole nodes offline.
// Beyond numaCheck, each node home moves the fewest interrupts that even
// its counts.
func TestNUMALarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 128))
	for _, perNode := range []int{16, 32} {
		ncpu := 4 * perNode
		nodes := map[int]sysfs.CPUSet{}
		for n := range 4 {
			nodes[n] = cpus(fmt.Sprintf("%d-%d", n*perNode, (n+1)*perNode-1))
		}
		possible := cpus(fmt.Sprintf("0-%d", ncpu-1))
		for iter := range 150 {
			var allowed sysfs.CPUSet
			for _, c := range possible.CPUs() {
				if rng.IntN(8) != 0 {
					allowed = allowed.With(c)
				}
			}
			if rng.IntN(4) == 0 {
				allowed = allowed.Difference(nodes[rng.IntN(4)])
			}
			if allowed.IsEmpty() {
				allowed = allowed.With(rng.IntN(ncpu))
			}
			var irqs []IRQ
			next := 100
			for node := -1; node < 4; node++ {
				var count int
				switch rng.IntN(3) {
				case 0:
					count = rng.IntN(perNode / 2) // share 0
				case 1:
					count = rng.IntN(perNode)
				default:
					count = rng.IntN(4 * perNode)
				}
				for range count {
					irq := IRQ{IRQ: next, Actions: []string{"dev"}, HasEffective: true, Class: ClassMovable, Node: node}
					next++
					cpu := rng.IntN(ncpu)
					if node >= 0 && rng.IntN(2) == 0 {
						cpu = nodes[node].CPUs()[rng.IntN(perNode)]
					}
					switch rng.IntN(6) {
					case 0, 1: // settled
						irq.Affinity, irq.Effective = sysfs.NewCPUSet(cpu), sysfs.NewCPUSet(cpu)
					case 2: // the kernel's default mask
						irq.Affinity, irq.Effective = possible, sysfs.NewCPUSet(cpu)
					case 3: // delivered to several CPUs
						irq.Affinity, irq.Effective = possible, sysfs.NewCPUSet(cpu, (cpu+1)%ncpu)
					case 4: // no effective file
						irq.HasEffective = false
						irq.Affinity = sysfs.NewCPUSet(cpu)
					case 5: // not a movable IRQ
						irq.Class, irq.Affinity, irq.Effective = ClassManaged, sysfs.NewCPUSet(cpu), sysfs.NewCPUSet(cpu)
					}
					irqs = append(irqs, irq)
				}
			}
			p := Planner{Cursor: Cursor{Next: rng.IntN(ncpu)}, Nodes: nodes, Pins: Pins{}}
			for i := range irqs {
				if irqs[i].Movable() && rng.IntN(30) == 0 {
					p.Pins[Key(irqs[i])] = Pin{IRQ: irqs[i].IRQ, CPUs: sysfs.NewCPUSet(rng.IntN(ncpu))}
				}
			}
			name := fmt.Sprintf("%d CPUs iter %d (%d IRQs, allowed %s)", ncpu, iter, len(irqs), allowed)
			plan, err := p.Rebalance(irqs, allowed)
			if err != nil {
				t.Fatal(err)
			}
			numaCheck(t, name, p, irqs, allowed, plan)
			checkFewestPerHome(t, name, p, irqs, allowed, plan)
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// checkFewestPerHome counts, independently of the planner, the fewest
// interrupts each node home must move to even its counts (each CPU of the
// home keeps up to the share of the home's IRQs delivered to it, one more
// on CPUs over the share while there are extra places), and compares with
// the plan.
func checkFewestPerHome(t *testing.T, name string, p Planner, irqs []IRQ, allowed sysfs.CPUSet, plan Plan) {
	t.Helper()
	moved := map[int]bool{}
	for _, m := range plan.Moves {
		if !m.Narrow {
			moved[m.IRQ] = true
		}
	}
	type count struct {
		home     sysfs.CPUSet
		n, moved int
		on       map[int]int
	}
	byHome := map[string]*count{}
	for _, irq := range irqs {
		if !irq.Movable() {
			continue
		}
		if target, _, ok := p.Pins.pinTarget(irq, allowed); ok && !target.IsEmpty() {
			continue
		}
		home := p.Home(irq, allowed)
		if home.Equal(allowed) {
			continue
		}
		c := byHome[home.String()]
		if c == nil {
			c = &count{home: home, on: map[int]int{}}
			byHome[home.String()] = c
		}
		c.n++
		if moved[irq.IRQ] {
			c.moved++
		}
		if w := irq.Where(); w.Len() == 1 && home.Contains(w.First()) {
			c.on[w.First()]++
		}
	}
	for _, c := range byHome {
		share, extra := c.n/c.home.Len(), c.n%c.home.Len()
		keep, over := 0, 0
		for _, cpu := range c.home.CPUs() {
			keep += min(c.on[cpu], share)
			if c.on[cpu] > share {
				over++
			}
		}
		if want := c.n - keep - min(extra, over); c.moved != want {
			t.Errorf("%s: home %s moved %d of its %d IRQs, the fewest that even it is %d", name, c.home, c.moved, c.n, want)
		}
	}
}

// TestNUMAOverlappingHomes: Nodes that share CPUs still give each home its
// within-one spread; nothing more is promised.
func TestNUMAOverlappingHomes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	nodes := map[int]sysfs.CPUSet{0: cpus("0-5"), 1: cpus("3-7"), 2: cpus("6-7")}
	for iter := range 300 {
		var irqs []IRQ
		for i := range rng.IntN(40) {
			irqs = append(irqs, kernelDefault(100+i, rng.IntN(4)-1, "0-7", rng.IntN(8)))
			if rng.IntN(2) == 0 {
				irqs[i].Affinity = irqs[i].Effective
			}
		}
		allowed := cpus("0-7").Without(rng.IntN(8))
		p := Planner{Cursor: Cursor{Next: rng.IntN(8)}, Nodes: nodes}
		plan, err := p.Rebalance(irqs, allowed)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("iter %d", iter)
		numaCheck(t, name, p, irqs, allowed, plan)
		checkFewestPerHome(t, name, p, irqs, allowed, plan)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestNUMADrain: draining a CPU of node 1 keeps its node-1 IRQs in node 1,
// on its least-loaded CPUs; its node-less IRQs go to the least-loaded CPU
// anywhere; draining all of node 1 sends its IRQs to node 0.
func TestNUMADrain(t *testing.T) {
	irqs := []IRQ{
		nodeIRQ(100, 1, "5"), nodeIRQ(101, 1, "5"), nodeIRQ(102, 1, "5"), nodeIRQ(103, 1, "5"),
		nodeIRQ(104, 1, "4"), nodeIRQ(105, 1, "4"), nodeIRQ(106, 1, "6"),
		nodeIRQ(110, -1, "5"),
		nodeIRQ(200, 0, "0"), nodeIRQ(201, 0, "1"), nodeIRQ(202, 0, "2"),
	}
	p := Planner{Nodes: twoNodes()}
	plan, err := p.Drain(irqs, cpus("5"), cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, m := range plan.Moves {
		got[m.IRQ] = m.To.String()
		want := "drain 5 within node 1"
		if m.IRQ == 110 {
			want = "drain 5"
		}
		if m.Reason != want || m.Narrow {
			t.Errorf("IRQ %d: reason %q narrow %v, want %q", m.IRQ, m.Reason, m.Narrow, want)
		}
	}
	// Node 1 without CPU5 holds 2, 1, 0 on 4, 6, 7: 100 to the empty 7,
	// then 101 to 6 and 102 to 7 at 1, then 103 to 4, the cursor's pick
	// at 2; the node-less 110 to the least-loaded CPU of all: CPU3.
	want := map[int]string{100: "7", 101: "6", 102: "7", 103: "4", 110: "3"}
	if !maps.Equal(got, want) {
		t.Errorf("moves %v, want %v", got, want)
	}
	l := loads(irqs, plan)
	if want := map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 3, 6: 2, 7: 2}; !maps.Equal(l, want) {
		t.Errorf("loads %v, want %v: node 1's 7 IRQs on 4,6,7", l, want)
	}

	// All of node 1 drained: its IRQs have no node CPU left and go to the
	// least-loaded of node 0.
	plan, err = p.Drain(irqs, cpus("4-7"), cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range plan.Moves {
		if !m.To.IsSubsetOf(cpus("0-3")) || m.Reason != "drain 4-7" {
			t.Errorf("IRQ %d: %+v, want to node 0 as a plain drain", m.IRQ, m)
		}
	}
	if l := loads(irqs, plan); !maps.Equal(l, map[int]int{0: 3, 1: 3, 2: 3, 3: 2}) {
		t.Errorf("loads %v, want 11 IRQs over 0-3 within one", l)
	}
}

// TestClassifyNode: an IRQ's node comes from the snapshot, -1 where the
// snapshot knows none.
func TestClassifyNode(t *testing.T) {
	var rows []sysfs.Interrupt
	aff := map[int]sysfs.IRQAffinity{}
	for _, n := range []int{13, 14, 15} {
		rows = append(rows, sysfs.Interrupt{IRQ: n, Chip: "ITS-MSI", Actions: []string{"dev"}})
		aff[n] = sysfs.IRQAffinity{IRQ: n, Affinity: cpus("0-7"), Effective: cpus("0"), HasEffective: true}
	}
	snap := &sysfs.Snapshot{Interrupts: sysfs.Interrupts{CPUs: []int{0}, IRQs: rows}, Affinity: aff,
		IRQNodes: map[int]int{13: 1, 15: -1}}
	got := map[int]int{}
	for _, irq := range Classify(snap, Memory{}, Policy{}) {
		got[irq.IRQ] = irq.Node
	}
	if want := map[int]int{13: 1, 14: -1, 15: -1}; !maps.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	snap.IRQNodes = nil
	for _, irq := range Classify(snap, Memory{}, Policy{}) {
		if irq.Node != -1 {
			t.Errorf("IRQ %d: node %d without IRQNodes, want -1", irq.IRQ, irq.Node)
		}
	}
}
