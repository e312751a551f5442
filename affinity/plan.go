package affinity

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/irqshift/irqshift/sysfs"
)

// ErrBadCPU is wrapped by every refusal of a CPU argument: out of range,
// offline, not hotpluggable, or the last allowed CPU.
var ErrBadCPU = errors.New("bad CPU")

// Cursor walks the allowed CPUs round-robin, like the kernel's
// cpumask_cycle: each pick is the next allowed CPU after the previous one,
// wrapping. It survives between plans so that successive drains keep
// spreading instead of starting at CPU0 every time. The zero value starts
// at the lowest CPU.
type Cursor struct {
	// Next is where the search for the next pick starts.
	Next int `json:"next"`
}

// Pick returns the next CPU of allowed at or after Next, wrapping, for
// which ok returns true, and advances the cursor past it. It returns -1
// when no CPU of allowed is ok.
func (c *Cursor) Pick(allowed sysfs.CPUSet, ok func(cpu int) bool) int {
	start := allowed.Next(c.Next - 1)
	if start < 0 {
		start = allowed.First()
	}
	for cpu := start; cpu >= 0; {
		if ok == nil || ok(cpu) {
			c.Next = cpu + 1
			return cpu
		}
		cpu = allowed.Next(cpu)
		if cpu < 0 {
			cpu = allowed.First()
		}
		if cpu == start {
			break
		}
	}
	return -1
}

// Move is one planned write: IRQ from the CPUs it is on to a new mask.
type Move struct {
	IRQ  int          `json:"irq"`
	From sysfs.CPUSet `json:"from"`
	To   sysfs.CPUSet `json:"to"`
	// Narrow is true when the IRQ stays on the one CPU it is delivered to
	// and only its mask shrinks to that CPU: the interrupt does not move.
	Narrow bool   `json:"narrow"`
	Reason string `json:"reason"`
}

// Skip is an IRQ the plan leaves alone, and why.
type Skip struct {
	IRQ    int    `json:"irq"`
	Class  Class  `json:"class"`
	Reason string `json:"reason"`
}

// Plan is what a planner decided. Moves are in IRQ order.
type Plan struct {
	Moves   []Move `json:"moves"`
	Skipped []Skip `json:"skipped"`
}

func newPlan() Plan { return Plan{Moves: []Move{}, Skipped: []Skip{}} }

// Planner holds the state that survives between plans: the cursor. Its
// methods do no I/O; the same IRQs, CPUs and cursor give the same plan.
type Planner struct {
	Cursor Cursor
	// Pins are the admin's masks: rebalance leaves a pinned IRQ on its pin
	// (restoring it if needed) unless IncludePinned; drain moves a pinned
	// IRQ within its pin where it can.
	Pins          Pins
	IncludePinned bool
	// Balance is what the plan evens out beyond the counts: with
	// BalanceLoad (or "") the IRQs' rates (IRQ.Rate), with BalanceCount
	// nothing more.
	Balance Balance
	// Steady says that the IRQs are where an earlier plan with rates left
	// them (the daemon, once it planned with rates): the busiest CPU is
	// then cut only when the cut is material (MaterialCut). Otherwise (a
	// command, the daemon's first plan with rates) it is cut as far as it
	// goes, so that what the daemon then keeps is a placement the planner
	// chose, not one it merely tolerated.
	Steady bool
	// DeferCuts leaves a steady plan's search for cuts of the busiest CPU
	// to the next plan that sets it false: the daemon sets it for the
	// quick settle of a CPU event, which must end in milliseconds, while
	// under steady load that search almost always ends taken back (not
	// material) and costs a millisecond at 4096 IRQs. The IRQs that must
	// move are still placed busiest first and busy IRQs still kept apart;
	// the full settle that follows the events makes any material cut.
	DeferCuts bool
	// Nodes maps a NUMA node to its CPUs (from sysfs.CPUInfo.Node). Nil or
	// empty means NUMA is ignored: every IRQ's home is all allowed CPUs.
	Nodes map[int]sysfs.CPUSet
	// Rules are the device rules with placement effects, by name; an IRQ
	// names the rule that matched it in IRQ.Rule (see Home).
	Rules map[string]RuleHome
}

// Home returns the CPUs irq should live on, out of allowed. A device rule
// with CPUs (irq.Rule, Rules) decides first: the allowed ones of its CPUs,
// or, when none of them is online and allowed, the IRQ spills like a pin
// whose CPUs are gone and returns when one comes back. Otherwise it is the
// allowed CPUs of its device's NUMA node (irq.Node) when that node has one,
// else all of allowed — for an IRQ of unknown node (-1), of a memory-only
// node, of a node whose CPUs are all offline, banned or drained, and for
// every IRQ when Nodes is empty. Either way the CPUs of exclusive rules are
// left to their own IRQs while any other allowed CPU remains. It does not
// look at pins: a pin wins over the home, and Rebalance and Drain apply
// pins first.
func (p *Planner) Home(irq IRQ, allowed sysfs.CPUSet) sysfs.CPUSet {
	return p.home(&irq, allowed, p.exclusiveCPUs())
}

// home is Home with the exclusive rules' CPUs worked out once per plan.
func (p *Planner) home(irq *IRQ, allowed, exclusive sysfs.CPUSet) sysfs.CPUSet {
	if r, ok := p.Rules[irq.Rule]; ok && !r.CPUs.IsEmpty() {
		if home := r.CPUs.Intersect(allowed); !home.IsEmpty() {
			return home
		}
	}
	if open := allowed.Difference(exclusive); !open.IsEmpty() {
		allowed = open
	}
	if irq.Node >= 0 && len(p.Nodes) > 0 {
		if home := p.Nodes[irq.Node].Intersect(allowed); !home.IsEmpty() {
			return home
		}
	}
	return allowed
}

// exclusiveCPUs is every CPU an exclusive rule keeps for its own IRQs.
func (p *Planner) exclusiveCPUs() sysfs.CPUSet {
	var set sysfs.CPUSet
	for _, r := range p.Rules {
		if r.Exclusive {
			set = set.Union(r.CPUs)
		}
	}
	return set
}

// RuleHome is what a device rule says about where its IRQs go (the
// effects of package rules' Rule that the planner needs).
type RuleHome struct {
	// CPUs the rule's IRQs are spread over; empty when it gives none.
	CPUs sysfs.CPUSet
	// Exclusive keeps every other IRQ off CPUs.
	Exclusive bool
}

// RuleReasonPrefix starts the Reason of a move that brings an IRQ to its
// rule's CPUs; the rule's name follows.
const RuleReasonPrefix = "rule "

func ruleReason(name string) string { return RuleReasonPrefix + name }

// numaReason is the Reason of a move that brings an IRQ from outside its
// node into it.
func numaReason(node int) string { return fmt.Sprintf("numa: node %d", node) }

// SkipPinned is the Class of a Skip for an IRQ left on its pin; the IRQ
// itself is movable.
const SkipPinned Class = "pinned"

// deliveryCPU returns the one CPU an IRQ is delivered to: its effective
// affinity when the kernel gives a single CPU, or, where the kernel gives
// no effective affinity, a single-CPU mask. It returns -1 when the IRQ may
// fire on several CPUs (a wide mask without an effective file, or a
// multi-CPU effective set).
func deliveryCPU(irq *IRQ) int {
	if where := irq.Where(); where.Len() == 1 {
		return where.First()
	}
	return -1
}

// settledOn reports whether irq already sits alone on cpu: its mask is
// that one CPU and the chip delivers there. Writing it again would change
// nothing.
func settledOn(irq *IRQ, cpu int) bool {
	return irq.Affinity.Len() == 1 && irq.Affinity.First() == cpu && deliveryCPU(irq) == cpu
}

// isNarrow reports whether writing to leaves irq on the CPU it is
// delivered to: to is exactly that one CPU.
func isNarrow(irq *IRQ, to sysfs.CPUSet) bool {
	cpu := deliveryCPU(irq)
	return cpu >= 0 && to.Len() == 1 && to.First() == cpu
}

// spreader places IRQs one at a time on the least-loaded CPU of cpus,
// ties broken by a cursor. load is indexed by CPU and covers cpus; it only
// grows, by one at the least-loaded CPU, so the lowest load is recomputed
// only when no CPU is left at it.
type spreader struct {
	cursor *Cursor
	cpus   sysfs.CPUSet
	load   []int
	lowest int
}

func newSpreader(cursor *Cursor, cpus sysfs.CPUSet, load []int) *spreader {
	s := &spreader{cursor: cursor, cpus: cpus, load: load}
	s.findLowest()
	return s
}

func (s *spreader) findLowest() {
	s.lowest = -1
	for cpu := s.cpus.First(); cpu >= 0; cpu = s.cpus.Next(cpu) {
		if s.lowest < 0 || s.load[cpu] < s.lowest {
			s.lowest = s.load[cpu]
		}
	}
}

// place returns the least-loaded CPU, advancing the cursor past it, and
// counts one more IRQ there; -1 when cpus is empty.
func (s *spreader) place() int {
	atLowest := func(cpu int) bool { return s.load[cpu] == s.lowest }
	cpu := s.cursor.Pick(s.cpus, atLowest)
	if cpu < 0 {
		s.findLowest()
		if cpu = s.cursor.Pick(s.cpus, atLowest); cpu < 0 {
			return -1
		}
	}
	s.load[cpu]++
	return cpu
}

// Rebalance spreads every movable IRQ over allowed with single-CPU masks,
// each within its home (Home), with as few interrupts changing CPU as that
// allows. Pinned IRQs stay on (or go back to) the allowed part of their pin
// whatever their home, and are not counted.
//
// The unpinned movable IRQs are grouped by home. Each node home — a node's
// allowed CPUs, when that is not all of allowed — is placed first, one at a
// time in node order, counting only its own IRQs; then the IRQs whose home
// is all of allowed ("node-less": unknown node, or a node with no allowed
// CPU), counting every IRQ the node homes left on each CPU. An IRQ
// delivered outside its home is never kept: when a node's CPUs return, its
// IRQs go back to it (Reason "numa: node N").
//
// Within a group, an IRQ is kept on the CPU it is delivered to (deliveryCPU)
// when that CPU is in the home and within its share. The shares fill the
// home's CPUs to a common level: the largest level L such that raising
// every CPU below L to L (counting what is already there from the node
// homes) takes at most the group's IRQs; a CPU's share is L minus that
// load (none for a CPU above L), and the R IRQs left over give one more
// place on R CPUs at or below L, chosen among those holding more than their
// share (ascending, those whose extra IRQ already sits alone on them
// first). Without node homes the load is zero and this is len/len(allowed)
// per CPU with one more on len%len(allowed) CPUs. A kept IRQ whose mask is
// wider than its CPU is narrowed to it (Move.Narrow, reason "narrow"); one
// already alone there is left as it is, so a second rebalance plans
// nothing. A CPU keeps the IRQs that already sit alone on it before those
// it would have to narrow, each kind in IRQ order. The others — delivered
// outside the home, to a CPU over its share, or to several CPUs — go, in
// IRQ order, to the least-loaded CPU of the home, ties broken by the
// cursor, so that successive plans keep spreading.
//
// What is guaranteed about the counts of unpinned movable IRQs per CPU:
//   - For each node home, the IRQs of that home, counted on its CPUs,
//     differ by at most one. This is all that is promised for homes that
//     overlap (Nodes that share CPUs); for disjoint nodes without
//     node-less IRQs it is the count per CPU within each node.
//   - Node-less IRQs water-fill the totals (every unpinned movable IRQ per
//     allowed CPU): the lowest total is as high as it can be, and no CPU
//     holding a node-less IRQ has more than the lowest total plus one. The
//     totals differ by at most one overall when the node homes leave no CPU
//     above that level — always when every IRQ is node-less, as with Nodes
//     nil, one node covering every allowed CPU, or no node with an allowed
//     CPU. Otherwise (a node with more IRQs per CPU than the others) no
//     overall bound holds: an IRQ does not leave its node to even them.
func (p *Planner) Rebalance(irqs []IRQ, allowed sysfs.CPUSet) (Plan, error) {
	plan := newPlan()
	if allowed.IsEmpty() {
		return plan, fmt.Errorf("%w: no allowed online CPU to place IRQs on", ErrBadCPU)
	}
	// The rates on each CPU, for Balance "load": first the IRQs the plan
	// does not place (unmovable device IRQs, pinned ones), then each
	// group's as it is placed. nil: counts only.
	var rates *cpuRates
	if p.byLoad() {
		rates = newCPURates(irqs, allowed)
	}
	// The node homes in node order, then the node-less IRQs.
	type group struct {
		node int // the lowest node with this home
		home sysfs.CPUSet
		irqs []*IRQ
	}
	var groups []*group
	byHome := map[string]*group{}
	// The home depends on the rule and the node only: found once per pair
	// (a string key per IRQ was a third of a 4096-IRQ plan). nil: the
	// IRQs whose home is every allowed CPU.
	type homeKey struct {
		rule string
		node int
	}
	byKey := map[homeKey]*group{}
	exclusive := p.exclusiveCPUs()
	// open is the home of an IRQ with no rule or node of its own: every
	// allowed CPU but those exclusive rules keep, unless that is all.
	open := allowed.Difference(exclusive)
	if open.IsEmpty() {
		open = allowed
	}
	var nodeless []*IRQ
	for i := range irqs {
		irq := &irqs[i]
		if !irq.Movable() {
			plan.Skipped = append(plan.Skipped, Skip{IRQ: irq.IRQ, Class: irq.Class, Reason: irq.Reason})
			continue
		}
		if !p.IncludePinned {
			// A pinned IRQ stays on (or goes back to) the allowed part of
			// its pin; one whose pin has no allowed CPU left is spread
			// like the others until its CPUs return.
			if target, pin, ok := p.Pins.pinTarget(*irq, allowed); ok && !target.IsEmpty() {
				rates.add(pinnedCPU(irq, target), irq.Rate)
				if irq.Affinity.Equal(target) && (!irq.HasEffective || irq.Effective.IsSubsetOf(target)) {
					plan.Skipped = append(plan.Skipped, Skip{IRQ: irq.IRQ, Class: SkipPinned, Reason: pinnedReason(pin)})
				} else {
					plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: target,
						Narrow: isNarrow(irq, target), Reason: "restore pin " + pin.CPUs.String()})
				}
				continue
			}
		}
		key := homeKey{irq.Rule, irq.Node}
		if _, ok := p.Rules[irq.Rule]; !ok {
			key.rule = ""
		}
		g, seen := byKey[key]
		if !seen {
			if home := p.home(irq, allowed, exclusive); !home.Equal(open) {
				if g = byHome[home.String()]; g == nil {
					g = &group{node: irq.Node, home: home}
					byHome[home.String()] = g
					groups = append(groups, g)
				}
				g.node = min(g.node, irq.Node)
			}
			byKey[key] = g
		}
		if g == nil {
			nodeless = append(nodeless, irq)
			continue
		}
		g.irqs = append(g.irqs, irq)
	}
	slices.SortFunc(groups, func(a, b *group) int { return a.node - b.node })

	total := make([]int, allowed.Last()+1)
	for _, g := range groups {
		load := make([]int, len(total))
		p.spreadGroup(&plan, g.irqs, g.home, load, rates, func(irq *IRQ) string {
			switch {
			case irq.Where().IsSubsetOf(g.home):
				return "rebalance"
			case p.ruleHome(irq):
				return ruleReason(irq.Rule)
			}
			return numaReason(irq.Node)
		})
		for cpu, n := range load {
			total[cpu] += n
		}
	}
	p.spreadGroup(&plan, nodeless, open, total, rates, func(irq *IRQ) string {
		if !exclusive.IsEmpty() && irq.Where().Intersects(exclusive) {
			return "exclusive rule CPUs " + exclusive.Intersect(allowed).String()
		}
		return "rebalance"
	})
	sortPlan(&plan)
	return plan, nil
}

// ruleHome reports whether irq's home comes from its rule's CPUs.
func (p *Planner) ruleHome(irq *IRQ) bool {
	r, ok := p.Rules[irq.Rule]
	return ok && !r.CPUs.IsEmpty()
}

// byLoad reports whether plans look at rates (Balance "load", the default).
func (p *Planner) byLoad() bool { return p.Balance != BalanceCount }

// pinnedCPU is the CPU a pinned IRQ fires on once on target: where it is
// delivered if that is in target, else the first CPU of target, which is
// where the GIC delivers an IRQ of a multi-CPU mask.
func pinnedCPU(irq *IRQ, target sysfs.CPUSet) int {
	if cpu := deliveryCPU(irq); cpu >= 0 && target.Contains(cpu) {
		return cpu
	}
	return target.First()
}

// spreadGroup plans group, the IRQs of one home, over home with fewest
// moves (see Rebalance). load is indexed by CPU and covers home; it holds
// on entry what other groups leave on each CPU and on return that plus
// this group. rates, when not nil (Balance "load"), holds the rates on
// each CPU in the same way, and the group is placed with them (keep,
// filler, improve). reason names a move that changes an IRQ's CPU.
func (p *Planner) spreadGroup(plan *Plan, group []*IRQ, home sysfs.CPUSet, load []int, rates *cpuRates, reason func(*IRQ) string) {
	if len(group) == 0 {
		return
	}
	level, extra := waterLevel(home, load, len(group))
	// capacity is the IRQs of the group a CPU may hold: up to the level,
	// plus one on extra CPUs at or below it.
	capacity := make([]int, len(load))
	for cpu := home.First(); cpu >= 0; cpu = home.Next(cpu) {
		capacity[cpu] = max(0, level-load[cpu])
	}

	// Group the IRQs by the CPU of home they are delivered to; the others
	// must move.
	on := make([][]*IRQ, len(load))
	var rest []*IRQ
	for _, irq := range group {
		if cpu := deliveryCPU(irq); cpu >= 0 && home.Contains(cpu) {
			on[cpu] = append(on[cpu], irq)
		} else {
			rest = append(rest, irq)
		}
	}
	// Each CPU keeps its settled IRQs first, then those to narrow; within
	// each kind the busy ones first, the busiest first (by load), then in
	// IRQ order. The keys are worked out once per IRQ, not per comparison:
	// the sort runs on every CPU of every plan, and the daemon's quick
	// settle plans all of a big machine's IRQs.
	type sortKey struct {
		irq             *IRQ
		unsettled, idle bool
		rate            float64 // busy IRQs only
	}
	var keys []sortKey
	keepFirst := func(cpu int) {
		list := on[cpu]
		if len(list) < 2 {
			return
		}
		keys = keys[:0]
		for _, irq := range list {
			k := sortKey{irq: irq, unsettled: !settledOn(irq, cpu), idle: true}
			if rates != nil && rates.isBusy(irq.Rate) {
				k.idle, k.rate = false, irq.Rate
			}
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b sortKey) int {
			if d := boolRank(a.unsettled) - boolRank(b.unsettled); d != 0 {
				return d
			}
			if d := boolRank(a.idle) - boolRank(b.idle); d != 0 {
				return d
			}
			if a.rate != b.rate {
				if a.rate > b.rate {
					return -1
				}
				return 1
			}
			return a.irq.IRQ - b.irq.IRQ
		})
		for i := range keys {
			list[i] = keys[i].irq
		}
	}
	// The extra places go to CPUs at or below the level that hold more than
	// their capacity: first those whose next IRQ already sits alone there
	// (keeping it saves a write), then the others, ascending.
	var over []int
	for cpu := home.First(); cpu >= 0; cpu = home.Next(cpu) {
		keepFirst(cpu)
		if load[cpu] <= level && len(on[cpu]) > capacity[cpu] {
			over = append(over, cpu)
		}
	}
	slices.SortStableFunc(over, func(a, b int) int {
		return boolRank(!settledOn(on[a][capacity[a]], a)) - boolRank(!settledOn(on[b][capacity[b]], b))
	})
	granted := min(extra, len(over))
	for _, cpu := range over[:granted] {
		capacity[cpu]++
	}

	placements := make([]placed, 0, len(group))
	for cpu := home.First(); cpu >= 0; cpu = home.Next(cpu) {
		kept := min(len(on[cpu]), capacity[cpu])
		load[cpu] += kept
		for _, irq := range on[cpu][:kept] {
			placements = append(placements, placed{irq: irq, cpu: cpu})
			rates.add(cpu, irq.Rate)
		}
		rest = append(rest, on[cpu][kept:]...)
	}
	// The kept IRQs fill no CPU beyond the level, and beyond it by one on
	// at most extra CPUs, while the group holds enough IRQs to bring every
	// CPU to the level and extra more; so the filler always finds room,
	// and this ends with every CPU that was at or below the level at it or
	// one above, extra of them above. Without rates the IRQs go in IRQ
	// order, each to the least-loaded CPU (cursor for ties).
	slices.SortStableFunc(rest, func(a, b *IRQ) int { return a.IRQ - b.IRQ })
	if rates != nil {
		busyFirst(rest, rates)
	}
	fill := newFiller(home, load, rates, level, extra-granted, &p.Cursor, p.Steady)
	fill.deferCuts = p.Steady && p.DeferCuts
	for _, irq := range rest {
		placements = append(placements, placed{irq: irq, cpu: fill.place(irq), why: reason(irq)})
	}
	if rates != nil {
		fill.improve(placements, loadReason(rates))
	}
	for _, pl := range placements {
		irq := pl.irq
		switch {
		case pl.cpu == deliveryCPU(irq) && settledOn(irq, pl.cpu):
		case pl.cpu == deliveryCPU(irq):
			plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(pl.cpu), Narrow: true, Reason: "narrow"})
		default:
			plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(pl.cpu), Reason: pl.why})
		}
	}
}

// waterLevel returns the largest level such that bringing every CPU of cpus
// whose load is below it up to it takes at most n IRQs, and how many of the
// n are left over: fewer than the CPUs at or below the level. With zero
// loads it is n/len(cpus) and n%len(cpus).
func waterLevel(cpus sysfs.CPUSet, load []int, n int) (level, extra int) {
	need := func(level int) int {
		sum := 0
		for cpu := cpus.First(); cpu >= 0; cpu = cpus.Next(cpu) {
			sum += max(0, level-load[cpu])
		}
		return sum
	}
	lowest := -1
	for cpu := cpus.First(); cpu >= 0; cpu = cpus.Next(cpu) {
		if lowest < 0 || load[cpu] < lowest {
			lowest = load[cpu]
		}
	}
	// need(lo) ≤ n < need(hi): level lowest+n+1 needs at least n+1.
	lo, hi := lowest, lowest+n+1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if need(mid) <= n {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, n - need(lo)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Drain moves every movable IRQ delivered to a CPU of drained (by its
// effective affinity, or by its mask where the kernel does not say) to the
// least-loaded allowed CPU outside drained, ties broken by the cursor, so
// that movable IRQs per target CPU end up within one of each other whenever
// moving only the drained CPUs' IRQs allows it. The load of a target CPU is
// the movable IRQs (pinned ones included) delivered to it that stay: an IRQ
// delivered to several CPUs counts once, to the first of them that is a
// target. A pinned IRQ moves within the allowed part of its pin where that
// has a CPU outside drained (counting to the pin's first such CPU, where
// the GIC would deliver it); these are placed first, then the others in
// IRQ order. IRQs that cannot move but sit on a drained CPU are listed as
// skipped with their reason.
//
// With Nodes, an unpinned IRQ goes to the least-loaded CPU of its home
// (Home over allowed minus drained; reason "drain C within node N"): its
// node's remaining allowed CPUs, or, when its node has none left or it has
// no node, every remaining allowed CPU. The load counted is still every
// movable IRQ on the CPU, whatever its node, and every placement is on a
// least-loaded CPU of the IRQ's home; so the within-one promise holds among
// the remaining CPUs of each node for the IRQs that go into it, and across
// all remaining CPUs only when no drained IRQ has a node home: an IRQ does
// not leave its node to even the nodes.
func (p *Planner) Drain(irqs []IRQ, drained, allowed sysfs.CPUSet) (Plan, error) {
	plan := newPlan()
	targets := allowed.Difference(drained)
	if targets.IsEmpty() {
		return plan, fmt.Errorf("%w: draining %s would leave no allowed CPU (allowed: %s)", ErrBadCPU, CPUNoun(drained), allowed)
	}
	load := make([]int, targets.Last()+1)
	var free []*IRQ
	for i := range irqs {
		irq := &irqs[i]
		where := irq.Where()
		if where.Intersect(drained).IsEmpty() {
			if irq.Movable() {
				if cpu := where.Intersect(targets).First(); cpu >= 0 {
					load[cpu]++
				}
			}
			continue
		}
		if !irq.Movable() {
			reason := irq.Reason
			if irq.Class == ClassManaged {
				reason += "; the kernel shuts it down with its CPU"
			}
			plan.Skipped = append(plan.Skipped, Skip{IRQ: irq.IRQ, Class: irq.Class, Reason: reason})
			continue
		}
		if within, pin, ok := p.Pins.pinTarget(*irq, targets); ok && !within.IsEmpty() {
			plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: where, To: within,
				Reason: fmt.Sprintf("drain %s within pin %s", drained, pin.CPUs)})
			load[within.First()]++
			continue
		}
		free = append(free, irq)
	}
	slices.SortStableFunc(free, func(a, b *IRQ) int { return a.IRQ - b.IRQ })
	reason := func(irq *IRQ, home sysfs.CPUSet) string {
		if home.Equal(targets) {
			return "drain " + drained.String()
		}
		return fmt.Sprintf("drain %s within node %d", drained, irq.Node)
	}
	if p.byLoad() {
		p.drainByLoad(&plan, irqs, free, drained, targets, load, reason)
		sortPlan(&plan)
		return plan, nil
	}
	// One spreader per home, all on the same load: loads only grow, so a
	// spreader whose lowest load went stale finds it again.
	spreaders := map[string]*spreader{}
	for _, irq := range free {
		home := p.Home(*irq, targets)
		spread, ok := spreaders[home.String()]
		if !ok {
			spread = newSpreader(&p.Cursor, home, load)
			spreaders[home.String()] = spread
		}
		cpu := spread.place()
		plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Reason: reason(irq, home)})
	}
	sortPlan(&plan)
	return plan, nil
}

// drainByLoad places the free IRQs of a drain with their rates: grouped by
// home, the node homes first in node order and then those whose home is
// every target, each group water-filled over its home on the shared load
// (the counts end as the count-only drain's would), the busy IRQs first,
// each to the CPU of its home with the lowest rate that has room. Only the
// drained CPUs' IRQs move: a drain does not improve the rest.
func (p *Planner) drainByLoad(plan *Plan, irqs []IRQ, free []*IRQ, drained, targets sysfs.CPUSet, load []int, reason func(*IRQ, sysfs.CPUSet) string) {
	rates := &cpuRates{rate: make([]float64, len(load)), busy: make([]int, len(load)), threshold: busyThreshold(irqs)}
	for i := range irqs {
		irq := &irqs[i]
		if irq.Class == ClassPerCPU || irq.Rate == 0 {
			continue
		}
		if where := irq.Where(); !where.Intersect(drained).IsEmpty() {
			continue // leaves with the drain (pinned ones are in plan)
		}
		if cpu := deliveryCPU(irq); cpu >= 0 && targets.Contains(cpu) {
			rates.add(cpu, irq.Rate)
		}
	}
	for _, m := range plan.Moves {
		if irq := irqByNumber(irqs, m.IRQ); irq != nil {
			rates.add(pinnedCPU(irq, m.To), irq.Rate)
		}
	}
	type group struct {
		node int
		home sysfs.CPUSet
		irqs []*IRQ
	}
	var groups []*group
	byHome := map[string]*group{}
	for _, irq := range free {
		home := p.Home(*irq, targets)
		g := byHome[home.String()]
		if g == nil {
			g = &group{node: irq.Node, home: home}
			if home.Equal(targets) {
				g.node = math.MaxInt // after every node home
			}
			byHome[home.String()] = g
			groups = append(groups, g)
		}
		g.node = min(g.node, irq.Node)
		if home.Equal(targets) {
			g.node = math.MaxInt
		}
		g.irqs = append(g.irqs, irq)
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return cmp.Compare(a.node, b.node) })
	for _, g := range groups {
		level, extra := waterLevel(g.home, load, len(g.irqs))
		fill := newFiller(g.home, load, rates, level, extra, &p.Cursor, false)
		busyFirst(g.irqs, rates)
		for _, irq := range g.irqs {
			cpu := fill.place(irq)
			plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Reason: reason(irq, g.home)})
		}
	}
}

// irqByNumber returns the IRQ numbered n of irqs, nil if none. Linear: for
// the few pinned moves of a drain.
func irqByNumber(irqs []IRQ, n int) *IRQ {
	for i := range irqs {
		if irqs[i].IRQ == n {
			return &irqs[i]
		}
	}
	return nil
}

func sortPlan(plan *Plan) {
	sortByIRQ(plan.Moves, func(m Move) int { return m.IRQ })
	sortByIRQ(plan.Skipped, func(s Skip) int { return s.IRQ })
}

// CheckCPUs validates CPU arguments of drain and offline against the
// machine: each must exist, be online, and, for offline, be hotpluggable;
// and taking them all away must leave an allowed CPU.
func CheckCPUs(cpus []int, info sysfs.CPUInfo, allowed sysfs.CPUSet, forOffline bool) (sysfs.CPUSet, error) {
	if len(cpus) == 0 {
		return sysfs.CPUSet{}, fmt.Errorf("%w: no CPU given", ErrBadCPU)
	}
	var set sysfs.CPUSet
	for _, cpu := range cpus {
		switch {
		case cpu < 0 || !info.Possible.Contains(cpu):
			return sysfs.CPUSet{}, fmt.Errorf("%w: CPU %d does not exist (possible CPUs: %s)", ErrBadCPU, cpu, info.Possible)
		case !info.Online.Contains(cpu):
			return sysfs.CPUSet{}, fmt.Errorf("%w: CPU %d is offline (online CPUs: %s)", ErrBadCPU, cpu, info.Online)
		case forOffline && !info.Hotpluggable.Contains(cpu):
			return sysfs.CPUSet{}, fmt.Errorf("%w: CPU %d cannot be taken offline (it has no online file)", ErrBadCPU, cpu)
		}
		set = set.With(cpu)
	}
	if allowed.Difference(set).IsEmpty() {
		what := "CPU " + set.String() + " is the last allowed CPU"
		if set.Len() > 1 {
			what = "CPUs " + set.String() + " are all the allowed CPUs"
		}
		return sysfs.CPUSet{}, fmt.Errorf("%w: %s (allowed: %s); IRQs would have nowhere to go", ErrBadCPU, what, allowed)
	}
	if forOffline && info.Online.Difference(set).IsEmpty() {
		return sysfs.CPUSet{}, fmt.Errorf("%w: cannot take every online CPU offline", ErrBadCPU)
	}
	return set, nil
}
