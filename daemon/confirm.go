package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/irqshift/irqshift/affinity"
)

// Confirmer checks, after a settle, that each moved IRQ that fires does so
// on its new CPUs: the eBPF proof of a move, with /proc/interrupts deltas
// as the fallback. Use its AfterApply as Daemon.AfterApply.
type Confirmer struct {
	Sampler affinity.Sampler
	// Window bounds the check: an IRQ silent for that long is not judged.
	Window  time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
}

// AfterApply samples the moved IRQs and logs and counts the verdicts.
func (c *Confirmer) AfterApply(ctx context.Context, st *affinity.State, results []affinity.Result) {
	want := affinity.ExpectAfter(results, st.IRQs)
	if len(want) == 0 {
		return
	}
	online := st.Snapshot.CPUs.Online
	checks, err := affinity.Verify(ctx, c.Sampler, want, online, c.Window)
	if err != nil {
		if ctx.Err() == nil {
			c.Logger.Warn("could not confirm moves", "err", err)
		}
		return
	}
	ok, bad := affinity.Tally(checks)
	c.Metrics.Verified(ok, bad)
	for _, ch := range checks {
		if ch.Bad() {
			c.Logger.Warn("moved IRQ fires outside its new affinity", "irq", ch.IRQ, "expected", ch.Expected.String(),
				"fired", ch.Fired, "verdict", string(ch.Verdict), "method", c.Sampler.Method())
		}
	}
	c.Logger.Info("moves confirmed", "method", c.Sampler.Method(), "ok", ok, "misrouted", bad, "silent", len(checks)-ok-bad)
}
