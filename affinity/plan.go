package affinity

import (
	"errors"
	"fmt"

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
	IRQ    int          `json:"irq"`
	From   sysfs.CPUSet `json:"from"`
	To     sysfs.CPUSet `json:"to"`
	Reason string       `json:"reason"`
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

// settledOn returns the CPU an IRQ already sits on alone, within allowed:
// its mask is that one CPU and the chip delivers there.
func settledOn(irq *IRQ, allowed sysfs.CPUSet) (int, bool) {
	if irq.Affinity.Len() != 1 {
		return -1, false
	}
	cpu := irq.Affinity.First()
	if !allowed.Contains(cpu) {
		return -1, false
	}
	if irq.HasEffective && !irq.Effective.Equal(irq.Affinity) {
		return -1, false
	}
	return cpu, true
}

// Rebalance spreads every movable IRQ over allowed with single-CPU masks so
// that the number of movable IRQs per CPU differs by at most one. An IRQ
// that already sits alone on an allowed CPU that is not over its share is
// left where it is, so a second rebalance plans nothing. The others are
// dealt round-robin by the cursor.
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
					plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: target, Reason: "restore pin " + pin.CPUs.String()})
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
	load := make([]int, allowed.Last()+1)

	// Keep up to share settled IRQs per CPU, then let settled IRQs fill
	// the extra places, then deal the rest round-robin.
	var pending, rest []*IRQ
	for _, irq := range movable {
		if cpu, ok := settledOn(irq, allowed); ok && load[cpu] < share {
			load[cpu]++
			continue
		}
		pending = append(pending, irq)
	}
	for _, irq := range pending {
		if cpu, ok := settledOn(irq, allowed); ok && load[cpu] == share && extra > 0 {
			load[cpu]++
			extra--
			continue
		}
		rest = append(rest, irq)
	}
	hasRoom := func(cpu int) bool {
		return load[cpu] < share || (load[cpu] == share && extra > 0)
	}
	for _, irq := range rest {
		cpu := p.Cursor.Pick(allowed, hasRoom)
		if cpu < 0 {
			// Unreachable: capacity share*k+extra equals the IRQ count.
			return plan, fmt.Errorf("affinity: no room left for IRQ %d", irq.IRQ)
		}
		if load[cpu] == share {
			extra--
		}
		load[cpu]++
		plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: sysfs.NewCPUSet(cpu), Reason: "rebalance"})
	}
	sortPlan(&plan)
	return plan, nil
}

// Drain moves every movable IRQ delivered to a CPU of drained (by its
// effective affinity, or by its mask where the kernel does not say) to the
// next allowed CPU outside drained, round-robin. IRQs that cannot move but
// sit on a drained CPU are listed as skipped with their reason.
func (p *Planner) Drain(irqs []IRQ, drained, allowed sysfs.CPUSet) (Plan, error) {
	plan := newPlan()
	targets := allowed.Difference(drained)
	if targets.IsEmpty() {
		return plan, fmt.Errorf("%w: draining CPU %s would leave no allowed CPU (allowed: %s)", ErrBadCPU, drained, allowed)
	}
	for _, irq := range irqs {
		if irq.Where().Intersect(drained).IsEmpty() {
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
		if within, pin, ok := p.Pins.pinTarget(irq, targets); ok && !within.IsEmpty() {
			plan.Moves = append(plan.Moves, Move{IRQ: irq.IRQ, From: irq.Where(), To: within,
				Reason: fmt.Sprintf("drain %s within pin %s", drained, pin.CPUs)})
			continue
		}
		cpu := p.Cursor.Pick(targets, nil)
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
