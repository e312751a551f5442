package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ops"
)

func verifyCommand(stdout, stderr io.Writer, getenv func(string) string) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "prove with eBPF where IRQs really fire: sample, then compare with their effective affinity",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 2 * time.Second, Usage: "how long to sample"},
			&cli.IntSliceFlag{Name: "irq", Usage: "check only this IRQ (repeatable)"},
			&cli.BoolFlag{Name: "all", Usage: "also check per-CPU IRQs (timers, PMU)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: withOptions(stdout, stderr, getenv, false, func(c *cli.Context, o *options) error {
			if c.NArg() > 0 {
				return usageError("verify takes no arguments; name IRQs with --irq N")
			}
			report, err := ops.Verify(c.Context, o.env, ops.VerifyRequest{IRQs: c.IntSlice("irq"), All: c.Bool("all"),
				Duration: c.Duration("duration"), Notice: o.notice})
			if err != nil {
				return err
			}
			doc := verifyDocOf(report)
			if o.json {
				err = writeJSON(o.stdout, doc)
			} else {
				err = writeVerifyTable(o.stdout, doc)
			}
			if err != nil {
				return err
			}
			return badChecks(report)
		}),
	}
}

// notice prints, in one line, why moves are confirmed more coarsely than
// with eBPF.
func (o *options) notice(reason string) { fmt.Fprintf(o.stderr, "irqshift: %s\n", reason) }

// badChecks is exit 3 when an IRQ fires where it should not.
func badChecks(report *ops.VerifyReport) error {
	var bad []string
	for _, ch := range report.Bad() {
		bad = append(bad, fmt.Sprintf("%d (%s)", ch.IRQ, ch.Verdict))
	}
	if len(bad) == 0 {
		return nil
	}
	return exitCoder{code: exitUnmovable, err: fmt.Errorf("IRQs fire where they should not: %s", strings.Join(bad, ", "))}
}

func writeVerifyTable(w io.Writer, doc verifyDoc) error {
	how := "eBPF (irq/irq_handler_entry)"
	if doc.Coarse || doc.Method != "ebpf" {
		how = "/proc/interrupts count deltas (coarser)"
	}
	fmt.Fprintf(w, "where IRQs fired over %gs, counted with %s\n", doc.DurationSeconds, how)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tACTIONS\tEXPECTED\tFIRED ON (CPU:COUNT)\tVERDICT")
	for _, ch := range doc.IRQs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", ch.IRQ, actionsText(ch.Actions), cpuText(ch.Expected), firedText(ch.Fired), ch.Verdict)
	}
	return tw.Flush()
}

func firedText(fired map[string]uint64) string {
	if len(fired) == 0 {
		return "-"
	}
	cpus := make([]int, 0, len(fired))
	for k := range fired {
		var n int
		fmt.Sscan(k, &n)
		cpus = append(cpus, n)
	}
	slices.Sort(cpus)
	parts := make([]string, 0, len(cpus))
	for _, cpu := range cpus {
		parts = append(parts, fmt.Sprintf("%d:%d", cpu, fired[fmt.Sprint(cpu)]))
	}
	return strings.Join(parts, " ")
}

// confirmMoves runs the --verify check after an apply: each moved IRQ that
// fires during the window must fire on its new CPUs.
func (o *options) confirmMoves(c *cli.Context, results []affinity.Result, irqs []affinity.IRQ) (*ops.VerifyReport, error) {
	if !c.Bool("verify") {
		return nil, nil
	}
	return ops.Confirm(c.Context, o.env, results, irqs, o.notice)
}
