package ops

import (
	"context"
	"time"

	"github.com/irqshift/irqshift/affinity"
)

// RebalanceRequest asks to spread every movable IRQ over the allowed CPUs.
type RebalanceRequest struct {
	DryRun bool
	// Sample is how long to measure the IRQs' rates before planning; 0
	// plans by counts only.
	Sample time.Duration
}

// Rebalance plans a rebalance and, unless DryRun, applies it.
func Rebalance(ctx context.Context, env *Env, req RebalanceRequest) (report *ApplyReport, err error) {
	s, err := env.openSampled(ctx, !req.DryRun, req.Sample)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	return s.rebalance(ctx, st, req.DryRun)
}

// rebalance plans st and applies the plan through the engine, which
// re-plans once when the kernel reveals managed IRQs by refusing.
func (s *session) rebalance(ctx context.Context, st *affinity.State, dryRun bool) (*ApplyReport, error) {
	if dryRun {
		plan, err := s.engine.Planner().Rebalance(st.IRQs, st.Allowed)
		if err != nil {
			return nil, err
		}
		return &ApplyReport{State: st, Plan: plan, DryRun: true}, nil
	}
	after, plan, results, err := s.engine.Rebalance(ctx, st)
	if err != nil {
		return nil, err
	}
	s.last = after
	report := &ApplyReport{State: st, Plan: plan, Results: results}
	return report, report.settle(ctx)
}
