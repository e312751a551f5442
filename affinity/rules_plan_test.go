package affinity

import (
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

// ruled returns a movable IRQ on cpu with the kernel's wide mask, matched
// by rule.
func ruled(n, cpu int, rule string) IRQ {
	irq := movableOn(n, "0-7")
	irq.Effective = sysfs.NewCPUSet(cpu)
	irq.Rule = rule
	return irq
}

// where returns the CPU each movable IRQ is delivered to after irqs.
func where(irqs []IRQ) map[int]int {
	out := map[int]int{}
	for _, irq := range irqs {
		if irq.Movable() {
			out[irq.IRQ] = irq.Where().First()
		}
	}
	return out
}

// TestRuleHome: a rule's IRQs spread round-robin over its allowed CPUs,
// with the reason naming the rule; the others stay out of an exclusive
// rule's CPUs; a second plan moves nothing.
func TestRuleHome(t *testing.T) {
	var irqs []IRQ
	for i := 0; i < 4; i++ {
		irqs = append(irqs, ruled(40+i, 0, "nic")) // all on CPU0, as the kernel put them
	}
	for i := 0; i < 8; i++ {
		irqs = append(irqs, ruled(60+i, i, "")) // one per CPU, some on 4-5
	}
	allowed := cpus("0-7")
	for _, exclusive := range []bool{false, true} {
		p := Planner{Balance: BalanceCount, Rules: map[string]RuleHome{"nic": {CPUs: cpus("4-5"), Exclusive: exclusive}}}
		plan, err := p.Rebalance(irqs, allowed)
		if err != nil {
			t.Fatal(err)
		}
		after := applyPlan(irqs, plan)
		at := where(after)
		per := map[int]int{}
		for i := 40; i < 44; i++ {
			if c := at[i]; c != 4 && c != 5 {
				t.Errorf("exclusive=%v: IRQ %d of rule nic on CPU %d, want 4 or 5", exclusive, i, c)
			}
			per[at[i]]++
		}
		if per[4] != 2 || per[5] != 2 {
			t.Errorf("exclusive=%v: rule nic's IRQs per CPU %v, want 2 on each of 4-5 (round-robin)", exclusive, per)
		}
		for _, m := range plan.Moves {
			if m.IRQ >= 40 && m.IRQ < 44 && !m.Narrow && m.Reason != "rule nic" {
				t.Errorf("exclusive=%v: move of IRQ %d says %q, want \"rule nic\"", exclusive, m.IRQ, m.Reason)
			}
		}
		for i := 60; i < 68; i++ {
			if c := at[i]; exclusive && (c == 4 || c == 5) {
				t.Errorf("exclusive: IRQ %d, matched by no rule, is on the rule's CPU %d", i, c)
			}
		}
		if exclusive {
			// The six others fill CPUs 0-3 and 6-7: within one.
			count := map[int]int{}
			for i := 60; i < 68; i++ {
				count[at[i]]++
			}
			if s := spreadOf(count, cpus("0-3,6-7")); s > 1 {
				t.Errorf("exclusive: the other IRQs per CPU differ by %d: %v", s, count)
			}
			for _, m := range plan.Moves {
				if m.IRQ >= 60 && !m.Narrow && m.From.Intersects(cpus("4-5")) && !strings.Contains(m.Reason, "exclusive") {
					t.Errorf("IRQ %d leaves an exclusive CPU with reason %q", m.IRQ, m.Reason)
				}
			}
		}
		again, err := p.Rebalance(after, allowed)
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Moves) != 0 {
			t.Errorf("exclusive=%v: a second plan moves %+v", exclusive, again.Moves)
		}
	}
}

// TestRuleSpillAndReturn: when none of a rule's CPUs is allowed (offline,
// banned or drained), its IRQs spill over the allowed CPUs (never onto an
// exclusive rule's), and go back when one of them returns.
func TestRuleSpillAndReturn(t *testing.T) {
	irqs := []IRQ{ruled(40, 3, "rng"), ruled(41, 2, "other"), ruled(50, 0, ""), ruled(51, 1, "")}
	p := Planner{Balance: BalanceCount, Rules: map[string]RuleHome{
		"rng":   {CPUs: cpus("3")},
		"other": {CPUs: cpus("2"), Exclusive: true},
	}}
	// CPU3 offline: IRQ 40 spills, not onto the exclusive CPU2.
	plan, err := p.Rebalance(irqs, cpus("0-2"))
	if err != nil {
		t.Fatal(err)
	}
	spilled := applyPlan(irqs, plan)
	if c := where(spilled)[40]; c != 0 && c != 1 {
		t.Fatalf("with CPU3 gone, rule rng's IRQ is on CPU %d, want 0 or 1 (CPU2 is exclusive to rule other)", c)
	}
	// CPU3 back.
	back, err := p.Rebalance(spilled, cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	returned := applyPlan(spilled, back)
	if c := where(returned)[40]; c != 3 {
		t.Errorf("with CPU3 back, rule rng's IRQ is on CPU %d, want 3 (moves %+v)", c, back.Moves)
	}
	var reason string
	for _, m := range back.Moves {
		if m.IRQ == 40 {
			reason = m.Reason
		}
	}
	if reason != "rule rng" {
		t.Errorf("the return says %q, want \"rule rng\"", reason)
	}
	// Every CPU of the machine exclusive and the rule's own gone: the
	// others still go somewhere allowed.
	p.Rules["rng"] = RuleHome{CPUs: cpus("3"), Exclusive: true}
	p.Rules["other"] = RuleHome{CPUs: cpus("0-2"), Exclusive: true}
	plan, err = p.Rebalance(irqs, cpus("0-2"))
	if err != nil {
		t.Fatal(err)
	}
	for irq, c := range where(applyPlan(irqs, plan)) {
		if !cpus("0-2").Contains(c) {
			t.Errorf("IRQ %d on CPU %d outside the allowed 0-2", irq, c)
		}
	}
}

// TestRulePrecedence: a pin wins over the rule; a drain empties a rule's
// CPU within the rule's other CPUs, and a rule never puts an IRQ on a CPU
// that is not allowed.
func TestRulePrecedence(t *testing.T) {
	irqs := []IRQ{ruled(40, 0, "nic"), ruled(41, 0, "nic"), ruled(42, 0, "nic")}
	pinned := irqs[2]
	p := Planner{Balance: BalanceCount, Rules: map[string]RuleHome{"nic": {CPUs: cpus("4-5")}},
		Pins: Pins{Key(pinned): {IRQ: 42, CPUs: cpus("7")}}}
	plan, err := p.Rebalance(irqs, cpus("0-7"))
	if err != nil {
		t.Fatal(err)
	}
	at := where(applyPlan(irqs, plan))
	if at[42] != 7 {
		t.Errorf("pinned IRQ 42 on CPU %d, want its pin 7 over rule nic's 4-5", at[42])
	}
	if at[40] == at[41] || !cpus("4-5").Contains(at[40]) || !cpus("4-5").Contains(at[41]) {
		t.Errorf("rule nic's IRQs on %d and %d, want 4 and 5", at[40], at[41])
	}
	// CPU5 banned (not allowed): both on 4.
	plan, err = p.Rebalance(irqs, cpus("0-4,6-7"))
	if err != nil {
		t.Fatal(err)
	}
	at = where(applyPlan(irqs, plan))
	if at[40] != 4 || at[41] != 4 {
		t.Errorf("with CPU5 not allowed, rule nic's IRQs on %d and %d, want both on 4", at[40], at[41])
	}
	// A drain of CPU4 moves its rule IRQ within the rule's CPUs.
	placed := []IRQ{ruled(40, 4, "nic"), ruled(41, 5, "nic"), ruled(50, 0, "")}
	for _, balance := range []Balance{BalanceCount, BalanceLoad} {
		p := Planner{Balance: balance, Rules: map[string]RuleHome{"nic": {CPUs: cpus("4-6")}}}
		plan, err := p.Drain(placed, cpus("4"), cpus("0-7"))
		if err != nil {
			t.Fatal(err)
		}
		at := where(applyPlan(placed, plan))
		if c := at[40]; c != 6 {
			t.Errorf("balance %s: drain of CPU4 put rule nic's IRQ 40 on CPU %d, want 6 (the rule's least-loaded CPU)", balance, c)
		}
	}
}
