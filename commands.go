package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
)

// Each command turns its flags into a request, calls one operation and
// renders the report; the operations are in package ops.

// defaultSample is how long list, rebalance, drain and offline measure
// interrupt rates by default: a second gives a busy IRQ (tens to
// thousands a second) a rate, and is short beside the commands' own work.
const defaultSample = time.Second

// sample returns --sample (IRQSHIFT_SAMPLE), refusing a bad or negative
// window. On a fixture tree (--proc/--sys elsewhere than the live system)
// the counts never change, so unless set it is 0 there.
func (o *options) sample(c *cli.Context) (time.Duration, error) {
	text, origin := o.resolver.get(settingSample)
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || d < 0 {
		return 0, usageError("%s: %s is not a duration such as 1s (0 counts only)", originName(origin, settingSample), quote.Quote(text))
	}
	if origin == "" && !o.fs.IsLive() {
		return 0, nil
	}
	return d, nil
}

func cmdRebalance(c *cli.Context, o *options) error {
	window, err := o.sample(c)
	if err != nil {
		return err
	}
	report, err := ops.Rebalance(c.Context, o.env, ops.RebalanceRequest{DryRun: o.dryRun, Sample: window})
	return o.renderApply(c, report, err)
}

func cmdDrain(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	window, err := o.sample(c)
	if err != nil {
		return err
	}
	report, err := ops.Drain(c.Context, o.env, ops.DrainRequest{CPUs: cpus, DryRun: o.dryRun, Sample: window})
	return o.renderApply(c, report, err)
}

func cmdUndrain(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	report, err := ops.Undrain(c.Context, o.env, ops.UndrainRequest{CPUs: cpus, DryRun: o.dryRun})
	return o.renderApply(c, report, err)
}

// renderApply prints the report of a planning operation (also when it
// failed part way, so the operator sees what was done), confirms the moves
// with --verify, and returns the operation's error first.
func (o *options) renderApply(c *cli.Context, report *ops.ApplyReport, opErr error) error {
	if report == nil {
		return opErr
	}
	if report.DryRun {
		if o.json {
			return writeJSON(o.stdout, planJSON(report))
		}
		return writePlanTable(o.stdout, report)
	}
	var verified *ops.VerifyReport
	if opErr == nil {
		var err error
		if verified, err = o.confirmMoves(c, report.Results, report.State.IRQs); err != nil {
			return err
		}
	}
	if o.json {
		if err := writeJSON(o.stdout, applyDoc(report, verified)); err != nil {
			return err
		}
	} else if err := writeResultsTable(o.stdout, report); err != nil {
		return err
	}
	if opErr != nil {
		return opErr
	}
	return o.verdicts(verified)
}

func cmdOffline(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	window, err := o.sample(c)
	if err != nil {
		return err
	}
	report, opErr := ops.Offline(c.Context, o.env, ops.OfflineRequest{CPUs: cpus, Sample: window})
	if report == nil {
		return opErr
	}
	var verified *ops.VerifyReport
	if opErr == nil && report.After != nil {
		results := append(append([]affinity.Result{}, report.Drain.Results...), report.Rebalanced...)
		if verified, err = o.confirmMoves(c, results, report.After.IRQs); err != nil {
			return err
		}
	}
	if o.json {
		if err := writeJSON(o.stdout, offlineDoc(report, verified)); err != nil {
			return err
		}
	} else if err := writeOfflineTable(o.stdout, report); err != nil {
		return err
	}
	if opErr != nil {
		return opErr
	}
	return o.verdicts(verified)
}

func cmdOnline(c *cli.Context, o *options) error {
	cpus, err := parseCPUArgs(c)
	if err != nil {
		return err
	}
	report, err := ops.Online(c.Context, o.env, ops.OnlineRequest{CPUs: cpus})
	if report == nil || report.Rebalance.State == nil {
		return err
	}
	if !report.Undrained.IsEmpty() && !o.json {
		fmt.Fprintf(o.stdout, "%s no longer drained\n", affinity.CPUNoun(report.Undrained))
	}
	return o.renderApply(c, &report.Rebalance, err)
}

// parseIRQArg reads an IRQ number argument.
func parseIRQArg(arg string) (int, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 {
		return 0, usageError("%s is not an IRQ number", quote.Quote(arg))
	}
	return n, nil
}

// cmdPin writes an admin pin and records it, so that irqshift restores it
// when the kernel breaks it on CPU offline.
func cmdPin(c *cli.Context, o *options) error {
	if c.NArg() != 2 {
		return usageError("pin: give an IRQ and a CPU list, as in: irqshift pin 13 2-3")
	}
	irq, err := parseIRQArg(c.Args().Get(0))
	if err != nil {
		return err
	}
	cpus, err := sysfs.ParseCPUList(c.Args().Get(1))
	if err != nil || cpus.IsEmpty() {
		return usageError("pin: %s is not a CPU list", quote.Quote(c.Args().Get(1)))
	}
	report, err := ops.Pin(c.Context, o.env, ops.PinRequest{IRQ: irq, CPUs: cpus, Persist: c.Bool("persist")})
	if err := o.renderApply(c, report, err); err != nil {
		return err
	}
	if report.Persisted != nil && !o.json {
		fmt.Fprintf(o.stdout, "kept across reboots as rule %s in %s\n", report.Persisted.Name, report.Persisted.File)
	}
	return nil
}

// cmdUnpin forgets a pin.
func cmdUnpin(c *cli.Context, o *options) error {
	if c.NArg() != 1 {
		return usageError("unpin: give one IRQ number")
	}
	irq, err := parseIRQArg(c.Args().Get(0))
	if err != nil {
		return err
	}
	report, err := ops.Unpin(c.Context, o.env, ops.UnpinRequest{IRQ: irq, Persist: c.Bool("persist")})
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.stdout, unpinDoc(report))
	}
	if report.Persisted != nil {
		fmt.Fprintf(o.stdout, "IRQ %d: rule %s removed from %s\n", report.IRQ, report.Persisted.Name, report.Persisted.File)
		if report.NoPin {
			return nil
		}
	}
	if report.Vanished {
		fmt.Fprintf(o.stdout, "IRQ %d unpinned (was %s); it no longer exists, so nothing else changed\n", report.IRQ, report.Pin.CPUs)
		return nil
	}
	fmt.Fprintf(o.stdout, "IRQ %d unpinned (was %s); the next rebalance spreads it\n", report.IRQ, report.Pin.CPUs)
	return nil
}

// verdicts prints the --verify table (text mode) and returns an error when
// an IRQ fires where it should not.
func (o *options) verdicts(verified *ops.VerifyReport) error {
	if verified == nil {
		return nil
	}
	if !o.json {
		fmt.Fprintln(o.stdout)
		if err := writeVerifyTable(o.stdout, verifyDocOf(verified)); err != nil {
			return err
		}
	}
	return badChecks(verified)
}
