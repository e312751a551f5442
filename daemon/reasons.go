package daemon

import (
	"strings"

	"github.com/irqshift/irqshift/hotplug"
)

// SettleReason says why the daemon settled: Settle.Reason, the reason of
// the "settled" log line and the irqshift_irq_moves_total{reason} label.
// It is one of AllSettleReasons.
type SettleReason string

// The settle reasons.
const (
	// SettleStart: the start-up settle.
	SettleStart SettleReason = "start"
	// SettleOffline and SettleOnline: the quick settle of a batch of CPU
	// uevents; offline when the batch took a CPU offline.
	SettleOffline SettleReason = "offline"
	SettleOnline  SettleReason = "online"
	// SettleRecheck: the full settle after the quick settles of CPU
	// events or of a ban change, once no event waits.
	SettleRecheck SettleReason = "recheck"
	// SettleResync: events were lost (a resync event): a full settle.
	SettleResync SettleReason = "resync"
	// SettleReload: SIGHUP applied the configuration anew.
	SettleReload SettleReason = "reload"
	// SettleCheck: the periodic check (Daemon.CheckInterval).
	SettleCheck SettleReason = "check"
	// SettleState: another irqshift changed the state file.
	SettleState SettleReason = "state"
	// SettleBans: a followed ban source changed (Daemon.Bans).
	SettleBans SettleReason = "bans"
	// SettleRules: the rules directory changed and its rules were
	// loaded (Daemon.RulesDir).
	SettleRules SettleReason = "rules"
	// SettleIRQs: IRQs were allocated or freed (/proc/irq changed, or a
	// driver's bind uevent): a full settle places the new ones.
	SettleIRQs SettleReason = "irqs"
	// SettleBalancer: a foreign balancer (Daemon.ForeignWriters) ended:
	// irqshift's placement comes back, its masks learned as no pins.
	SettleBalancer SettleReason = "balancer"
)

// AllSettleReasons lists every settle reason: the one list that the
// metric's help text and the tests are checked against.
var AllSettleReasons = []SettleReason{
	SettleStart, SettleOffline, SettleOnline, SettleRecheck, SettleResync,
	SettleReload, SettleCheck, SettleState, SettleBans, SettleRules, SettleIRQs, SettleBalancer,
}

// ResyncReason says why the daemon re-read the whole CPU state: the
// irqshift_resyncs_total{reason} label. It is the Reason of a hotplug
// resync event, or ResyncSIGHUP; one of AllResyncReasons.
type ResyncReason string

// The resync reasons: those of the hotplug Source's resync events, and
// SIGHUP.
const (
	ResyncStart     ResyncReason = hotplug.ReasonStart
	ResyncENOBUFS   ResyncReason = hotplug.ReasonENOBUFS
	ResyncSeqnumGap ResyncReason = hotplug.ReasonSeqnumGap
	ResyncPeriodic  ResyncReason = hotplug.ReasonPeriodic
	// ResyncSIGHUP: a reload forgets what the engine cached of the CPUs.
	ResyncSIGHUP ResyncReason = "sighup"
)

// AllResyncReasons lists every resync reason: the one list that the
// metric's help text and the tests are checked against.
var AllResyncReasons = []ResyncReason{ResyncStart, ResyncENOBUFS, ResyncSeqnumGap, ResyncPeriodic, ResyncSIGHUP}

// listed joins the values of a vocabulary for a metric's help text:
// "a, b, c".
func listed[T ~string](values []T) string {
	return strings.Join(asStrings(values), ", ")
}

// asStrings returns the values of a vocabulary as strings.
func asStrings[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
