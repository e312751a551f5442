package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// The JSON documents. Field names are a stable interface, documented in
// the README; add fields, never rename them.

type cpusJSON struct {
	Online   sysfs.CPUSet `json:"online"`
	Possible sysfs.CPUSet `json:"possible"`
	Allowed  sysfs.CPUSet `json:"allowed"`
	Banned   sysfs.CPUSet `json:"banned"`
}

type irqJSON struct {
	IRQ       int               `json:"irq"`
	Chip      string            `json:"chip"`
	HWIRQ     *uint64           `json:"hwirq"`
	Trigger   string            `json:"trigger"`
	Actions   []string          `json:"actions"`
	Counts    map[string]uint64 `json:"counts"`
	Total     uint64            `json:"total"`
	Affinity  sysfs.CPUSet      `json:"affinity"`
	Effective sysfs.CPUSet      `json:"effective"`
	Class     affinity.Class    `json:"class"`
	Movable   bool              `json:"movable"`
	Reason    string            `json:"reason"`
	// Pin is the admin's mask irqshift keeps for this IRQ, or null.
	Pin *sysfs.CPUSet `json:"pin"`
}

type listDoc struct {
	CPUs cpusJSON  `json:"cpus"`
	IRQs []irqJSON `json:"irqs"`
}

type applyJSON struct {
	Moves   []affinity.Move   `json:"moves"`
	Skipped []affinity.Skip   `json:"skipped"`
	Results []affinity.Result `json:"results"`
	// Verify is present with --verify.
	Verify *verifyDoc `json:"verify,omitempty"`
}

type offlineJSON struct {
	CPUs    sysfs.CPUSet      `json:"cpus"`
	Moves   []affinity.Move   `json:"moves"`
	Skipped []affinity.Skip   `json:"skipped"`
	Results []affinity.Result `json:"results"`
	// LeftBehind lists movable IRQs still effective on the offlined CPUs:
	// empty unless something went wrong.
	LeftBehind []int `json:"left_behind"`
	// Rebalanced are the moves of the rebalance run once the CPUs are
	// offline, to even out what drivers' own hotplug callbacks changed.
	Rebalanced []affinity.Result `json:"rebalanced"`
	// Verify is present with --verify.
	Verify *verifyDoc `json:"verify,omitempty"`
}

func listJSON(st *affinity.State, pins affinity.Pins) listDoc {
	doc := listDoc{
		CPUs: cpusJSON{
			Online:   st.Snapshot.CPUs.Online,
			Possible: st.Snapshot.CPUs.Possible,
			Allowed:  st.Allowed,
			Banned:   st.Banned,
		},
		IRQs: make([]irqJSON, 0, len(st.IRQs)),
	}
	for _, irq := range st.IRQs {
		j := irqJSON{
			IRQ:       irq.IRQ,
			Chip:      irq.Chip,
			Trigger:   irq.Trigger,
			Actions:   irq.Actions,
			Counts:    make(map[string]uint64, len(irq.Counts)),
			Total:     irq.Total,
			Affinity:  irq.Affinity,
			Effective: irq.Effective,
			Class:     irq.Class,
			Movable:   irq.Movable(),
			Reason:    irq.Reason,
		}
		if irq.HasHWIRQ {
			hw := irq.HWIRQ
			j.HWIRQ = &hw
		}
		if pin, ok := pins[affinity.Key(irq)]; ok {
			j.Pin = &pin.CPUs
		}
		for i, n := range irq.Counts {
			j.Counts[strconv.Itoa(irq.CPUs[i])] = n
		}
		doc.IRQs = append(doc.IRQs, j)
	}
	return doc
}

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
	return strings.Join(actions, ",")
}

func writeListTable(w io.Writer, st *affinity.State, pins affinity.Pins) error {
	cpus := st.Snapshot.CPUs
	fmt.Fprintf(w, "CPUs online %s, allowed %s", cpuText(cpus.Online), cpuText(st.Allowed))
	if !st.Banned.IsEmpty() {
		fmt.Fprintf(w, ", banned %s", st.Banned)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tCHIP\tHWIRQ\tTRIGGER\tAFFINITY\tEFFECTIVE\tTOTAL\tCLASS\tACTIONS\tWHY NOT MOVABLE")
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
		if pin, ok := pins[affinity.Key(irq)]; ok {
			class += ",pin=" + pin.CPUs.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", irq.IRQ, irq.Chip, hw, dash(trigger),
			cpuText(irq.Affinity), cpuText(irq.Effective), irq.Total, class, actionsText(irq.Actions), dash(irq.Reason))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", s.IRQ, actions[s.IRQ], s.Reason)
	}
	tw.Flush()
}

func writePlanTable(w io.Writer, st *affinity.State, plan affinity.Plan) error {
	actions := irqActions(st)
	fmt.Fprintf(w, "plan: %d move(s) over allowed CPUs %s (dry run, nothing written)\n", len(plan.Moves), cpuText(st.Allowed))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tACTIONS\tFROM\tTO")
	for _, m := range plan.Moves {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.IRQ, actions[m.IRQ], cpuText(m.From), cpuText(m.To))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeSkipped(w, plan.Skipped, actions)
	return nil
}

func writeResultsTable(w io.Writer, st *affinity.State, plan affinity.Plan, results []affinity.Result) error {
	actions := irqActions(st)
	moved := 0
	for _, r := range results {
		if r.Status == affinity.StatusMoved || r.Status == affinity.StatusPending {
			moved++
		}
	}
	fmt.Fprintf(w, "%d of %d move(s) done over allowed CPUs %s\n", moved, len(results), cpuText(st.Allowed))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IRQ\tACTIONS\tFROM\tTO\tEFFECTIVE\tSTATUS\tNOTE")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.IRQ, actions[r.IRQ], cpuText(r.From), cpuText(r.To),
			cpuText(r.Effective), r.Status, dash(r.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeSkipped(w, plan.Skipped, actions)
	return nil
}

func writeOfflineTable(w io.Writer, st *affinity.State, report offlineJSON) error {
	if err := writeResultsTable(w, st, affinity.Plan{Skipped: report.Skipped}, report.Results); err != nil {
		return err
	}
	if len(report.Rebalanced) > 0 {
		fmt.Fprintf(w, "\nafter the offline, evening out what drivers changed:\n")
		if err := writeResultsTable(w, st, affinity.Plan{}, report.Rebalanced); err != nil {
			return err
		}
	}
	if len(report.LeftBehind) == 0 {
		fmt.Fprintf(w, "\nCPU %s offline; no movable IRQ is left on it.\n", report.CPUs)
	} else {
		fmt.Fprintf(w, "\nCPU %s offline; movable IRQs still on it: %v\n", report.CPUs, report.LeftBehind)
	}
	return nil
}
