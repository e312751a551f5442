package affinity

import (
	"errors"
	"fmt"
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
}

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

// Rebalance spreads every movable IRQ over allowed with single-CPU masks so
// that the number of movable IRQs per CPU differs by at most one (pinned
// IRQs stay on their pins and are not counted), with as few interrupts
// changing CPU as that allows.
//
// An IRQ is kept on the CPU it is delivered to (deliveryCPU) when that CPU
// is allowed and within its share: len/len(allowed) IRQs per CPU, and one
// more on len%len(allowed) CPUs, given to the CPUs that have more IRQs than
// the share (ascending, those whose extra IRQ already sits alone on them
// first). A kept IRQ whose mask is wider than its CPU is narrowed to it
// (Move.Narrow, reason "narrow"); one already alone there is left as it is,
// so a second rebalance plans nothing. A CPU keeps the IRQs that already sit
// alone on it before those it would have to narrow, each kind in IRQ order.
// The others — delivered to a CPU that is not allowed or over its share, or
// to several CPUs — go, in IRQ order, to the least-loaded allowed CPU, ties
// broken by the cursor, so that successive plans keep spreading.
func (p *Planner) Rebalance(irqs []IRQ, allowed sysfs.CPUSet) (Plan, error) {
	plan := newPlan()
	if allowed.IsEmpty() {
		return plan, fmt.Errorf("%w: no allowed online CPU to place IRQs on", ErrBadCPU)
	}
	var movable []*IRQ
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
				if irq.Affinity.Equal(target) && (!irq.HasEffective || irq.Effective.IsSubsetOf(target)) {
					plan.Skipped = append(plan.Skipped, Skip{IRQ: irq.IRQ, Class: SkipPinned, Reason: pinnedReason(pin)})
				} else {
					plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: target,
						Narrow: isNarrow(irq, target), Reason: "restore pin " + pin.CPUs.String()})
				}
				continue
			}
		}
		movable = append(movable, irq)
	}
	if len(movable) == 0 {
		sortPlan(&plan)
		return plan, nil
	}
	share := len(movable) / allowed.Len()
	extra := len(movable) % allowed.Len() // CPUs that may hold share+1

	// Group the IRQs by the allowed CPU they are delivered to; the others
	// must move.
	on := make([][]*IRQ, allowed.Last()+1)
	var rest []*IRQ
	for _, irq := range movable {
		if cpu := deliveryCPU(irq); cpu >= 0 && allowed.Contains(cpu) {
			on[cpu] = append(on[cpu], irq)
		} else {
			rest = append(rest, irq)
		}
	}
	// Each CPU keeps its settled IRQs first, then those to narrow, each in
	// IRQ order.
	keepFirst := func(cpu int) {
		slices.SortFunc(on[cpu], func(a, b *IRQ) int {
			if d := boolRank(!settledOn(a, cpu)) - boolRank(!settledOn(b, cpu)); d != 0 {
				return d
			}
			return a.IRQ - b.IRQ
		})
	}
	// The extra places go to CPUs over their share: first those whose
	// (share+1)th IRQ already sits alone there (keeping it saves a write),
	// then the others, ascending.
	capacity := make([]int, len(on))
	var over []int
	for cpu := allowed.First(); cpu >= 0; cpu = allowed.Next(cpu) {
		keepFirst(cpu)
		capacity[cpu] = share
		if len(on[cpu]) > share {
			over = append(over, cpu)
		}
	}
	slices.SortStableFunc(over, func(a, b int) int {
		return boolRank(!settledOn(on[a][share], a)) - boolRank(!settledOn(on[b][share], b))
	})
	for _, cpu := range over[:min(extra, len(over))] {
		capacity[cpu]++
	}

	load := make([]int, len(on))
	for cpu := allowed.First(); cpu >= 0; cpu = allowed.Next(cpu) {
		kept := min(len(on[cpu]), capacity[cpu])
		load[cpu] = kept
		for _, irq := range on[cpu][:kept] {
			if !settledOn(irq, cpu) {
				plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Narrow: true, Reason: "narrow"})
			}
		}
		rest = append(rest, on[cpu][kept:]...)
	}
	// The least-loaded CPU is always below its place: the kept IRQs fill at
	// most share per CPU and share+1 on at most extra CPUs, and the total
	// is the IRQ count, so this ends with every CPU at share or share+1.
	slices.SortStableFunc(rest, func(a, b *IRQ) int { return a.IRQ - b.IRQ })
	spread := newSpreader(&p.Cursor, allowed, load)
	for _, irq := range rest {
		cpu := spread.place()
		plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Reason: "rebalance"})
	}
	sortPlan(&plan)
	return plan, nil
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
func (p *Planner) Drain(irqs []IRQ, drained, allowed sysfs.CPUSet) (Plan, error) {
	plan := newPlan()
	targets := allowed.Difference(drained)
	if targets.IsEmpty() {
		return plan, fmt.Errorf("%w: draining CPU %s would leave no allowed CPU (allowed: %s)", ErrBadCPU, drained, allowed)
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
	spread := newSpreader(&p.Cursor, targets, load)
	for _, irq := range free {
		cpu := spread.place()
		plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Reason: "drain " + drained.String()})
	}
	sortPlan(&plan)
	return plan, nil
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
		return sysfs.CPUSet{}, fmt.Errorf("%w: CPU %s is the last allowed CPU (allowed: %s); IRQs would have nowhere to go", ErrBadCPU, set, allowed)
	}
	if forOffline && info.Online.Difference(set).IsEmpty() {
		return sysfs.CPUSet{}, fmt.Errorf("%w: cannot take every online CPU offline", ErrBadCPU)
	}
	return set, nil
}
