package affinity

import (
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func TestExplain(t *testing.T) {
	set := func(s string) sysfs.CPUSet {
		t.Helper()
		c, err := sysfs.ParseCPUList(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	st := &State{
		Snapshot: &sysfs.Snapshot{CPUs: sysfs.CPUInfo{Online: set("0-6")}},
		Banned:   set("4-5"),
		Drained:  set("6"),
		BannedBy: map[int][]BanSource{4: {BanFile}, 5: {BanFile, BanPartition}},
	}
	on := func(mask, eff string) IRQ {
		return IRQ{IRQ: 40, Affinity: set(mask), Effective: set(eff), HasEffective: true}
	}
	for _, tc := range []struct {
		name   string
		move   Move
		irq    IRQ
		kind   CauseKind
		detail string
	}{
		{"offline", Move{Reason: "rebalance"}, on("7", "7"), CauseOffline, "on offline CPU 7"},
		{"banned, with sources", Move{Reason: "rebalance"}, on("4-5", "4-5"), CauseBan, "on banned CPUs 4-5 (ban-file, isolated-partition)"},
		{"drained", Move{Reason: "drain 6"}, on("6", "6"), CauseDrain, "on drained CPU 6"},
		{"being drained", Move{Reason: "drain 2-3"}, on("0-3", "2"), CauseDrain, "off CPUs 2-3, being drained"},
		{"pin first", Move{Reason: "restore pin 7"}, on("4", "4"), CausePin, "restore pin 7"},
		{"rule", Move{Reason: RuleReasonPrefix + "nvme"}, on("0-3", "1"), CauseRule, "rule nvme"},
		{"numa", Move{Reason: numaReason(1)}, on("0", "0"), CauseNUMA, "back to its device's node 1"},
		{"load", Move{Reason: LoadReasonPrefix + "30/s off CPU 1"}, on("1", "1"), CauseLoad, "30/s off CPU 1"},
		{"narrow", Move{Reason: "narrow", Narrow: true}, on("0-3", "2"), CauseNarrow, "stays on CPU 2"},
		{"rebalance", Move{Reason: "rebalance"}, on("0-3", "2"), CauseRebalance, "counts per CPU within one"},
	} {
		kind, detail := st.Explain(tc.move, tc.irq)
		if kind != tc.kind || detail != tc.detail {
			t.Errorf("%s: %s %q, want %s %q", tc.name, kind, detail, tc.kind, tc.detail)
		}
	}
	for _, k := range CauseKinds {
		if strings.ContainsAny(string(k), " =\"") {
			t.Errorf("cause kind %q needs quoting in a log line", k)
		}
	}
}
