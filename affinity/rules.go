package affinity

import (
	"fmt"
	"slices"
	"strings"

	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// SetRules gives the engine the operator's device rules (package rules);
// nil or empty means none. The next state matches every IRQ against them
// anew and reads the IRQs' devices again.
func (e *Engine) SetRules(set *rules.Set) {
	e.rules = set
	e.ruleByName = map[string]*rules.Rule{}
	e.planner.Rules = nil
	e.matched = nil
	e.rematch = true
	e.ruleEffects = false
	if set == nil {
		return
	}
	for i := range set.Rules {
		r := &set.Rules[i]
		e.ruleByName[r.Name] = r
		e.ruleEffects = e.ruleEffects || r.Ignore || r.Node.IsSet()
		if r.HasCPUs {
			if e.planner.Rules == nil {
				e.planner.Rules = map[string]RuleHome{}
			}
			e.planner.Rules[r.Name] = RuleHome{CPUs: r.CPUs, Exclusive: r.Exclusive}
		}
	}
}

// Rules are the rules SetRules gave (nil for none).
func (e *Engine) Rules() *rules.Set { return e.rules }

// SetShowDevices makes every state name each IRQ's device and driver
// (IRQ.Device, IRQ.Driver) even without rules: list shows them.
func (e *Engine) SetShowDevices(on bool) { e.showDevices, e.rematch = on, true }

// matchRules fills the IRQs' devices and matches them against the rules:
// every IRQ of a full snapshot, of one with new IRQs (a driver bound: their
// devices are read again), or after the rules changed; otherwise only
// those the snapshot read again, the others keeping what the last state
// found. The classification just ran, so every matched IRQ gets its rule's
// effects again.
func (e *Engine) matchRules(irqs []IRQ, snap *sysfs.Snapshot) {
	if e.rules.Len() == 0 && !e.showDevices {
		return
	}
	all := e.rematch || !snap.Incremental || len(snap.Appeared) > 0
	if all {
		devices, err := e.fs.IRQDevices()
		switch {
		case err == nil:
			e.devices = devices
		case e.logger != nil:
			// The last map is still right for every IRQ that kept its
			// number; a rule that names a device waits for the next read.
			e.logger.Warn("could not read the IRQs' devices; keeping the last ones", "err", err)
		}
	}
	if !all {
		// The IRQs the snapshot did not read again are the last state's,
		// device and rule included; classification just reset what a
		// rule's ignore or node changed, so those effects are applied
		// again, looked up by name only where a rule has such effects.
		if e.ruleEffects {
			for i := range irqs {
				if irqs[i].Rule != "" {
					e.applyRule(&irqs[i], e.ruleByName[irqs[i].Rule])
				}
			}
		}
		for _, n := range snap.Reread {
			if i, found := slices.BinarySearchFunc(irqs, n, func(irq IRQ, n int) int { return irq.IRQ - n }); found {
				e.matchIRQ(&irqs[i])
			}
		}
		return
	}
	for i := range irqs {
		e.matchIRQ(&irqs[i])
	}
	e.rematch = false
}

// matchIRQ fills irq's device and driver from the last device map and
// matches it against the rules, giving it its rule's effects.
func (e *Engine) matchIRQ(irq *IRQ) {
	dev, ok := e.devices[irq.IRQ]
	if !ok {
		dev, _ = sysfs.DeviceFromChip(irq.Chip)
	}
	irq.Device, irq.Driver, irq.Rule = dev.Name, dev.Driver, ""
	if r := e.matchRule(irq); r != nil {
		irq.Rule = r.Name
		e.applyRule(irq, r)
	}
}

// matchRule returns the first rule matching irq, nil for none. Matches
// are remembered by identity: a full settle of thousands of IRQs under a
// hundred rules would otherwise glob-match every pair each time.
func (e *Engine) matchRule(irq *IRQ) *rules.Rule {
	if e.rules.Len() == 0 || irq.Class == ClassPerCPU {
		return nil
	}
	var b strings.Builder
	b.WriteString(irq.Chip)
	for _, a := range irq.Actions {
		b.WriteByte(0)
		b.WriteString(a)
	}
	b.WriteByte(1)
	b.WriteString(irq.Device)
	b.WriteByte(1)
	b.WriteString(irq.Driver)
	key := b.String()
	if r, ok := e.matched[key]; ok {
		return r
	}
	r := e.rules.Match(rules.Identity{Chip: irq.Chip, Actions: irq.Actions, Device: irq.Device, Driver: irq.Driver})
	if e.matched == nil {
		e.matched = map[string]*rules.Rule{}
	}
	e.matched[key] = r
	return r
}

// applyRule gives a movable irq the effects of its rule r (nil: none)
// that classification does not know: ignore makes it untouchable, node
// overrides its NUMA home. CPUs are the planner's (Planner.Rules).
func (e *Engine) applyRule(irq *IRQ, r *rules.Rule) {
	if r == nil || !irq.Movable() {
		return
	}
	if r.Ignore {
		irq.Class, irq.Reason = ClassIgnored, fmt.Sprintf("ignored by rule %s (%s:%d)", r.Name, r.File, r.Line)
		return
	}
	switch node, fixed := r.Node.Fixed(); {
	case r.Node.IsIgnore():
		irq.Node = -1
	case fixed:
		irq.Node = node
	}
}

// RuleNames are the names of the rules in force, in their order.
func (e *Engine) RuleNames() []string {
	var names []string
	if e.rules != nil {
		for _, r := range e.rules.Rules {
			names = append(names, r.Name)
		}
	}
	return names
}
