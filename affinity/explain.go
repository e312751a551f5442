package affinity

import (
	"fmt"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
)

// CauseKind sorts the writes of a plan by what made them necessary, in
// the words an operator greps a log for: one of CauseKinds.
type CauseKind string

// The cause kinds, most pressing first: a write that has more than one
// cause is given the first that applies.
const (
	// CausePin: an operator's pin (irqshift pin, a mask set by hand) is
	// being restored.
	CausePin CauseKind = "pin"
	// CauseOffline: the IRQ is on, or its mask names, a CPU that is
	// offline.
	CauseOffline CauseKind = "offline"
	// CauseBan: the IRQ is on a banned CPU (a ban file, an isolated
	// partition, --banned-cpus, …; the detail names the sources).
	CauseBan CauseKind = "ban"
	// CauseDrain: the IRQ is on a drained CPU.
	CauseDrain CauseKind = "drain"
	// CauseRule: a device rule places it.
	CauseRule CauseKind = "rule"
	// CauseNUMA: it goes back to its device's NUMA node.
	CauseNUMA CauseKind = "numa"
	// CauseLoad: it moves to even out interrupt rates.
	CauseLoad CauseKind = "load"
	// CauseNarrow: it stays on the CPU it fires on; only its mask shrinks
	// to that CPU.
	CauseNarrow CauseKind = "narrow"
	// CauseRebalance: it moves to keep the IRQ counts per CPU within one.
	CauseRebalance CauseKind = "rebalance"
)

// CauseKinds lists every cause kind.
var CauseKinds = []CauseKind{CausePin, CauseOffline, CauseBan, CauseDrain, CauseRule, CauseNUMA, CauseLoad, CauseNarrow, CauseRebalance}

// Explain says why move, planned from st for irq (as st read it), is
// written: its kind and a detail naming the CPUs, ban sources, rule or
// rates involved.
func (st *State) Explain(move Move, irq IRQ) (CauseKind, string) {
	where := irq.Where()
	var online sysfs.CPUSet
	if st.Snapshot != nil {
		online = st.Snapshot.CPUs.Online
	}
	switch {
	case strings.HasPrefix(move.Reason, "restore pin"):
		return CausePin, move.Reason
	case !online.IsEmpty() && !where.IsSubsetOf(online):
		return CauseOffline, "on offline " + CPUNoun(where.Difference(online))
	case where.Intersects(st.Banned):
		banned := where.Intersect(st.Banned)
		return CauseBan, "on banned " + CPUNoun(banned) + banSources(st, banned)
	case where.Intersects(st.Drained) || strings.HasPrefix(move.Reason, "drain "):
		if drained := where.Intersect(st.Drained); !drained.IsEmpty() {
			return CauseDrain, "on drained " + CPUNoun(drained)
		}
		if cpus, err := sysfs.ParseCPUList(strings.TrimPrefix(move.Reason, "drain ")); err == nil && !cpus.IsEmpty() {
			return CauseDrain, "off " + CPUNoun(cpus) + ", being drained"
		}
		return CauseDrain, move.Reason
	case strings.HasPrefix(move.Reason, RuleReasonPrefix), strings.HasPrefix(move.Reason, "exclusive rule CPUs"):
		return CauseRule, move.Reason
	case strings.HasPrefix(move.Reason, "numa: "):
		return CauseNUMA, "back to its device's " + strings.TrimPrefix(move.Reason, "numa: ")
	case strings.HasPrefix(move.Reason, LoadReasonPrefix):
		return CauseLoad, strings.TrimPrefix(move.Reason, LoadReasonPrefix)
	case move.Narrow:
		return CauseNarrow, "stays on " + CPUNoun(where)
	}
	return CauseRebalance, "counts per CPU within one"
}

// CPUNoun names a CPU set with the right number: "CPU 3", "CPUs 2-3".
func CPUNoun(s sysfs.CPUSet) string {
	if s.Len() == 1 {
		return "CPU " + s.String()
	}
	return "CPUs " + s.String()
}

// banSources lists where the bans of cpus come from: " (crio-ban-file)".
func banSources(st *State, cpus sysfs.CPUSet) string {
	var sources []string
	seen := map[BanSource]bool{}
	for _, cpu := range cpus.CPUs() {
		for _, s := range st.BannedBy[cpu] {
			if !seen[s] {
				seen[s] = true
				sources = append(sources, string(s))
			}
		}
	}
	if len(sources) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s)", strings.Join(sources, ", "))
}
