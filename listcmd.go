package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
)

// terminalWidth is what the default list fits: a terminal's 80 columns.
const terminalWidth = 80

func listCommand(action cli.ActionFunc, jsonFlag, sampleFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "show the IRQs, where they are and fire, their rates and classes",
		ArgsUsage: "[IRQ...]",
		Description: "Shows the IRQs given (all by default) and, first, the online, allowed, banned\n" +
			"and drained CPUs and the movable IRQs per CPU, which irqshift keeps within one.\n" +
			"Columns: " + strings.Join(listColumnNames(), ", ") + ".",
		Flags: []cli.Flag{jsonFlag, sampleFlag,
			&cli.StringFlag{Name: "cpu", Usage: "only IRQs that fire on these CPUs (a cpulist: 2, 0-3, 1,5)"},
			&cli.IntFlag{Name: "node", Usage: "only IRQs of devices on this NUMA node"},
			&cli.StringSliceFlag{Name: "class", Usage: "only IRQs of these classes: " + classNames() + " (repeatable, or comma-separated)"},
			&cli.BoolFlag{Name: "movable", Usage: "only the IRQs irqshift moves (--class movable)"},
			&cli.BoolFlag{Name: "pinned", Usage: "only IRQs with a pin"},
			&cli.StringFlag{Name: "name", Usage: "only IRQs whose action, device or driver matches this pattern (nvme*)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the columns, comma-separated; +COL adds to the default"},
			&cli.BoolFlag{Name: "wide", Usage: "every column, however wide"},
			&cli.BoolFlag{Name: "no-headings", Usage: "print only the rows: no CPU lines, no column names"},
		},
		Action: action,
	}
}

func cmdList(c *cli.Context, o *options) error {
	window, err := o.sample(c)
	if err != nil {
		return err
	}
	filter, err := listFilter(c)
	if err != nil {
		return err
	}
	columns, err := listColumns(c, window > 0)
	if err != nil {
		return err
	}
	report, err := ops.List(c.Context, o.env, ops.ListRequest{Sample: window, Filter: filter})
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.stdout, listJSON(report))
	}
	return writeListTable(o.stdout, report, columns, listLayout{headings: !c.Bool("no-headings"), fit: !c.Bool("wide") && !c.IsSet("output")})
}

// listFilter reads list's arguments and filter flags.
func listFilter(c *cli.Context) (ops.ListFilter, error) {
	var f ops.ListFilter
	for _, arg := range c.Args().Slice() {
		irqs, err := sysfs.ParseCPUList(arg) // the same syntax: 36, 36-40, 36,40
		if err != nil || irqs.IsEmpty() {
			return f, usageError("list: %s is not an IRQ number (or list, such as 36-40)", quote.Quote(arg))
		}
		f.IRQs = append(f.IRQs, irqs.CPUs()...)
	}
	if text := c.String("cpu"); text != "" {
		cpus, err := parseCPUListFlag("--cpu", text)
		if err != nil {
			return f, err
		}
		f.CPUs = cpus
	}
	if c.IsSet("node") {
		node := c.Int("node")
		if node < 0 {
			return f, usageError("--node %d: want a NUMA node number (0, 1, …)", node)
		}
		f.Node = &node
	}
	for _, v := range c.StringSlice("class") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				f.Classes = append(f.Classes, affinity.Class(name))
			}
		}
	}
	if c.Bool("movable") && !slices.Contains(f.Classes, affinity.ClassMovable) {
		f.Classes = append(f.Classes, affinity.ClassMovable)
	}
	f.Pinned = c.Bool("pinned")
	f.Name = c.String("name")
	return f, nil
}

// parseCPUListFlag reads a cpulist flag, with a hint for a hex mask.
func parseCPUListFlag(flag, text string) (sysfs.CPUSet, error) {
	cpus, err := sysfs.ParseCPUList(text)
	if err != nil || cpus.IsEmpty() {
		hint := ""
		if meant, ok := maskAsCPUList(text); ok {
			hint = fmt.Sprintf(" (a hex mask? irqshift takes cpulists: %s is %s)", text, meant)
		}
		return cpus, usageError("%s %s: not a cpulist such as 2, 0-3 or 1,5%s", flag, quote.Quote(text), hint)
	}
	return cpus, nil
}

func classNames() string {
	names := make([]string, len(ops.AllClasses))
	for i, c := range ops.AllClasses {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// listColumn is a column of the list table.
type listColumn struct {
	name  string
	value func(row listRow) string
	// squeeze marks the column that gives up width for the table to fit
	// the terminal.
	squeeze bool
}

// listRow is what a row's columns read.
type listRow struct {
	irq     affinity.IRQ
	pin     *affinity.Pin
	sampled bool
}

var listColumnTable = []listColumn{
	{name: "IRQ", value: func(r listRow) string { return strconv.Itoa(r.irq.IRQ) }},
	{name: "ACTIONS", value: func(r listRow) string { return actionsText(r.irq.Actions) }, squeeze: true},
	{name: "CHIP", value: func(r listRow) string { return dash(r.irq.Chip) }},
	{name: "HWIRQ", value: func(r listRow) string {
		if !r.irq.HasHWIRQ {
			return "-"
		}
		return strconv.FormatUint(r.irq.HWIRQ, 10)
	}},
	{name: "TRIGGER", value: func(r listRow) string {
		if r.irq.Trigger == "" {
			return dash(r.irq.Handler) // x86 prints the flow handler instead
		}
		return dash(r.irq.Trigger)
	}},
	{name: "NODE", value: func(r listRow) string {
		if r.irq.Node < 0 {
			return "-"
		}
		return strconv.Itoa(r.irq.Node)
	}},
	{name: "AFFINITY", value: func(r listRow) string { return cpuText(r.irq.Affinity) }},
	{name: "EFFECTIVE", value: func(r listRow) string { return cpuText(r.irq.Effective) }},
	{name: "TOTAL", value: func(r listRow) string { return strconv.FormatUint(r.irq.Total, 10) }},
	{name: "RATE/S", value: func(r listRow) string {
		if !r.sampled {
			return "-"
		}
		return strconv.FormatFloat(r.irq.Rate, 'f', 1, 64)
	}},
	{name: "CLASS", value: func(r listRow) string {
		switch {
		case r.pin != nil:
			return "pinned"
		case r.irq.Rule != "" && r.irq.Movable():
			return "rule"
		}
		return string(r.irq.Class)
	}},
	{name: "PIN", value: func(r listRow) string {
		if r.pin == nil {
			return "-"
		}
		return r.pin.CPUs.String()
	}},
	{name: "RULE", value: func(r listRow) string { return dash(r.irq.Rule) }},
	{name: "DEVICE", value: func(r listRow) string { return dash(r.irq.Device) }},
	{name: "DRIVER", value: func(r listRow) string { return dash(r.irq.Driver) }},
	{name: "WHY", value: func(r listRow) string { return dash(r.irq.Reason) }},
}

func listColumnNames() []string {
	names := make([]string, len(listColumnTable))
	for i, col := range listColumnTable {
		names[i] = col.name
	}
	return names
}

// listColumns picks the columns: -o, --wide, or the default, which shows
// RATE/S when rates were sampled and TOTAL otherwise.
func listColumns(c *cli.Context, sampled bool) ([]listColumn, error) {
	counter := "TOTAL"
	if sampled {
		counter = "RATE/S"
	}
	names := []string{"IRQ", "ACTIONS", "AFFINITY", "EFFECTIVE", counter, "CLASS"}
	switch spec := c.String("output"); {
	case c.Bool("wide") && spec != "":
		return nil, usageError("list: give --wide or --output, not both")
	case c.Bool("wide"):
		names = []string{"IRQ", "CHIP", "HWIRQ", "TRIGGER", "NODE", "AFFINITY", "EFFECTIVE", "TOTAL", "RATE/S", "CLASS",
			"PIN", "RULE", "DEVICE", "DRIVER", "ACTIONS", "WHY"}
	case strings.HasPrefix(spec, "+"):
		names = append(names, strings.Split(spec[1:], ",")...)
	case spec != "":
		names = strings.Split(spec, ",")
	}
	var columns []listColumn
	for _, name := range names {
		name = strings.ToUpper(strings.TrimSpace(name))
		if name == "RATE" {
			name = "RATE/S"
		}
		i := slices.IndexFunc(listColumnTable, func(col listColumn) bool { return col.name == name })
		if i < 0 {
			return nil, usageError("list --output: %s is not a column; the columns are %s", quote.Quote(name), strings.Join(listColumnNames(), ","))
		}
		if !slices.ContainsFunc(columns, func(col listColumn) bool { return col.name == name }) {
			columns = append(columns, listColumnTable[i])
		}
	}
	return columns, nil
}

// listLayout says what list prints beside the rows.
type listLayout struct {
	headings bool // the CPU lines and the column names
	fit      bool // squeeze the default columns into terminalWidth
}

func writeListTable(w io.Writer, report *ops.ListReport, columns []listColumn, layout listLayout) error {
	if layout.headings {
		writeCPULines(w, report)
	}
	rows := make([][]string, 0, len(report.Shown)+1)
	if layout.headings {
		header := make([]string, len(columns))
		for i, col := range columns {
			header[i] = col.name
		}
		rows = append(rows, header)
	}
	for _, irq := range report.Shown {
		row := listRow{irq: irq, sampled: report.Sampled > 0}
		if pin, ok := report.Pins[affinity.Key(irq)]; ok {
			row.pin = &pin
		}
		cells := make([]string, len(columns))
		for i, col := range columns {
			cells[i] = col.value(row)
		}
		rows = append(rows, cells)
	}
	if layout.fit {
		squeeze(rows, columns, terminalWidth)
	}
	return writeColumns(w, rows)
}

// writeCPULines prints the CPUs' state and the movable IRQs per CPU.
func writeCPULines(w io.Writer, report *ops.ListReport) {
	st := report.State
	fmt.Fprintf(w, "CPUs online %s, allowed %s\n", cpuText(st.Snapshot.CPUs.Online), cpuText(st.Allowed))
	if !st.Banned.IsEmpty() {
		writeWrapped(w, fmt.Sprintf("CPUs banned %s: %s", st.Banned, bannedText(st)))
	}
	if drained := report.Drained.CPUs(); !drained.IsEmpty() {
		var parts []string
		for _, cpu := range drained.CPUs() {
			parts = append(parts, fmt.Sprintf("%d (%s)", cpu, report.Drained[cpu]))
		}
		writeWrapped(w, fmt.Sprintf("CPUs drained %s: %s; irqshift undrain gives them back", drained, strings.Join(parts, ", ")))
	}
	writeWrapped(w, "movable IRQs per CPU: "+perCPUText(report.MovablePerCPU, st.Allowed))
}

// perCPUText shows counts per CPU grouped by count, most first: "3 on
// CPUs 0-1, 2 on CPUs 2-3 (within one)". The verdict is over allowed.
func perCPUText(counts map[int]int, allowed sysfs.CPUSet) string {
	byCount := map[int]sysfs.CPUSet{}
	var ns []int
	for cpu, n := range counts {
		if _, seen := byCount[n]; !seen {
			ns = append(ns, n)
		}
		byCount[n] = byCount[n].With(cpu)
	}
	if len(ns) == 0 {
		return "no online CPU"
	}
	slices.Sort(ns)
	slices.Reverse(ns)
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%d on %s", n, affinity.CPUNoun(byCount[n]))
	}
	lo, hi := -1, -1
	for _, cpu := range allowed.CPUs() {
		n, ok := counts[cpu]
		if !ok {
			continue
		}
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	verdict := ""
	switch {
	case lo < 0:
	case hi-lo <= 1:
		verdict = " (within one)"
	default:
		verdict = fmt.Sprintf(" (spread %d over allowed CPUs; irqshift rebalance evens it)", hi-lo)
	}
	return strings.Join(parts, ", ") + verdict
}

// writeWrapped prints text wrapped at terminalWidth, continuation lines
// indented two spaces more than the first.
func writeWrapped(w io.Writer, text string) {
	indent := text[:len(text)-len(strings.TrimLeft(text, " "))]
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > terminalWidth {
			fmt.Fprintln(w, line)
			line = indent + "  " + word
			continue
		}
		if line == "" {
			line = indent + word
		} else {
			line += " " + word
		}
	}
	fmt.Fprintln(w, line)
}

// columnGap is the space between columns.
const columnGap = 2

// squeeze cuts the cells of the squeeze column (with "…") so that rows
// fit width, never below the width of its name.
func squeeze(rows [][]string, columns []listColumn, width int) {
	widths := columnWidths(rows)
	total := (len(widths) - 1) * columnGap
	for _, w := range widths {
		total += w
	}
	for i, col := range columns {
		if !col.squeeze || total <= width {
			continue
		}
		room := max(widths[i]-(total-width), utf8.RuneCountInString(col.name))
		for _, row := range rows {
			if utf8.RuneCountInString(row[i]) > room {
				row[i] = string([]rune(row[i])[:room-1]) + "…"
			}
		}
	}
}

func columnWidths(rows [][]string) []int {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	return widths
}

// writeColumns prints rows in aligned columns, the last one unpadded.
func writeColumns(w io.Writer, rows [][]string) error {
	widths := columnWidths(rows)
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, cell := range row {
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+columnGap))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}
