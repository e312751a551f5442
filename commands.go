package main

import (
	"errors"
	"fmt"
	"strconv"

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
		return writeJSON(o.stdout, listJSON(st, o.engine.Planner.Pins))
	}
	return writeListTable(o.stdout, st, o.engine.Planner.Pins)
}

func cmdRebalance(c *cli.Context, o *options) error {
	st, err := o.load()
	if err != nil {
		return err
	}
	return o.rebalance(c, st)
}

// rebalance prints the plan (--dry-run) or applies it through the engine,
// which re-plans once when the kernel reveals managed IRQs by refusing.
func (o *options) rebalance(c *cli.Context, st *affinity.State) error {
	if o.dryRun {
		plan, err := o.engine.Planner.Rebalance(st.IRQs, st.Allowed)
		if err != nil {
			return err
		}
		return o.applyAndReport(c, st, plan, sysfs.CPUSet{})
	}
	st, plan, results, err := o.engine.Rebalance(c.Context, st)
	if err != nil {
		return err
	}
	return o.report(c, st, plan, results)
}

// load snapshots and classifies; for a writing command it also probes
// newly learned pins, so managed IRQs are not taken for pins.
func (o *options) load() (*affinity.State, error) {
	st, err := o.engine.Load()
	if err != nil {
		return nil, err
	}
	if o.writing {
		o.engine.ProbePins(st)
	}
	return st, nil
}

func cmdDrain(c *cli.Context, o *options) error {
	st, drained, plan, err := o.planDrain(c, false)
	if err != nil {
		return err
	}
	return o.applyAndReport(c, st, plan, drained)
}

// planDrain reads the CPU arguments and the state, checks the CPUs (for
// offline also that they can go offline) and plans their drain. Bad input
// returns before anything is written.
func (o *options) planDrain(c *cli.Context, forOffline bool) (*affinity.State, sysfs.CPUSet, affinity.Plan, error) {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return nil, sysfs.CPUSet{}, affinity.Plan{}, err
	}
	st, err := o.engine.Load()
	if err != nil {
		return nil, sysfs.CPUSet{}, affinity.Plan{}, err
	}
	drained, err := affinity.CheckCPUs(cpus, st.Snapshot.CPUs, st.Allowed, forOffline)
	if err != nil {
		return nil, sysfs.CPUSet{}, affinity.Plan{}, err
	}
	if o.writing {
		o.engine.ProbePins(st) // only now: bad input writes nothing
	}
	plan, err := o.engine.Planner.Drain(st.IRQs, drained, st.Allowed)
	return st, drained, plan, err
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
	return o.report(c, st, plan, results)
}

// report prints the results of an apply, confirms them with --verify, and
// returns the exit code 3 error when a move failed or an IRQ misfires.
func (o *options) report(c *cli.Context, st *affinity.State, plan affinity.Plan, results []affinity.Result) error {
	verified, err := o.confirmMoves(c, results, st.IRQs)
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(o.stdout, applyJSON{Moves: plan.Moves, Skipped: plan.Skipped, Results: results, Verify: verified}); err != nil {
			return err
		}
	} else if err := writeResultsTable(o.stdout, st, plan, results); err != nil {
		return err
	}
	return o.verdicts(verified, failedMoves(results))
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
	st, drained, plan, err := o.planDrain(c, true)
	if err != nil {
		return err
	}
	results := o.engine.Applier(st, drained).Apply(c.Context, plan, st.IRQs)
	moveErr := failedMoves(results)
	for _, cpu := range drained.CPUs() {
		if err := o.engine.SetCPUOnline(cpu, false); err != nil {
			return fmt.Errorf("drained CPU %d but could not take it offline: %w", cpu, err)
		}
		o.logger.Info("CPU offline", "cpu", cpu)
	}
	after, err := o.engine.Load()
	if err != nil {
		return fmt.Errorf("CPUs %s are offline, but re-reading the state failed: %w", drained, err)
	}
	left := leftOn(after, drained)
	// Drivers react to the offline too (virtio-net rewrites its queues to
	// every online CPU in its own hotplug callback, and the chip then puts
	// them on the lowest): once the CPUs are really gone, even things out.
	rebalanced := []affinity.Result{}
	if after.Snapshot.CPUs.Online.Intersect(drained).IsEmpty() && len(left) == 0 {
		var tidy []affinity.Result
		after, _, tidy, err = o.engine.Rebalance(c.Context, after)
		if err != nil {
			return fmt.Errorf("CPUs %s are offline, but the rebalance after it failed: %w", drained, err)
		}
		rebalanced = append(rebalanced, tidy...)
		moveErr = errors.Join(moveErr, failedMoves(tidy))
		results = append(results, tidy...)
	}
	verified, err := o.confirmMoves(c, results, after.IRQs)
	if err != nil {
		return err
	}
	report := offlineJSON{CPUs: drained, Moves: plan.Moves, Skipped: plan.Skipped, Results: results[:len(results)-len(rebalanced)],
		Rebalanced: rebalanced, LeftBehind: left, Verify: verified}
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
	return o.verdicts(verified, moveErr)
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
		if err := o.engine.SetCPUOnline(cpu, true); err != nil {
			return err
		}
		o.logger.Info("CPU online", "cpu", cpu)
	}
	st, err := o.load()
	if err != nil {
		return err
	}
	for _, cpu := range cpus {
		if !st.Snapshot.CPUs.Online.Contains(cpu) {
			return errors.New("CPU " + fmt.Sprint(cpu) + " did not come online")
		}
	}
	return o.rebalance(c, st)
}

// findIRQ parses an IRQ argument and finds it in st.
func findIRQ(st *affinity.State, arg string) (affinity.IRQ, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 {
		return affinity.IRQ{}, usageError("%q is not an IRQ number", arg)
	}
	for _, irq := range st.IRQs {
		if irq.IRQ == n {
			return irq, nil
		}
	}
	return affinity.IRQ{}, usageError("IRQ %d is not in /proc/interrupts", n)
}

// loadNamedIRQ checks the arguments of pin and unpin (nargs of them, the
// first an IRQ) and that a state file keeps pins, then loads the state and
// finds the IRQ.
func (o *options) loadNamedIRQ(c *cli.Context, nargs int, usage string) (*affinity.State, affinity.IRQ, error) {
	name := c.Command.Name
	if c.NArg() != nargs {
		return nil, affinity.IRQ{}, usageError("%s: %s", name, usage)
	}
	if !o.engine.TrackPins {
		return nil, affinity.IRQ{}, usageError("%s: pins are kept in the state file; give --state PATH", name)
	}
	st, err := o.engine.Load()
	if err != nil {
		return nil, affinity.IRQ{}, err
	}
	irq, err := findIRQ(st, c.Args().Get(0))
	return st, irq, err
}

// cmdPin writes an admin pin and records it, so that irqshift restores it
// when the kernel breaks it on CPU offline.
func cmdPin(c *cli.Context, o *options) error {
	st, irq, err := o.loadNamedIRQ(c, 2, "give an IRQ and a CPU list, as in: irqshift pin 13 2-3")
	if err != nil {
		return err
	}
	if !irq.Movable() {
		return usageError("IRQ %d cannot be pinned: %s", irq.IRQ, irq.Reason)
	}
	pin, err := sysfs.ParseCPUList(c.Args().Get(1))
	if err != nil || pin.IsEmpty() {
		return usageError("pin: %q is not a CPU list", c.Args().Get(1))
	}
	if !pin.IsSubsetOf(st.Snapshot.CPUs.Possible) {
		return usageError("pin: CPUs %s do not all exist (possible CPUs: %s)", pin, st.Snapshot.CPUs.Possible)
	}
	target := pin.Intersect(st.Allowed)
	if target.IsEmpty() {
		return usageError("pin: none of CPUs %s is online and allowed (allowed: %s)", pin, st.Allowed)
	}
	plan := affinity.Plan{Moves: []affinity.Move{{IRQ: irq.IRQ, From: irq.Where(), To: target, Reason: "pin " + pin.String()}}, Skipped: []affinity.Skip{}}
	results := o.engine.Applier(st, sysfs.CPUSet{}).Apply(c.Context, plan, st.IRQs)
	if r := results[0]; r.Status != affinity.StatusMoved && r.Status != affinity.StatusPending {
		return fmt.Errorf("pin IRQ %d: %s: %s", irq.IRQ, r.Status, r.Reason)
	}
	o.engine.Planner.Pins[affinity.Key(irq)] = affinity.Pin{IRQ: irq.IRQ, CPUs: pin}
	if o.json {
		return writeJSON(o.stdout, applyJSON{Moves: plan.Moves, Skipped: plan.Skipped, Results: results})
	}
	return writeResultsTable(o.stdout, st, plan, results)
}

// cmdUnpin forgets a pin. The IRQ's current mask is marked as not the
// admin's, so the next snapshot does not learn it again.
func cmdUnpin(c *cli.Context, o *options) error {
	_, irq, err := o.loadNamedIRQ(c, 1, "give one IRQ number")
	if err != nil {
		return err
	}
	if !o.engine.Planner.Pins.Forget(irq.IRQ) {
		return usageError("IRQ %d has no pin", irq.IRQ)
	}
	o.engine.Written[affinity.Key(irq)] = irq.Affinity
	fmt.Fprintf(o.stdout, "IRQ %d unpinned; the next rebalance spreads it\n", irq.IRQ)
	return nil
}

// verdicts prints the --verify table (text mode) and returns the first
// error: failed moves, then IRQs firing where they should not.
func (o *options) verdicts(verified *verifyDoc, moveErr error) error {
	if verified == nil {
		return moveErr
	}
	if !o.json {
		fmt.Fprintln(o.stdout)
		if err := writeVerifyTable(o.stdout, *verified); err != nil {
			return err
		}
	}
	if moveErr != nil {
		return moveErr
	}
	return badChecks(verified.IRQs)
}
