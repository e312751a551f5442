package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// errMisplaced is status's exit 3: IRQs are on CPUs they should not be
// on. The report says which.
var errMisplaced = errors.New("")

func statusCommand(action cli.ActionFunc, jsonFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "whether the daemon runs and what it last did; bans, drains, pins, rules; misplaced IRQs",
		Description: "Reads what irqshift watch records beside the state file (its PID, last settle,\n" +
			"reaction times), the state, and a fresh snapshot; plans without writing to find\n" +
			"the IRQs on CPUs they should not be on. Exit 3 when there are some.",
		Flags:  []cli.Flag{jsonFlag},
		Action: action,
	}
}

func cmdStatus(c *cli.Context, o *options) error {
	report, err := ops.Status(c.Context, o.env, ops.StatusRequest{})
	if err != nil {
		return err
	}
	if o.json {
		err = writeJSON(o.stdout, statusJSON(report))
	} else {
		err = writeStatus(o.stdout, report, time.Now())
	}
	if err != nil {
		return err
	}
	if len(report.Misplaced) > 0 {
		return exitCoder{code: exitUnmovable, err: errMisplaced}
	}
	return nil
}

func writeStatus(w io.Writer, r *ops.StatusReport, now time.Time) error {
	d := r.Daemon
	switch {
	case !d.Known:
		writeWrapped(w, "daemon: unknown (no state file: --state none)")
	case !d.Running:
		writeWrapped(w, fmt.Sprintf("daemon: not running (no irqshift watch owns %s)", r.StatePath))
	case d.Status == nil:
		writeWrapped(w, fmt.Sprintf("daemon: running, PID %d, on %s; %s", d.PID, r.StatePath, d.StatusProblem))
	default:
		s := d.Status
		mode := ""
		if s.DryRun {
			mode = " (dry run)"
		}
		writeWrapped(w, fmt.Sprintf("daemon: running%s, PID %d, irqshift %s, up %s", mode, s.PID, s.Irqshift, ago(now, s.Started)))
		writeWrapped(w, "state: "+r.StatePath)
		if l := s.Last; l != nil {
			snapshot := "quick"
			if l.Full {
				snapshot = "full"
			}
			if l.ReactionMS > 0 {
				snapshot += fmt.Sprintf(", %.1f ms", l.ReactionMS)
			}
			writeWrapped(w, fmt.Sprintf("last settle %s ago (%s, %s): moved %d, narrowed %d, failed %d", ago(now, l.Time), l.Reason, snapshot,
				l.Moved, l.Narrowed, l.Failed))
		}
		if rs := s.Reaction; rs.Count > 0 {
			writeWrapped(w, fmt.Sprintf("reaction since start: %s, p50 %.1f ms, p90 %.1f ms, max %.1f ms",
				plural(rs.Count, "settle"), rs.P50MS, rs.P90MS, rs.MaxMS))
		}
	}
	st := r.State
	writeWrapped(w, fmt.Sprintf("CPUs: online %s, allowed %s", cpuText(st.Snapshot.CPUs.Online), cpuText(st.Allowed)))
	if !st.Banned.IsEmpty() {
		writeWrapped(w, "  banned "+bannedText(st))
	}
	if drained := r.Drained.CPUs(); !drained.IsEmpty() {
		var parts []string
		for _, cpu := range drained.CPUs() {
			parts = append(parts, fmt.Sprintf("%d (%s)", cpu, r.Drained[cpu]))
		}
		writeWrapped(w, "  drained "+strings.Join(parts, ", "))
	}
	writeWrapped(w, "movable IRQs per CPU: "+perCPUText(r.MovablePerCPU, st.Allowed))
	writeWrapped(w, "pins: "+pinsText(r.Pins))
	writeWrapped(w, "rules: "+rulesText(r))
	if len(r.Misplaced) == 0 {
		writeWrapped(w, "IRQs on CPUs they should not be on: none")
		return nil
	}
	writeWrapped(w, fmt.Sprintf("IRQs on CPUs they should not be on: %d (irqshift rebalance moves them; a running daemon, at its next settle)", len(r.Misplaced)))
	rows := [][]string{{"IRQ", "ACTIONS", "ON", "GOES TO", "WHY"}}
	for _, m := range r.Misplaced {
		rows = append(rows, []string{strconv.Itoa(m.IRQ.IRQ), actionsText(m.IRQ.Actions), cpuText(m.IRQ.Where()), cpuText(m.Move.To),
			string(m.Kind) + ": " + m.Why})
	}
	return writeColumns(w, rows)
}

// bannedText lists banned CPUs with their sources: "3 (ban-file), 5 (isolcpus)".
func bannedText(st *affinity.State) string {
	var parts []string
	for _, cpu := range st.Banned.CPUs() {
		var by []string
		for _, source := range st.BannedBy[cpu] {
			by = append(by, string(source))
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", cpu, strings.Join(by, ", ")))
	}
	return strings.Join(parts, ", ")
}

func pinsText(pins affinity.Pins) string {
	if len(pins) == 0 {
		return "none"
	}
	list := slices.SortedFunc(func(yield func(affinity.Pin) bool) {
		for _, p := range pins {
			if !yield(p) {
				return
			}
		}
	}, func(a, b affinity.Pin) int { return a.IRQ - b.IRQ })
	parts := make([]string, len(list))
	for i, p := range list {
		parts[i] = fmt.Sprintf("IRQ %d on %s", p.IRQ, p.CPUs)
	}
	return strings.Join(parts, ", ")
}

func rulesText(r *ops.StatusReport) string {
	if r.RulesDir == "" {
		return "none (no rules directory)"
	}
	if len(r.Rules) == 0 {
		return "none in " + r.RulesDir
	}
	parts := make([]string, len(r.Rules))
	for i, u := range r.Rules {
		parts[i] = fmt.Sprintf("%s (%s)", u.Rule.Name, plural(len(u.IRQs), "IRQ"))
	}
	return strings.Join(parts, ", ") + " in " + r.RulesDir
}

// ago says how long ago t was, to the second.
func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

// statusDoc is `irqshift status --json`.
type statusDoc struct {
	Version string     `json:"version"`
	State   string     `json:"state"`
	Daemon  daemonJSON `json:"daemon"`
	CPUs    struct {
		Online   sysfs.CPUSet                    `json:"online"`
		Allowed  sysfs.CPUSet                    `json:"allowed"`
		Banned   sysfs.CPUSet                    `json:"banned"`
		BannedBy map[string][]affinity.BanSource `json:"banned_by"`
		Drained  sysfs.CPUSet                    `json:"drained"`
		DrainBy  map[string]string               `json:"drained_by"`
	} `json:"cpus"`
	MovablePerCPU map[string]int  `json:"movable_per_cpu"`
	Pins          []affinity.Pin  `json:"pins"`
	RulesDir      string          `json:"rules_dir"`
	Rules         []ruleUseJSON   `json:"rules"`
	Misplaced     []misplacedJSON `json:"misplaced"`
}

// daemonJSON is the daemon's part of the status document: known is false
// without a state file; status is what the daemon recorded, null when
// status_problem says why not.
type daemonJSON struct {
	Known         bool                `json:"known"`
	Running       bool                `json:"running"`
	PID           int                 `json:"pid"`
	Status        *state.DaemonStatus `json:"status"`
	StatusProblem string              `json:"status_problem,omitempty"`
}

type ruleUseJSON struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
	IRQs []int  `json:"irqs"`
}

type misplacedJSON struct {
	IRQ     int                `json:"irq"`
	Actions []string           `json:"actions"`
	On      sysfs.CPUSet       `json:"on"`
	To      sysfs.CPUSet       `json:"to"`
	Cause   affinity.CauseKind `json:"cause"`
	Why     string             `json:"why"`
}

func statusJSON(r *ops.StatusReport) statusDoc {
	st := r.State
	doc := statusDoc{Version: version, State: r.StatePath, RulesDir: r.RulesDir, MovablePerCPU: perCPUJSON(r.MovablePerCPU),
		Pins: []affinity.Pin{}, Rules: []ruleUseJSON{}, Misplaced: []misplacedJSON{}}
	doc.Daemon = daemonJSON{Known: r.Daemon.Known, Running: r.Daemon.Running, PID: r.Daemon.PID, Status: r.Daemon.Status, StatusProblem: r.Daemon.StatusProblem}
	doc.CPUs.Online, doc.CPUs.Allowed, doc.CPUs.Banned = st.Snapshot.CPUs.Online, st.Allowed, st.Banned
	doc.CPUs.BannedBy, doc.CPUs.DrainBy = map[string][]affinity.BanSource{}, map[string]string{}
	for cpu, by := range st.BannedBy {
		doc.CPUs.BannedBy[strconv.Itoa(cpu)] = by
	}
	doc.CPUs.Drained = r.Drained.CPUs()
	for cpu, by := range r.Drained {
		doc.CPUs.DrainBy[strconv.Itoa(cpu)] = string(by)
	}
	for _, p := range r.Pins {
		doc.Pins = append(doc.Pins, p)
	}
	slices.SortFunc(doc.Pins, func(a, b affinity.Pin) int { return a.IRQ - b.IRQ })
	for _, u := range r.Rules {
		doc.Rules = append(doc.Rules, ruleUseJSON{Name: u.Rule.Name, File: u.Rule.File, Line: u.Rule.Line, IRQs: u.IRQs})
	}
	for _, m := range r.Misplaced {
		doc.Misplaced = append(doc.Misplaced, misplacedJSON{IRQ: m.IRQ.IRQ, Actions: m.IRQ.Actions, On: m.IRQ.Where(), To: m.Move.To, Cause: m.Kind, Why: m.Why})
	}
	return doc
}
