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
	"github.com/irqshift/irqshift/ebpf"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
)

// newSampler is eBPF with the /proc/interrupts fallback; the notice goes
// to stderr as one line.
func newSampler(fs sysfs.FS, stderr io.Writer) *affinity.FallbackSampler {
	if !fs.IsLive() {
		// eBPF counts the running kernel's IRQs, which are not a fixture
		// tree's: read the tree's /proc/interrupts only.
		proc := sysfs.ProcSampler{FS: fs}
		return &affinity.FallbackSampler{Primary: proc, Fallback: proc, Coarse: true}
	}
	return &affinity.FallbackSampler{
		Primary:  ebpf.Sampler{},
		Fallback: sysfs.ProcSampler{FS: fs},
		Notice:   func(reason string) { fmt.Fprintf(stderr, "irqshift: %s\n", reason) },
	}
}

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
			if c.Duration("duration") <= 0 {
				return usageError("verify: --duration must be positive")
			}
			if c.NArg() > 0 {
				return usageError("verify takes no arguments; name IRQs with --irq N")
			}
			report, err := ops.List(c.Context, o.env)
			if err != nil {
				return err
			}
			st := report.State
			want, err := verifyTargets(st, c.IntSlice("irq"), c.Bool("all"))
			if err != nil {
				return err
			}
			sampler := newSampler(o.fs, o.stderr)
			doc, err := runVerify(c, sampler, want, st.Snapshot.CPUs.Online, c.Duration("duration"))
			if err != nil {
				return err
			}
			if o.json {
				err = writeJSON(o.stdout, doc)
			} else {
				err = writeVerifyTable(o.stdout, doc)
			}
			if err != nil {
				return err
			}
			return badChecks(doc.IRQs)
		}),
	}
}

// verifyTargets picks the IRQs to check: those named, or every IRQ but the
// per-CPU ones (unless all).
func verifyTargets(st *affinity.State, only []int, all bool) ([]affinity.Expectation, error) {
	byNumber := make(map[int]affinity.IRQ, len(st.IRQs))
	for _, irq := range st.IRQs {
		byNumber[irq.IRQ] = irq
	}
	var picked []affinity.IRQ
	if len(only) > 0 {
		for _, n := range only {
			irq, ok := byNumber[n]
			if !ok {
				return nil, usageError("verify: IRQ %d is not in /proc/interrupts", n)
			}
			picked = append(picked, irq)
		}
	} else {
		for _, irq := range st.IRQs {
			if irq.Class != affinity.ClassPerCPU || all {
				picked = append(picked, irq)
			}
		}
	}
	want := make([]affinity.Expectation, 0, len(picked))
	for _, irq := range picked {
		expected := irq.Where()
		if irq.Class == affinity.ClassPerCPU {
			expected = st.Snapshot.CPUs.Online // one per CPU: anywhere is right
		}
		want = append(want, affinity.Expectation{IRQ: irq.IRQ, Actions: irq.Actions, Expected: expected})
	}
	return want, nil
}

func runVerify(c *cli.Context, sampler *affinity.FallbackSampler, want []affinity.Expectation, online sysfs.CPUSet, window time.Duration) (verifyDoc, error) {
	checks, err := affinity.Verify(c.Context, sampler, want, online, window)
	if err != nil {
		return verifyDoc{}, fmt.Errorf("verify: %w", err)
	}
	return verifyDoc{Method: sampler.Method(), Coarse: sampler.Coarse, DurationSeconds: window.Seconds(), IRQs: checks}, nil
}

func badChecks(checks []affinity.Check) error {
	var bad []string
	for _, ch := range checks {
		if ch.Bad() {
			bad = append(bad, fmt.Sprintf("%d (%s)", ch.IRQ, ch.Verdict))
		}
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
func (o *options) confirmMoves(c *cli.Context, results []affinity.Result, irqs []affinity.IRQ) (*verifyDoc, error) {
	if !c.Bool("verify") {
		return nil, nil
	}
	online, err := o.fs.OnlineCPUs()
	if err != nil {
		return nil, err
	}
	doc, err := runVerify(c, newSampler(o.fs, o.stderr), affinity.ExpectAfter(results, irqs), online, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &doc, nil
}
