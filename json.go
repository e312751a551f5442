package main

import (
	"math"
	"strconv"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
)

// The JSON documents, all of them: this file is the contract the README
// documents. Add fields, never rename them.

type cpusJSON struct {
	Online   sysfs.CPUSet `json:"online"`
	Possible sysfs.CPUSet `json:"possible"`
	Allowed  sysfs.CPUSet `json:"allowed"`
	Banned   sysfs.CPUSet `json:"banned"`
	// BannedBy names, per banned CPU, where its ban comes from: sources
	// of affinity.BanSources, in its order.
	BannedBy map[string][]affinity.BanSource `json:"banned_by"`
	// Drained are the CPUs drained by `drain` or `offline`, and why.
	Drained sysfs.CPUSet      `json:"drained"`
	DrainBy map[string]string `json:"drained_by"`
	// Nodes maps each NUMA node with CPUs to its CPUs.
	Nodes map[string]sysfs.CPUSet `json:"nodes"`
}

type irqJSON struct {
	IRQ     int               `json:"irq"`
	Chip    string            `json:"chip"`
	HWIRQ   *uint64           `json:"hwirq"`
	Trigger string            `json:"trigger"`
	Actions []string          `json:"actions"`
	Counts  map[string]uint64 `json:"counts"`
	Total   uint64            `json:"total"`
	// Rate is interrupts per second over --sample, null with --sample 0.
	Rate      *float64       `json:"rate"`
	Affinity  sysfs.CPUSet   `json:"affinity"`
	Effective sysfs.CPUSet   `json:"effective"`
	Class     affinity.Class `json:"class"`
	Movable   bool           `json:"movable"`
	Reason    string         `json:"reason"`
	// Node is the NUMA node of the IRQ's device, -1 when unknown.
	Node int `json:"node"`
	// Pin is the admin's mask irqshift keeps for this IRQ, or null.
	Pin *sysfs.CPUSet `json:"pin"`
	// Device and Driver are the IRQ's device as /sys shows it ("" when
	// unknown) and its bound driver ("" when none); Rule is the device
	// rule that matched it ("" for none).
	Device string `json:"device"`
	Driver string `json:"driver"`
	Rule   string `json:"rule"`
}

// listDoc is `list --json`.
type listDoc struct {
	// Version is the irqshift that printed it.
	Version string   `json:"version"`
	CPUs    cpusJSON `json:"cpus"`
	// MovablePerCPU counts the movable IRQs on each online CPU, of all
	// IRQs whatever the filter.
	MovablePerCPU map[string]int `json:"movable_per_cpu"`
	// IRQs are those the filter chose (all without one).
	IRQs []irqJSON `json:"irqs"`
}

// planDoc is the --dry-run document.
type planDoc struct {
	// Version is the irqshift that printed it.
	Version string          `json:"version"`
	Moves   []planMoveJSON  `json:"moves"`
	Skipped []affinity.Skip `json:"skipped"`
	// MovablePerCPUBefore and MovablePerCPUAfter count the movable IRQs
	// on each online CPU now and once the plan is written (each moved
	// IRQ on the first CPU of its new mask).
	MovablePerCPUBefore map[string]int `json:"movable_per_cpu_before"`
	MovablePerCPUAfter  map[string]int `json:"movable_per_cpu_after"`
	// Rates are the interrupt rates the plan was made with (--sample),
	// by IRQ, for the IRQs that fired; absent without a sample.
	Rates map[string]float64 `json:"rates,omitempty"`
}

// planMoveJSON is a planned write: affinity.Move's fields (from and to
// are CPUs: where it fires, and the new mask) with the mask it replaces
// and the kind of its cause.
type planMoveJSON struct {
	affinity.Move
	MaskBefore sysfs.CPUSet       `json:"mask_before"`
	Cause      affinity.CauseKind `json:"cause"`
	Why        string             `json:"why"`
}

// applyJSON is what rebalance, drain, undrain, online and pin print.
type applyJSON struct {
	Moves   []affinity.Move   `json:"moves"`
	Skipped []affinity.Skip   `json:"skipped"`
	Results []affinity.Result `json:"results"`
	Summary affinity.Summary  `json:"summary"`
	// Verify is present with --verify.
	Verify *verifyDoc `json:"verify,omitempty"`
	// Persisted is present after pin --persist: the rule it wrote.
	Persisted *persistedJSON `json:"persisted,omitempty"`
	// Rates are the interrupt rates the plan was made with (--sample),
	// by IRQ, for the IRQs that fired; absent without a sample.
	Rates map[string]float64 `json:"rates,omitempty"`
}

// persistedJSON names the rule pin --persist wrote and its file.
type persistedJSON struct {
	Rule string `json:"rule"`
	File string `json:"file"`
}

// unpinJSON is what unpin --json prints.
type unpinJSON struct {
	IRQ int `json:"irq"`
	// Pin is the mask the pin kept, null when there was none (only a
	// rule of pin --persist went).
	Pin *sysfs.CPUSet `json:"pin"`
	// Vanished is true when the IRQ no longer exists: only its pin went.
	Vanished bool `json:"vanished"`
	// Persisted names the rule unpin --persist removed, and its file.
	Persisted *persistedJSON `json:"persisted,omitempty"`
}

func unpinDoc(r *ops.UnpinReport) unpinJSON {
	doc := unpinJSON{IRQ: r.IRQ, Vanished: r.Vanished}
	if !r.NoPin {
		doc.Pin = &r.Pin.CPUs
	}
	if r.Persisted != nil {
		doc.Persisted = &persistedJSON{Rule: r.Persisted.Name, File: r.Persisted.File}
	}
	return doc
}

// offlineJSON is what offline prints.
type offlineJSON struct {
	CPUs sysfs.CPUSet `json:"cpus"`
	// Offlined are the CPUs taken offline: all of CPUs unless the drain
	// left IRQs behind or the command was interrupted.
	Offlined sysfs.CPUSet      `json:"offlined"`
	Moves    []affinity.Move   `json:"moves"`
	Skipped  []affinity.Skip   `json:"skipped"`
	Results  []affinity.Result `json:"results"`
	Summary  affinity.Summary  `json:"summary"`
	// LeftBehind lists movable IRQs still effective on the CPUs: empty
	// unless something went wrong.
	LeftBehind []int `json:"left_behind"`
	// Rebalanced are the moves of the rebalance run once the CPUs are
	// offline, to even out what drivers' own hotplug callbacks changed.
	Rebalanced []affinity.Result `json:"rebalanced"`
	// Verify is present with --verify.
	Verify *verifyDoc `json:"verify,omitempty"`
}

// verifyDocOf is the document of a verify report.
func verifyDocOf(r *ops.VerifyReport) verifyDoc {
	return verifyDoc{Method: r.Method, Coarse: r.Coarse, DurationSeconds: r.Duration.Seconds(), IRQs: r.Checks}
}

// verifyDocPtr is the "verify" member of an apply document: absent
// without --verify.
func verifyDocPtr(r *ops.VerifyReport) *verifyDoc {
	if r == nil {
		return nil
	}
	doc := verifyDocOf(r)
	return &doc
}

// verifyDoc is what `verify --json` prints, and the "verify" member of the
// apply documents when --verify is given.
type verifyDoc struct {
	// Method is "ebpf" or "proc-interrupts".
	Method string `json:"method"`
	// Coarse is true when eBPF was unavailable and /proc/interrupts deltas
	// were used instead.
	Coarse          bool             `json:"coarse"`
	DurationSeconds float64          `json:"duration_seconds"`
	IRQs            []affinity.Check `json:"irqs"`
}

func listJSON(report *ops.ListReport) listDoc {
	st := report.State
	doc := listDoc{
		CPUs: cpusJSON{
			Online:   st.Snapshot.CPUs.Online,
			Possible: st.Snapshot.CPUs.Possible,
			Allowed:  st.Allowed,
			Banned:   st.Banned,
			BannedBy: map[string][]affinity.BanSource{},
			Drained:  report.Drained.CPUs(),
			DrainBy:  map[string]string{},
			Nodes:    map[string]sysfs.CPUSet{},
		},
		Version:       version,
		MovablePerCPU: perCPUJSON(report.MovablePerCPU),
		IRQs:          make([]irqJSON, 0, len(report.Shown)),
	}
	for node, cpus := range affinity.NodeCPUs(st.Snapshot.CPUs) {
		doc.CPUs.Nodes[strconv.Itoa(node)] = cpus
	}
	for cpu, by := range st.BannedBy {
		doc.CPUs.BannedBy[strconv.Itoa(cpu)] = by
	}
	for cpu, by := range report.Drained {
		doc.CPUs.DrainBy[strconv.Itoa(cpu)] = string(by)
	}
	for _, irq := range report.Shown {
		j := irqJSON{
			IRQ:       irq.IRQ,
			Chip:      irq.Chip,
			Trigger:   irq.Trigger,
			Actions:   irq.Actions,
			Counts:    make(map[string]uint64, len(irq.Counts)),
			Total:     irq.Total,
			Rate:      rateJSON(report.Sampled, irq.Rate),
			Affinity:  irq.Affinity,
			Effective: irq.Effective,
			Class:     irq.Class,
			Movable:   irq.Movable(),
			Reason:    irq.Reason,
			Node:      irq.Node,
			Device:    irq.Device,
			Driver:    irq.Driver,
			Rule:      irq.Rule,
		}
		if irq.HasHWIRQ {
			hw := irq.HWIRQ
			j.HWIRQ = &hw
		}
		if pin, ok := report.Pins[affinity.Key(irq)]; ok {
			j.Pin = &pin.CPUs
		}
		for i, n := range irq.Counts {
			j.Counts[strconv.Itoa(irq.CPUs[i])] = n
		}
		doc.IRQs = append(doc.IRQs, j)
	}
	return doc
}

// perCPUJSON keys counts per CPU by the CPU's number as text.
func perCPUJSON(counts map[int]int) map[string]int {
	out := make(map[string]int, len(counts))
	for cpu, n := range counts {
		out[strconv.Itoa(cpu)] = n
	}
	return out
}

func planJSON(report *ops.ApplyReport) planDoc {
	st := report.State
	online := st.Snapshot.CPUs.Online
	doc := planDoc{
		Version:             version,
		Moves:               make([]planMoveJSON, 0, len(report.Plan.Moves)),
		Skipped:             report.Plan.Skipped,
		MovablePerCPUBefore: perCPUJSON(affinity.MovablePerCPU(st.IRQs, online)),
		MovablePerCPUAfter:  perCPUJSON(affinity.MovablePerCPU(affinity.AfterPlan(st.IRQs, report.Plan), online)),
		Rates:               ratesOf(st),
	}
	before := make(map[int]affinity.IRQ, len(st.IRQs))
	for _, irq := range st.IRQs {
		before[irq.IRQ] = irq
	}
	for _, m := range report.Plan.Moves {
		kind, why := st.Explain(m, before[m.IRQ])
		doc.Moves = append(doc.Moves, planMoveJSON{Move: m, MaskBefore: before[m.IRQ].Affinity, Cause: kind, Why: why})
	}
	return doc
}

func applyDoc(report *ops.ApplyReport, verified *ops.VerifyReport) applyJSON {
	doc := applyJSON{
		Moves:   report.Plan.Moves,
		Skipped: report.Plan.Skipped,
		Results: nonNil(report.Results),
		Summary: report.Summary(),
		Verify:  verifyDocPtr(verified),
		Rates:   ratesOf(report.State),
	}
	if r := report.Persisted; r != nil {
		doc.Persisted = &persistedJSON{Rule: r.Name, File: r.File}
	}
	return doc
}

func offlineDoc(report *ops.OfflineReport, verified *ops.VerifyReport) offlineJSON {
	return offlineJSON{
		CPUs:       report.CPUs,
		Offlined:   report.Offlined,
		Moves:      report.Drain.Plan.Moves,
		Skipped:    report.Drain.Plan.Skipped,
		Results:    nonNil(report.Drain.Results),
		Summary:    report.Drain.Summary(),
		LeftBehind: report.LeftBehind,
		Rebalanced: nonNil(report.Rebalanced),
		Verify:     verifyDocPtr(verified),
	}
}

func nonNil(results []affinity.Result) []affinity.Result {
	if results == nil {
		return []affinity.Result{}
	}
	return results
}

// ratesOf returns the rates of st's IRQs that fired, rounded to a
// hundredth, by IRQ; nil when none did (no sample).
func ratesOf(st *affinity.State) map[string]float64 {
	var rates map[string]float64
	for _, irq := range st.IRQs {
		if irq.Rate > 0 {
			if rates == nil {
				rates = map[string]float64{}
			}
			rates[strconv.Itoa(irq.IRQ)] = math.Round(irq.Rate*100) / 100
		}
	}
	return rates
}

// rateJSON is an IRQ's rate rounded to a hundredth, or null when no window
// was sampled.
func rateJSON(window time.Duration, rate float64) *float64 {
	if window <= 0 {
		return nil
	}
	r := math.Round(rate*100) / 100
	return &r
}
