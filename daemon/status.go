package daemon

import (
	"os"
	"slices"
	"time"

	"github.com/irqshift/irqshift/state"
)

// keptReactions bounds the reaction times the status file's percentiles
// are computed from: the last this many, a few days of events on a busy
// machine, in 80 KB.
const keptReactions = 10000

// statusRecord is what the daemon knows of itself for the status file.
type statusRecord struct {
	started   time.Time
	settles   int
	reactions []float64 // milliseconds, a ring of keptReactions
	next      int
	// reaction is summary() as of the last reaction added: worked out
	// only then, not at every settle.
	reaction state.ReactionSummary
	failed   bool // the last save failed: warn once, not every settle
}

func (r *statusRecord) addReaction(ms float64) {
	if len(r.reactions) < keptReactions {
		r.reactions = append(r.reactions, ms)
		return
	}
	r.reactions[r.next] = ms
	r.next = (r.next + 1) % keptReactions
}

// summary is the reaction times' count and percentiles (nearest rank).
func (r *statusRecord) summary() state.ReactionSummary {
	n := len(r.reactions)
	if n == 0 {
		return state.ReactionSummary{}
	}
	sorted := slices.Sorted(slices.Values(r.reactions))
	rank := func(p float64) float64 {
		i := int(p*float64(n)+0.999999) - 1
		return sorted[max(0, min(n-1, i))]
	}
	return state.ReactionSummary{Count: n, P50MS: rank(0.5), P90MS: rank(0.9), MaxMS: sorted[n-1]}
}

// saveStatus records the settle in the status file beside the state
// (state.DaemonStatus), which `irqshift status` reads. A dry run records
// nothing: the file is the daemon's that owns the state.
func (d *Daemon) saveStatus(s Settle, moved, narrowed, failed int) {
	if d.Store == nil || d.DryRun {
		return
	}
	rec := &d.status
	if rec.started.IsZero() {
		rec.started = time.Now()
	}
	rec.settles++
	stamp := &state.SettleStamp{Time: time.Now(), Reason: string(s.Reason), Full: s.Full, Moved: moved, Narrowed: narrowed, Failed: failed}
	if s.Reaction > 0 {
		stamp.ReactionMS = float64(s.Reaction.Microseconds()) / 1000
		rec.addReaction(stamp.ReactionMS)
		rec.reaction = rec.summary()
	}
	err := d.Store.SaveStatus(state.DaemonStatus{PID: os.Getpid(), Started: rec.started, Irqshift: d.Version,
		Settles: rec.settles, Last: stamp, Reaction: rec.reaction})
	switch {
	case err != nil && !rec.failed:
		d.log().Warn("could not record the daemon's status for irqshift status", "path", d.Store.StatusPath(), "err", err)
		rec.failed = true
	case err == nil:
		rec.failed = false
	}
}
