package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// Problem is something likely wrong with a rule that still loads: the
// `irqshift rules` command reports them, the daemon does not refuse them
// (a rule for a NIC that is not plugged in yet is fine).
type Problem struct {
	// Rule is the rule's name, File and Line where it is.
	Rule string
	File string
	Line int
	Text string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: rule %q: %s", p.File, p.Line, p.Rule, p.Text)
}

// Problems checks the rules against the IRQs that exist now (their
// identities) and the possible CPUs, and returns, in rule order:
//   - "matches no IRQ": a mistyped glob, or a device that is not there;
//   - "shadowed by rule "X" (file:line): every IRQ it matches, "X" matched
//     first": the rule does match IRQs, but earlier rules take every one of
//     them, so it has no effect;
//   - "cpus 64-71 include CPUs that do not exist (possible: 0-63)".
//
// An empty possible set means the possible CPUs are unknown, and their
// check is skipped.
func (s *Set) Problems(ids []Identity, possible cpuset.Set) []Problem {
	if s == nil {
		return nil
	}
	// winner[i] is the index of the rule that places ids[i], -1 for none.
	winner := make([]int, len(ids))
	for i, id := range ids {
		winner[i] = s.matchIndex(id)
	}
	var problems []Problem
	for j := range s.Rules {
		r := &s.Rules[j]
		report := func(format string, args ...any) {
			problems = append(problems, Problem{Rule: r.Name, File: r.File, Line: r.Line, Text: fmt.Sprintf(format, args...)})
		}
		matched := false
		var shadowers []int // the earlier rules that took its IRQs, in rule order
		won := false
		for i, id := range ids {
			if !r.Matches(id) {
				continue
			}
			matched = true
			if winner[i] == j {
				won = true
				break
			}
			if !slices.Contains(shadowers, winner[i]) {
				shadowers = append(shadowers, winner[i])
			}
		}
		switch {
		case !matched:
			report("matches no IRQ")
		case !won:
			slices.Sort(shadowers)
			report("%s", shadowText(s, shadowers))
		}
		if r.HasCPUs && !possible.IsEmpty() && !r.CPUs.IsSubsetOf(possible) {
			missing := r.CPUs.Difference(possible)
			if missing.Equal(r.CPUs) {
				report("cpus %s include CPUs that do not exist (possible: %s)", r.CPUs, possible)
			} else {
				report("cpus %s include CPUs that do not exist: %s (possible: %s)", r.CPUs, missing, possible)
			}
		}
	}
	return problems
}

func shadowText(s *Set, shadowers []int) string {
	if len(shadowers) == 1 {
		x := &s.Rules[shadowers[0]]
		return fmt.Sprintf("shadowed by rule %q (%s:%d): every IRQ it matches, %q matched first", x.Name, x.File, x.Line, x.Name)
	}
	parts := make([]string, len(shadowers))
	for k, i := range shadowers {
		x := &s.Rules[i]
		parts[k] = fmt.Sprintf("%q (%s:%d)", x.Name, x.File, x.Line)
	}
	return fmt.Sprintf("shadowed by rules %s: every IRQ it matches, one of them matched first", strings.Join(parts, ", "))
}
