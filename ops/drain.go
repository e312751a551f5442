package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// DrainRequest asks to move every movable IRQ off CPUs and keep them off
// until they are undrained.
type DrainRequest struct {
	CPUs   []int
	DryRun bool
	// Sample is how long to measure the IRQs' rates before planning, so
	// that the busy IRQs of the CPUs go to quiet CPUs; 0 plans by counts
	// only.
	Sample time.Duration
}

// Drain moves the movable IRQs of the CPUs to the least-loaded allowed
// CPUs and records the CPUs as drained, so that no later plan of the CLI
// or the daemon puts IRQs back there. Bad input returns before anything is
// written. An interrupted drain records nothing.
func Drain(ctx context.Context, env *Env, req DrainRequest) (report *ApplyReport, err error) {
	if err := env.precheckCPUs(req.CPUs, false, req.Sample); err != nil {
		return nil, err
	}
	s, err := env.openSampled(ctx, !req.DryRun, req.Sample)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	st, cpus, plan, err := s.planDrain(req.CPUs, false)
	if err != nil {
		return nil, err
	}
	report = &ApplyReport{State: st, Plan: plan, DryRun: req.DryRun}
	if req.DryRun {
		return report, nil
	}
	report.Results = s.engine.Applier(st, cpus).Apply(ctx, plan, st.IRQs)
	err = report.settle(ctx)
	if ctx.Err() == nil {
		// Recorded even when some IRQ could not move: the operator's
		// intent holds, and the daemon keeps trying.
		for _, cpu := range cpus.CPUs() {
			s.engine.Drain(cpu, affinity.DrainByDrain)
		}
		env.logger().Info("CPUs drained", "cpus", cpus.String())
	}
	return report, err
}

// planDrain checks the CPU arguments against the machine (for offline also
// that they can go offline) and plans their drain. Bad input returns
// before the pins are probed, the only write before the plan's.
func (s *session) planDrain(args []int, forOffline bool) (*affinity.State, sysfs.CPUSet, affinity.Plan, error) {
	st, err := s.loadOnly()
	if err != nil {
		return nil, sysfs.CPUSet{}, affinity.Plan{}, err
	}
	// A CPU drained before may be drained again (its IRQs went back by
	// hand): check against the allowed set with it.
	allowed := st.Allowed.Union(st.Drained.Intersect(st.Snapshot.CPUs.Online).Difference(st.Banned))
	cpus, err := affinity.CheckCPUs(args, st.Snapshot.CPUs, allowed, forOffline)
	if err != nil {
		return nil, sysfs.CPUSet{}, affinity.Plan{}, err
	}
	if s.writing {
		s.engine.ProbePins(st)
	}
	plan, err := s.engine.Planner().Drain(st.IRQs, cpus, st.Allowed.Difference(cpus))
	return st, cpus, plan, err
}

// precheckCPUs refuses, before a sampling window, CPU arguments that no
// state could make valid: a CPU that does not exist, is offline, or (for
// offline) cannot be taken offline. The full check, against the allowed
// CPUs, is planDrain's, under the lock.
func (env *Env) precheckCPUs(args []int, forOffline bool, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	info, err := env.FS.CPUInfo()
	if err != nil {
		return err
	}
	_, err = affinity.CheckCPUs(args, info, info.Online, forOffline)
	return err
}

// UndrainRequest gives drained CPUs back to IRQs.
type UndrainRequest struct {
	CPUs   []int
	DryRun bool
}

// Undrain forgets the drain of the CPUs and rebalances, so that they get
// their share of IRQs again.
func Undrain(ctx context.Context, env *Env, req UndrainRequest) (report *ApplyReport, err error) {
	if len(req.CPUs) == 0 {
		return nil, fmt.Errorf("%w: no CPU given", affinity.ErrBadCPU)
	}
	s, err := env.open(ctx, !req.DryRun)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	for _, cpu := range req.CPUs {
		if _, ok := s.engine.Drains()[cpu]; !ok {
			return nil, fmt.Errorf("%w: CPU %d is not drained (drained: %s)", affinity.ErrBadCPU, cpu, cpuSetText(s.engine.Drains().CPUs()))
		}
	}
	for _, cpu := range req.CPUs {
		s.engine.Undrain(cpu)
	}
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	return s.rebalance(ctx, st, req.DryRun)
}

func cpuSetText(set sysfs.CPUSet) string {
	if set.IsEmpty() {
		return "none"
	}
	return set.String()
}
