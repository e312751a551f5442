package ops

import (
	"context"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// RulesRequest asks what the device rules match now.
type RulesRequest struct{}

// RuleStatus is one rule and what it matches now.
type RuleStatus struct {
	Rule rules.Rule
	// IRQs are the IRQs the rule places (the first rule that matches an
	// IRQ is its rule), in IRQ order.
	IRQs []int
	// CPUs are the CPUs those IRQs are delivered to now.
	CPUs sysfs.CPUSet
}

// RulesReport is the rules directory, each rule with what it matches, and
// the problems found: rules that match nothing, rules shadowed by an
// earlier one, CPUs that do not exist.
type RulesReport struct {
	Dir      string
	Rules    []RuleStatus
	Problems []rules.Problem
	State    *affinity.State
}

// Rules matches the rules (Settings.Rules) against the IRQs of a fresh
// snapshot. It takes no lock and writes nothing.
func Rules(ctx context.Context, env *Env, _ RulesRequest) (*RulesReport, error) {
	s, err := env.open(ctx, false)
	if err != nil {
		return nil, err
	}
	s.engine.SetShowDevices(true)
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	set := env.Settings.Rules
	report := &RulesReport{Dir: env.Settings.RulesDir, State: st, Rules: []RuleStatus{}, Problems: []rules.Problem{}}
	byName := map[string]int{}
	if set != nil {
		for i, r := range set.Rules {
			byName[r.Name] = i
			report.Rules = append(report.Rules, RuleStatus{Rule: r, IRQs: []int{}})
		}
	}
	ids := make([]rules.Identity, 0, len(st.IRQs))
	for _, irq := range st.IRQs {
		if irq.Class == affinity.ClassPerCPU {
			continue // rules never match per-CPU IRQs
		}
		ids = append(ids, identity(irq))
		if i, ok := byName[irq.Rule]; ok {
			report.Rules[i].IRQs = append(report.Rules[i].IRQs, irq.IRQ)
			report.Rules[i].CPUs = report.Rules[i].CPUs.Union(irq.Where())
		}
	}
	if problems := set.Problems(ids, st.Snapshot.CPUs.Possible); problems != nil {
		report.Problems = problems
	}
	return report, nil
}
