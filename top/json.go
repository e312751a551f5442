package top

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// The `top --json` document, one per frame and line: docs/COMMANDS.md
// describes it. Add fields, never rename them.

type frameJSON struct {
	Time          time.Time `json:"time"`
	WindowSeconds float64   `json:"window_seconds"`
	// Method is MethodProcInterrupts or MethodEBPF.
	Method string    `json:"method"`
	Rate   float64   `json:"rate"`
	CPUs   []cpuJSON `json:"cpus"`
	IRQs   []irqJSON `json:"irqs"`
}

type cpuJSON struct {
	CPU int `json:"cpu"`
	// Node is the CPU's NUMA node, -1 when it has none.
	Node     int                  `json:"node"`
	Online   bool                 `json:"online"`
	Rate     float64              `json:"rate"`
	BannedBy []affinity.BanSource `json:"banned_by"`
	Isolated bool                 `json:"isolated"`
	// DrainedBy is "drain" or "offline", null when the CPU is not drained.
	DrainedBy *affinity.DrainSource `json:"drained_by"`
}

type irqJSON struct {
	IRQ  int     `json:"irq"`
	Rate float64 `json:"rate"`
	// Rates is the rate on each CPU the IRQ fired on, by CPU number.
	Rates map[string]float64 `json:"rates"`
	// Effective is the effective affinity, or the mask where the kernel
	// gives none.
	Effective sysfs.CPUSet   `json:"effective"`
	Node      int            `json:"node"`
	Class     affinity.Class `json:"class"`
	Pin       *sysfs.CPUSet  `json:"pin"`
	// Rule is the rule that placed the IRQ: null until rules exist.
	Rule    *string  `json:"rule"`
	Chip    string   `json:"chip"`
	Actions []string `json:"actions"`
}

// WriteJSON writes f as one line of JSON: every CPU and every IRQ, silent
// ones included, each by number.
func WriteJSON(w io.Writer, f Frame) error {
	doc := frameJSON{Time: f.Taken, WindowSeconds: f.Window.Seconds(), Method: f.Method, Rate: round(f.Rate),
		CPUs: []cpuJSON{}, IRQs: make([]irqJSON, 0, len(f.IRQs))}
	for _, n := range f.Nodes {
		for _, c := range n.CPUs {
			out := cpuJSON{CPU: c.CPU, Node: c.Node, Online: c.Online, Rate: round(c.Rate),
				BannedBy: c.BannedBy, Isolated: c.Isolated}
			if out.BannedBy == nil {
				out.BannedBy = []affinity.BanSource{}
			}
			if c.DrainedBy != "" {
				by := c.DrainedBy
				out.DrainedBy = &by
			}
			doc.CPUs = append(doc.CPUs, out)
		}
	}
	for _, q := range f.IRQs {
		out := irqJSON{IRQ: q.IRQ, Rate: round(q.Rate), Rates: map[string]float64{}, Effective: q.Where, Node: q.Node,
			Class: q.Class, Pin: q.Pin, Chip: q.Chip, Actions: q.Actions}
		for cpu, r := range q.PerCPU {
			out.Rates[strconv.Itoa(cpu)] = round(r)
		}
		if q.Rule != "" {
			rule := q.Rule
			out.Rule = &rule
		}
		if out.Actions == nil {
			out.Actions = []string{}
		}
		doc.IRQs = append(doc.IRQs, out)
	}
	slices.SortFunc(doc.CPUs, func(a, b cpuJSON) int { return a.CPU - b.CPU })
	return json.NewEncoder(w).Encode(doc)
}

// round keeps two decimals of a rate: more is noise, and a reader of the
// JSON need not see 33.333333333333336.
func round(r float64) float64 { return math.Round(r*100) / 100 }
