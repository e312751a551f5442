package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

func cmdList(_ *cli.Context, o *options) error {
	st, err := o.engine.Load()
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.stdout, listJSON(st))
	}
	return writeListTable(o.stdout, st)
}

func cmdRebalance(c *cli.Context, o *options) error {
	st, err := o.engine.Load()
	if err != nil {
		return err
	}
	plan, err := o.engine.Planner.Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		return err
	}
	return o.applyAndReport(c, st, plan, sysfs.CPUSet{})
}

func cmdDrain(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	st, err := o.engine.Load()
	if err != nil {
		return err
	}
	drained, err := affinity.CheckCPUs(cpus, st.Snapshot.CPUs, st.Allowed, false)
	if err != nil {
		return err
	}
	plan, err := o.engine.Planner.Drain(st.IRQs, drained, st.Allowed)
	if err != nil {
		return err
	}
	return o.applyAndReport(c, st, plan, drained)
}

// applyAndReport prints a plan (--dry-run) or applies it and prints the
// results. It returns the exit code 3 error when a move failed.
func (o *options) applyAndReport(c *cli.Context, st *affinity.State, plan affinity.Plan, avoid sysfs.CPUSet) error {
	if o.dryRun {
		if o.json {
			return writeJSON(o.stdout, plan)
		}
		return writePlanTable(o.stdout, st, plan)
	}
	results := o.engine.Applier(st, avoid).Apply(c.Context, plan, st.IRQs)
	if o.json {
		if err := writeJSON(o.stdout, applyJSON{Moves: plan.Moves, Skipped: plan.Skipped, Results: results}); err != nil {
			return err
		}
	} else if err := writeResultsTable(o.stdout, st, plan, results); err != nil {
		return err
	}
	return failedMoves(results)
}

// failedMoves turns failed results into the exit code 3 error. Refused
// writes that taught us an IRQ is managed are not failures: the kernel owns
// those IRQs.
func failedMoves(results []affinity.Result) error {
	var failed []int
	for _, r := range results {
		if r.Status == affinity.StatusFailed {
			failed = append(failed, r.IRQ)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return exitCoder{code: exitUnmovable, err: fmt.Errorf("%d IRQ(s) could not be moved: %v", len(failed), failed)}
}

func cmdOffline(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	st, err := o.engine.Load()
	if err != nil {
		return err
	}
	drained, err := affinity.CheckCPUs(cpus, st.Snapshot.CPUs, st.Allowed, true)
	if err != nil {
		return err
	}
	plan, err := o.engine.Planner.Drain(st.IRQs, drained, st.Allowed)
	if err != nil {
		return err
	}
	results := o.engine.Applier(st, drained).Apply(c.Context, plan, st.IRQs)
	moveErr := failedMoves(results)
	for _, cpu := range drained.CPUs() {
		if err := o.fs.SetCPUOnline(cpu, false); err != nil {
			return fmt.Errorf("drained CPU %d but could not take it offline: %w", cpu, err)
		}
		o.logger.Info("CPU offline", "cpu", cpu)
	}
	after, err := o.engine.Load()
	if err != nil {
		return fmt.Errorf("CPUs %s are offline, but re-reading the state failed: %w", drained, err)
	}
	left := leftOn(after, drained)
	report := offlineJSON{CPUs: drained, Moves: plan.Moves, Skipped: plan.Skipped, Results: results, LeftBehind: left}
	if o.json {
		if err := writeJSON(o.stdout, report); err != nil {
			return err
		}
	} else if err := writeOfflineTable(o.stdout, st, report); err != nil {
		return err
	}
	if len(left) > 0 {
		return exitCoder{code: exitUnmovable, err: fmt.Errorf("movable IRQs %v are still on offline CPUs %s", left, drained)}
	}
	return moveErr
}

// leftOn lists the movable IRQs that still have a CPU of cpus in their
// effective affinity: after offline it must be empty.
func leftOn(st *affinity.State, cpus sysfs.CPUSet) []int {
	left := []int{}
	for _, irq := range st.IRQs {
		if irq.Movable() && !irq.Where().Intersect(cpus).IsEmpty() {
			left = append(left, irq.IRQ)
		}
	}
	return left
}

func cmdOnline(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	info, err := o.fs.CPUInfo()
	if err != nil {
		return err
	}
	for _, cpu := range cpus {
		switch {
		case !info.Possible.Contains(cpu):
			return fmt.Errorf("%w: CPU %d does not exist (possible CPUs: %s)", affinity.ErrBadCPU, cpu, info.Possible)
		case info.Online.Contains(cpu):
			return fmt.Errorf("%w: CPU %d is already online", affinity.ErrBadCPU, cpu)
		case !info.Hotpluggable.Contains(cpu):
			return fmt.Errorf("%w: CPU %d cannot be brought online (it has no online file)", affinity.ErrBadCPU, cpu)
		}
	}
	for _, cpu := range cpus {
		if err := o.fs.SetCPUOnline(cpu, true); err != nil {
			return err
		}
		o.logger.Info("CPU online", "cpu", cpu)
	}
	st, err := o.engine.Load()
	if err != nil {
		return err
	}
	for _, cpu := range cpus {
		if !st.Snapshot.CPUs.Online.Contains(cpu) {
			return errors.New("CPU " + fmt.Sprint(cpu) + " did not come online")
		}
	}
	plan, err := o.engine.Planner.Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		return err
	}
	return o.applyAndReport(c, st, plan, sysfs.CPUSet{})
}
