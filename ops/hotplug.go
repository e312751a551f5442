package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// OfflineRequest asks to drain CPUs and take them offline.
type OfflineRequest struct {
	CPUs []int
	// Sample is how long to measure the IRQs' rates before the drain; 0
	// plans by counts only.
	Sample time.Duration
}

// Offline drains the CPUs, checks that no movable IRQ is left on them,
// takes them offline, and rebalances what drivers' hotplug callbacks
// changed. A CPU is written offline only when its drain completed with
// nothing left behind, and never after an interruption. The CPUs are
// recorded as drained by offline: `online` gives them back.
func Offline(ctx context.Context, env *Env, req OfflineRequest) (report *OfflineReport, err error) {
	if err := env.precheckCPUs(req.CPUs, true, req.Sample); err != nil {
		return nil, err
	}
	s, err := env.openSampled(ctx, true, req.Sample)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	st, cpus, plan, err := s.planDrain(req.CPUs, true)
	if err != nil {
		return nil, err
	}
	report = &OfflineReport{CPUs: cpus, Drain: ApplyReport{State: st, Plan: plan}, LeftBehind: []int{}, Rebalanced: []affinity.Result{}}
	report.Drain.Results = s.engine.Applier(st, cpus).Apply(ctx, plan, st.IRQs)
	drainErr := report.Drain.settle(ctx)
	if errors.Is(drainErr, ErrInterrupted) || errors.Is(drainErr, sysfs.ErrPermission) {
		return report, fmt.Errorf("%w; %s left online", drainErr, affinity.CPUNoun(cpus))
	}
	before, err := s.loadOnly()
	if err != nil {
		return report, fmt.Errorf("drained %s, but re-reading the state failed, so %s online: %w", affinity.CPUNoun(cpus), stayVerb(cpus), err)
	}
	report.After = before
	if left := leftOn(before, cpus); len(left) > 0 {
		report.LeftBehind = left
		return report, fmt.Errorf("%w: movable IRQs %v are still on %s, so %s online", ErrNotMoved, left, affinity.CPUNoun(cpus), stayVerb(cpus))
	}
	for _, cpu := range cpus.CPUs() {
		if ctx.Err() != nil {
			return report, fmt.Errorf("%w: offline: %s; left online: %s", ErrInterrupted, cpuSetText(report.Offlined), cpus.Difference(report.Offlined))
		}
		if err := s.engine.SetCPUOnline(cpu, false); err != nil {
			return report, fmt.Errorf("drained CPU %d but could not take it offline: %w", cpu, err)
		}
		report.Offlined = report.Offlined.With(cpu)
		s.engine.Drain(cpu, affinity.DrainByOffline)
		env.logger().Info("CPU offline", "cpu", cpu)
	}
	after, err := s.loadOnly()
	if err != nil {
		return report, fmt.Errorf("%s offline, but re-reading the state failed: %w", affinity.CPUNoun(cpus)+" "+isAre(cpus), err)
	}
	report.After = after
	report.LeftBehind = leftOn(after, cpus)
	// Drivers react to the offline too (virtio-net rewrites its queues to
	// every online CPU in its own hotplug callback, and the chip then puts
	// them on the lowest): once the CPUs are really gone, even things out.
	if after.Snapshot.CPUs.Online.Intersect(cpus).IsEmpty() && len(report.LeftBehind) == 0 {
		again, _, tidy, err := s.engine.Rebalance(ctx, after)
		if err != nil {
			return report, fmt.Errorf("%s offline, but the rebalance after it failed: %w", affinity.CPUNoun(cpus)+" "+isAre(cpus), err)
		}
		s.last, report.After = again, again
		report.Rebalanced = tidy
		drainErr = errors.Join(drainErr, resultsError(ctx, tidy, 0))
	}
	if len(report.LeftBehind) > 0 {
		return report, fmt.Errorf("%w: movable IRQs %v are still on offline %s", ErrNotMoved, report.LeftBehind, affinity.CPUNoun(cpus))
	}
	return report, drainErr
}

// isAre and stayVerb agree a verb with a CPU set's number.
func isAre(cpus sysfs.CPUSet) string {
	if cpus.Len() == 1 {
		return "is"
	}
	return "are"
}

func stayVerb(cpus sysfs.CPUSet) string {
	if cpus.Len() == 1 {
		return "it stays"
	}
	return "they stay"
}

// leftOn lists the movable IRQs that still have a CPU of cpus in their
// effective affinity.
func leftOn(st *affinity.State, cpus sysfs.CPUSet) []int {
	left := []int{}
	for _, irq := range st.IRQs {
		if irq.Movable() && !irq.Where().Intersect(cpus).IsEmpty() {
			left = append(left, irq.IRQ)
		}
	}
	return left
}

// OnlineRequest asks to bring CPUs online and rebalance.
type OnlineRequest struct {
	CPUs []int
}

// Online brings the CPUs online, gives back those that `offline` drained,
// and rebalances. A CPU already online that `offline` had drained (it came
// back by other means) is only given back.
func Online(ctx context.Context, env *Env, req OnlineRequest) (report *OnlineReport, err error) {
	if len(req.CPUs) == 0 {
		return nil, fmt.Errorf("%w: no CPU given", affinity.ErrBadCPU)
	}
	s, err := env.open(ctx, true)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	info, err := env.FS.CPUInfo()
	if err != nil {
		return nil, err
	}
	report = &OnlineReport{}
	var bring []int
	for _, cpu := range req.CPUs {
		byOffline := s.engine.Drains()[cpu] == affinity.DrainByOffline
		switch {
		case !info.Possible.Contains(cpu):
			return nil, fmt.Errorf("%w: CPU %d does not exist (possible CPUs: %s)", affinity.ErrBadCPU, cpu, info.Possible)
		case info.Online.Contains(cpu) && byOffline:
		case info.Online.Contains(cpu):
			return nil, fmt.Errorf("%w: CPU %d is already online", affinity.ErrBadCPU, cpu)
		case !info.Hotpluggable.Contains(cpu):
			return nil, fmt.Errorf("%w: CPU %d cannot be brought online (it has no online file)", affinity.ErrBadCPU, cpu)
		default:
			bring = append(bring, cpu)
		}
		report.CPUs = report.CPUs.With(cpu)
	}
	for _, cpu := range bring {
		if ctx.Err() != nil {
			return report, fmt.Errorf("%w: before bringing CPU %d online", ErrInterrupted, cpu)
		}
		if err := s.engine.SetCPUOnline(cpu, true); err != nil {
			return report, err
		}
		env.logger().Info("CPU online", "cpu", cpu)
	}
	for _, cpu := range req.CPUs {
		if s.engine.Drains()[cpu] == affinity.DrainByOffline {
			s.engine.Undrain(cpu)
			report.Undrained = report.Undrained.With(cpu)
		}
	}
	st, err := s.load()
	if err != nil {
		return report, err
	}
	if i := slices.IndexFunc(bring, func(cpu int) bool { return !st.Snapshot.CPUs.Online.Contains(cpu) }); i >= 0 {
		return report, fmt.Errorf("CPU %d did not come online", bring[i])
	}
	rebalance, err := s.rebalance(ctx, st, false)
	if rebalance != nil {
		report.Rebalance = *rebalance
	}
	return report, err
}
