package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cpuText prints a CPU set for tables, "-" when empty.
func cpuText(s sysfs.CPUSet) string {
	if s.IsEmpty() {
		return "-"
	}
	return s.String()
}

func actionsText(actions []string) string {
	if len(actions) == 0 {
		return "-"
	}
	return quote.Printable(strings.Join(actions, ","))
}

// dash shows an empty field as "-", and a field the kernel or a driver
// named with its control characters escaped (quote.Printable).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return quote.Printable(s)
}

func irqActions(st *affinity.State) map[int]string {
	out := make(map[int]string, len(st.IRQs))
	for _, irq := range st.IRQs {
		out[irq.IRQ] = actionsText(irq.Actions)
	}
	return out
}

func writeSkipped(w io.Writer, skipped []affinity.Skip, actions map[int]string) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "\nleft alone (%d):\n", len(skipped))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range skipped {
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", s.IRQ, actions[s.IRQ], dash(s.Reason))
	}
	tw.Flush()
}

// writePlanTable prints a dry run as a diff: each planned write's mask and
// CPU before and after, and why; then the movable IRQs per CPU before and
// after.
func writePlanTable(w io.Writer, report *ops.ApplyReport) error {
	st, plan := report.State, report.Plan
	actions := irqActions(st)
	before := make(map[int]affinity.IRQ, len(st.IRQs))
	for _, irq := range st.IRQs {
		before[irq.IRQ] = irq
	}
	narrow := 0
	for _, m := range plan.Moves {
		if m.Narrow {
			narrow++
		}
	}
	writeWrapped(w, fmt.Sprintf("plan: %s over allowed CPUs %s, %d of them narrowing a mask in place (dry run, nothing written)",
		plural(len(plan.Moves), "write"), cpuText(st.Allowed), narrow))
	rows := [][]string{{"IRQ", "ACTIONS", "MASK", "CPU", "WHY"}}
	for _, m := range plan.Moves {
		irq := before[m.IRQ]
		kind, why := st.Explain(m, irq)
		rows = append(rows, []string{strconv.Itoa(m.IRQ), actions[m.IRQ], cpuText(irq.Affinity) + " → " + cpuText(m.To),
			cpuText(m.From) + " → " + strconv.Itoa(m.To.First()), string(kind) + ": " + quote.Printable(why)})
	}
	if len(plan.Moves) > 0 {
		if err := writeColumns(w, rows); err != nil {
			return err
		}
	}
	writeSkipped(w, plan.Skipped, actions)
	online := st.Snapshot.CPUs.Online
	fmt.Fprintln(w)
	writeWrapped(w, "movable IRQs per CPU before: "+perCPUText(affinity.MovablePerCPU(st.IRQs, online), st.Allowed))
	writeWrapped(w, "movable IRQs per CPU after:  "+perCPUText(affinity.MovablePerCPU(affinity.AfterPlan(st.IRQs, plan), online), st.Allowed))
	return nil
}

// plural counts a noun: "1 write", "3 writes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func writeResultsTable(w io.Writer, report *ops.ApplyReport) error {
	if err := writeResults(w, report.State, report.Results, report.Summary()); err != nil {
		return err
	}
	writeSkipped(w, report.Plan.Skipped, irqActions(report.State))
	return nil
}

// writeResults prints the summary line and a row per write attempted.
func writeResults(w io.Writer, st *affinity.State, results []affinity.Result, sum affinity.Summary) error {
	actions := irqActions(st)
	fmt.Fprintf(w, "%d of %s done over allowed CPUs %s: %d moved, %d narrowed in place, %d pending",
		sum.Done, plural(sum.Planned, "planned write"), cpuText(st.Allowed), sum.Moved, sum.Narrowed, sum.Pending)
	if sum.Failed+sum.Unmovable+sum.Vanished > 0 {
		fmt.Fprintf(w, ", %d failed, %d refused (managed), %d vanished", sum.Failed, sum.Unmovable, sum.Vanished)
	}
	fmt.Fprintln(w)
	if sum.NotDone > 0 {
		fmt.Fprintf(w, "interrupted: %s not done\n", plural(sum.NotDone, "planned write"))
	}
	if len(results) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tACTIONS\tFROM\tTO\tEFFECTIVE\tSTATUS\tNOTE")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.IRQ, actions[r.IRQ], cpuText(r.From), cpuText(r.To),
			cpuText(r.Effective), r.Status, dash(r.Reason))
	}
	return tw.Flush()
}

func writeOfflineTable(w io.Writer, report *ops.OfflineReport) error {
	if err := writeResultsTable(w, &report.Drain); err != nil {
		return err
	}
	if len(report.Rebalanced) > 0 {
		fmt.Fprintf(w, "\nafter the offline, evening out what drivers changed:\n")
		if err := writeResults(w, report.After, report.Rebalanced, affinity.Summarize(len(report.Rebalanced), report.Rebalanced, 0)); err != nil {
			return err
		}
	}
	switch {
	case report.Offlined.IsEmpty():
		fmt.Fprintf(w, "\nCPU %s left online.\n", report.CPUs)
	case len(report.LeftBehind) == 0:
		fmt.Fprintf(w, "\nCPU %s offline; no movable IRQ is left on it.\n", report.Offlined)
	default:
		fmt.Fprintf(w, "\nCPU %s offline; movable IRQs still on it: %v\n", report.Offlined, report.LeftBehind)
	}
	return nil
}
