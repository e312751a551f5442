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

func writeListTable(w io.Writer, report *ops.ListReport) error {
	st := report.State
	cpus := st.Snapshot.CPUs
	fmt.Fprintf(w, "CPUs online %s, allowed %s", cpuText(cpus.Online), cpuText(st.Allowed))
	if !st.Banned.IsEmpty() {
		var parts []string
		for _, cpu := range st.Banned.CPUs() {
			var by []string
			for _, source := range st.BannedBy[cpu] {
				by = append(by, string(source))
			}
			parts = append(parts, fmt.Sprintf("%d (%s)", cpu, strings.Join(by, ", ")))
		}
		fmt.Fprintf(w, ", banned %s: %s", st.Banned, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if drained := report.Drained.CPUs(); !drained.IsEmpty() {
		var parts []string
		for _, cpu := range drained.CPUs() {
			parts = append(parts, fmt.Sprintf("%d (%s)", cpu, report.Drained[cpu]))
		}
		fmt.Fprintf(w, "CPUs drained %s: %s; irqshift undrain gives them back\n", drained, strings.Join(parts, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tCHIP\tHWIRQ\tTRIGGER\tNODE\tAFFINITY\tEFFECTIVE\tTOTAL\tRATE/S\tCLASS\tACTIONS\tWHY NOT MOVABLE")
	for _, irq := range st.IRQs {
		hw := "-"
		if irq.HasHWIRQ {
			hw = strconv.FormatUint(irq.HWIRQ, 10)
		}
		trigger := irq.Trigger
		if trigger == "" {
			trigger = irq.Handler // x86 prints the flow handler instead
		}
		class := string(irq.Class)
		if pin, ok := report.Pins[affinity.Key(irq)]; ok {
			class += ",pin=" + pin.CPUs.String()
		}
		if irq.Rule != "" {
			class += ",rule=" + irq.Rule
		}
		node := "-"
		if irq.Node >= 0 {
			node = strconv.Itoa(irq.Node)
		}
		rate := "-"
		if report.Sampled > 0 {
			rate = strconv.FormatFloat(irq.Rate, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", irq.IRQ, dash(irq.Chip), hw, dash(trigger), node,
			cpuText(irq.Affinity), cpuText(irq.Effective), irq.Total, rate, class, actionsText(irq.Actions), dash(irq.Reason))
	}
	return tw.Flush()
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

func writePlanTable(w io.Writer, report *ops.ApplyReport) error {
	st, plan := report.State, report.Plan
	actions := irqActions(st)
	narrow := 0
	for _, m := range plan.Moves {
		if m.Narrow {
			narrow++
		}
	}
	fmt.Fprintf(w, "plan: %d write(s) over allowed CPUs %s, %d of them narrowing a mask in place (dry run, nothing written)\n",
		len(plan.Moves), cpuText(st.Allowed), narrow)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tACTIONS\tFROM\tTO\tWHY")
	for _, m := range plan.Moves {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.IRQ, actions[m.IRQ], cpuText(m.From), cpuText(m.To), dash(m.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeSkipped(w, plan.Skipped, actions)
	return nil
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
	fmt.Fprintf(w, "%d of %d planned write(s) done over allowed CPUs %s: %d moved, %d narrowed in place, %d pending",
		sum.Done, sum.Planned, cpuText(st.Allowed), sum.Moved, sum.Narrowed, sum.Pending)
	if sum.Failed+sum.Unmovable+sum.Vanished > 0 {
		fmt.Fprintf(w, ", %d failed, %d refused (managed), %d vanished", sum.Failed, sum.Unmovable, sum.Vanished)
	}
	fmt.Fprintln(w)
	if sum.NotDone > 0 {
		fmt.Fprintf(w, "interrupted: %d planned write(s) not done\n", sum.NotDone)
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
