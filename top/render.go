package top

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/sysfs"
)

// DefaultWidth is the width of a frame that does not go to a terminal.
const DefaultWidth = 80

// MinWidth is the narrowest frame drawn: below it the lines are drawn at
// this width and the terminal cuts them.
const MinWidth = 20

// View is how a frame is drawn.
type View struct {
	// Width is the number of columns (DefaultWidth when 0); no line is
	// wider.
	Width int
	// Height is the number of lines, 0 for no limit (--once and frames
	// that do not go to a terminal list every IRQ that fired). With a
	// limit the CPUs flow into columns and the IRQ table is cut to fit.
	Height int
	Sort   SortKey
	// Live adds the line of keys; Paused says the view is frozen.
	Live, Paused bool
	// Status is a line under the title: the last error of the live view.
	Status string
}

const (
	// rateWidth fits every rateText.
	rateWidth = 6
	// minBar is the narrowest bar worth drawing.
	minBar = 4
	// minCellWidth is the narrowest column of CPUs: the number, the rate
	// and a few characters of bar or marks.
	minCellWidth = 20
	// minIRQRows is how many IRQ rows a height-limited frame keeps before
	// it gives the rest of the screen to the CPUs.
	minIRQRows = 5
	// gap separates columns.
	gap = "  "
)

// Render draws f: a title, the CPUs by NUMA node with their rate as a bar
// and their marks, and the IRQs that fired, sorted by v.Sort.
func Render(f Frame, v View) string {
	width := v.Width
	if width <= 0 {
		width = DefaultWidth
	}
	width = max(width, MinWidth)
	head := []string{title(f, v, width)}
	if v.Status != "" {
		head = append(head, cut("! "+quote.Printable(v.Status), width))
	}
	head = append(head, "")
	var foot []string
	if v.Live {
		foot = append(foot, cut("keys: r rate, i irq, c cpu, n name (sort); p pause; q quit", width))
	}
	irqs := f.Sorted(v.Sort)
	var cpus []string
	if v.Height <= 0 {
		cpus = cpuSection(f, width, 0)
	} else {
		// Lines left once the title, the keys, the blank line and the
		// IRQ table's header are drawn.
		avail := v.Height - len(head) - len(foot) - 2
		cpus = cpuSection(f, width, max(2, avail-max(1, min(len(irqs), minIRQRows))))
		irqs = irqs[:max(0, min(len(irqs), avail-len(cpus)))]
	}
	lines := append(head, cpus...)
	lines = append(lines, "")
	lines = append(lines, irqTable(irqs, f.Fired, width)...)
	if v.Height > 0 && len(lines)+len(foot) > v.Height {
		lines = lines[:max(0, v.Height-len(foot))]
	}
	lines = append(lines, foot...)
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// title is the first line: the total rate, the window, where the counts
// come from and the sort, as much of it as fits.
func title(f Frame, v View, width int) string {
	parts := []string{"irqshift top"}
	if v.Paused {
		parts = append(parts, "PAUSED")
	}
	window := "no window yet"
	if f.Window > 0 {
		window = "over " + windowText(f.Window)
	}
	parts = append(parts,
		rateText(f.Rate)+" interrupts/s "+window,
		methodText(f.Method),
		"sort: "+string(sortOrDefault(v.Sort)),
		fmt.Sprintf("%d of %d IRQs fired", f.Fired, len(f.IRQs)))
	line := ""
	for _, p := range parts {
		next := p
		if line != "" {
			next = line + gap + p
		}
		if utf8.RuneCountInString(next) <= width {
			line = next
		}
	}
	return cut(line, width)
}

func sortOrDefault(k SortKey) SortKey {
	if k == "" {
		return SortRate
	}
	return k
}

func methodText(method string) string {
	if method == MethodEBPF {
		return "counted with eBPF"
	}
	return "from /proc/interrupts"
}

// windowText prints a window to the millisecond: "1s", "1.5s", "250ms".
func windowText(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// rateText prints interrupts per second in at most rateWidth characters.
func rateText(r float64) string {
	switch {
	case r <= 0 || math.IsNaN(r):
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 10_000:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r < 100_000:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + "k"
	case r < 10_000_000:
		return strconv.FormatFloat(r/1e3, 'f', 0, 64) + "k"
	case r < 100_000_000:
		return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
	default:
		return strconv.FormatFloat(math.Min(r/1e6, 999_999), 'f', 0, 64) + "M"
	}
}

// cut shortens s to width characters, marking the cut with "~".
func cut(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "~"
}

// pad cuts or fills s to exactly width characters.
func pad(s string, width int) string {
	s = cut(s, width)
	return s + strings.Repeat(" ", width-utf8.RuneCountInString(s))
}

// cpuText prints a CPU set, "-" when empty.
func cpuText(s sysfs.CPUSet) string {
	if s.IsEmpty() {
		return "-"
	}
	return s.String()
}

// cpuSection draws the CPUs, grouped by node, in lines of width. With a
// budget of lines (0: none) it flows them into as many columns as it
// takes, each at least minCellWidth wide; what still does not fit ends in
// a "+N more" entry.
func cpuSection(f Frame, width, budget int) []string {
	entries := cpuEntries(f)
	columns := 1
	if budget > 0 {
		for columns*minCellWidth+(columns-1)*len(gap) <= width && rowsFor(len(entries), columns)+1 > budget {
			columns++
		}
		if columns > 1 && columns*minCellWidth+(columns-1)*len(gap) > width {
			columns--
		}
	}
	rows := rowsFor(len(entries), columns)
	if budget > 0 && rows+1 > budget {
		rows = max(1, budget-1)
		if keep := rows*columns - 1; keep < len(entries) {
			more := 0
			for _, e := range entries[keep:] {
				if e.cpu != nil {
					more++
				}
			}
			entries = append(entries[:keep:keep], entry{text: fmt.Sprintf("+%d more CPUs", more)})
		}
	}
	cell := (width - (columns-1)*len(gap)) / columns
	layout := newCPULayout(entries, cell)
	texts := make([]string, len(entries))
	for i, e := range entries {
		texts[i] = layout.draw(e)
	}
	lines := make([]string, 0, rows+2)
	if layout.form == marksLetters {
		lines = append(lines, cut(letterLegend, width))
	}
	header := make([]string, 0, columns)
	for range columns {
		header = append(header, pad(layout.header(), cell))
	}
	lines = append(lines, strings.Join(header, gap))
	for r := range rows {
		var line []string
		for c := range columns {
			if i := c*rows + r; i < len(texts) {
				line = append(line, pad(texts[i], cell))
			}
		}
		lines = append(lines, strings.Join(line, gap))
	}
	return lines
}

func rowsFor(n, columns int) int { return (n + columns - 1) / columns }

// entry is a line of the CPU section: a node's header or a CPU.
type entry struct {
	cpu  *CPU
	text string
}

// cpuEntries lists the nodes' headers and their CPUs; a machine without
// NUMA has no header.
func cpuEntries(f Frame) []entry {
	var out []entry
	numa := len(f.Nodes) > 1 || (len(f.Nodes) == 1 && f.Nodes[0].Node >= 0)
	for _, n := range f.Nodes {
		if numa {
			var cpus sysfs.CPUSet
			for _, c := range n.CPUs {
				cpus = cpus.With(c.CPU)
			}
			name := "no node"
			if n.Node >= 0 {
				name = "node " + strconv.Itoa(n.Node)
			}
			// The rate before the CPUs, which a narrow column cuts.
			out = append(out, entry{text: fmt.Sprintf("%s: %s/s, CPUs %s", name, rateText(n.Rate), cpuText(cpus))})
		}
		for i := range n.CPUs {
			out = append(out, entry{cpu: &n.CPUs[i]})
		}
	}
	return out
}

// cpuLayout is how the CPU lines of one frame are laid out: the width of
// the CPU numbers, of the bar, and how the marks are written.
type cpuLayout struct {
	cell, cpuWidth, bar int
	form                marksForm
	busiest             float64
}

// marksForm is how much the marks of a CPU say, from the most to the
// least room they take.
type marksForm int

const (
	// marksLong: "banned (config), drained (offline)".
	marksLong marksForm = iota
	// marksShort: "banned, drained".
	marksShort
	// marksLetters: "BD", with a legend above the CPUs; for the narrow
	// columns of a machine with many CPUs.
	marksLetters
)

// letterLegend explains marksLetters.
const letterLegend = "marks: O offline, B banned, I isolated, D drained"

// marksForms are the forms of the marks, each with the narrowest bar it
// is drawn with: the long marks only beside a bar of 10 or more.
var marksForms = []struct {
	form   marksForm
	minBar int
}{{marksLong, 10}, {marksShort, minBar}, {marksLetters, minBar}}

func newCPULayout(entries []entry, cell int) cpuLayout {
	l := cpuLayout{cell: cell, cpuWidth: 3}
	widest := map[marksForm]int{}
	for _, e := range entries {
		if e.cpu == nil {
			continue
		}
		l.cpuWidth = max(l.cpuWidth, len(strconv.Itoa(e.cpu.CPU)))
		l.busiest = max(l.busiest, e.cpu.Rate)
		for _, m := range marksForms {
			widest[m.form] = max(widest[m.form], len(marks(*e.cpu, m.form)))
		}
	}
	room := cell - l.prefix()
	// Where no form fits beside a bar, the letters without one.
	l.form = marksLetters
	for _, m := range marksForms {
		if w := widest[m.form]; w == 0 {
			l.bar, l.form = room, marksLong
			break
		} else if room-w-1 >= m.minBar {
			l.bar, l.form = room-w-1, m.form
			break
		}
	}
	if l.bar < minBar {
		l.bar = 0
	}
	return l
}

// prefix is the width of the CPU number and rate before the bar.
func (l cpuLayout) prefix() int { return 2 + l.cpuWidth + 2 + rateWidth + 2 }

func (l cpuLayout) header() string {
	h := fmt.Sprintf("  %*s  %*s", l.cpuWidth, "CPU", rateWidth, "INT/S")
	if l.bar > 0 {
		h += "  LOAD"
	}
	return h
}

func (l cpuLayout) draw(e entry) string {
	if e.cpu == nil {
		return cut(e.text, l.cell)
	}
	c := *e.cpu
	rate := "-"
	if c.Online {
		rate = rateText(c.Rate)
	}
	line := fmt.Sprintf("  %*d  %*s  ", l.cpuWidth, c.CPU, rateWidth, rate)
	if l.bar > 0 {
		n := 0
		if c.Online && l.busiest > 0 && c.Rate > 0 {
			n = max(1, int(math.Round(c.Rate/l.busiest*float64(l.bar))))
		}
		line += pad(strings.Repeat("#", min(n, l.bar)), l.bar)
	}
	if m := marks(c, l.form); m != "" {
		if l.bar > 0 {
			line += " "
		}
		line += m
	}
	return cut(line, l.cell)
}

// marks says what keeps IRQs off a CPU: offline, banned, isolated,
// drained; in the long form with where the ban or the drain comes from.
func marks(c CPU, form marksForm) string {
	type mark struct {
		word string
		why  []string
	}
	var out []mark
	if !c.Online {
		out = append(out, mark{word: "offline"})
	}
	if bans := c.otherBans(); len(bans) > 0 {
		m := mark{word: "banned"}
		for _, s := range bans {
			m.why = append(m.why, string(s))
		}
		out = append(out, m)
	}
	if c.Isolated {
		m := mark{word: "isolated"}
		for _, s := range c.BannedBy {
			if isolation(s) {
				m.why = append(m.why, string(s))
			}
		}
		out = append(out, m)
	}
	if c.DrainedBy != "" {
		out = append(out, mark{word: "drained", why: []string{string(c.DrainedBy)}})
	}
	var b strings.Builder
	for i, m := range out {
		switch {
		case form == marksLetters:
			b.WriteString(strings.ToUpper(m.word[:1]))
			continue
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(m.word)
		if form == marksLong && len(m.why) > 0 {
			b.WriteString(" (" + strings.Join(m.why, ", ") + ")")
		}
	}
	return b.String()
}

// irqColumn is a column of the IRQ table.
type irqColumn struct {
	name  string
	right bool
	// width is the column's width for its rows; value its cell of a row.
	width int
	value func(IRQ) string
}

// irqTable draws the IRQ table: its header and a row per IRQ. Where the
// width is short it leaves out NODE, then CLASS, then PIN/RULE, so that
// the name keeps at least 10 characters.
func irqTable(irqs []IRQ, fired, width int) []string {
	columns := []irqColumn{
		{name: "IRQ", right: true, value: func(q IRQ) string { return strconv.Itoa(q.IRQ) }},
		{name: "INT/S", right: true, value: func(q IRQ) string { return rateText(q.Rate) }},
		{name: "CPU", value: func(q IRQ) string { return cpuText(q.Where) }},
		{name: "NODE", value: func(q IRQ) string {
			if q.Node < 0 {
				return "-"
			}
			return strconv.Itoa(q.Node)
		}},
		{name: "CLASS", value: func(q IRQ) string { return string(q.Class) }},
		{name: "PIN/RULE", value: pinOrRule},
	}
	caps := map[string]int{"CPU": 11, "PIN/RULE": 16}
	for i := range columns {
		c := &columns[i]
		c.width = len(c.name)
		for _, q := range irqs {
			c.width = max(c.width, utf8.RuneCountInString(c.value(q)))
		}
		if limit, ok := caps[c.name]; ok {
			c.width = min(c.width, limit)
		}
	}
	const minName = 10
	used := func() int {
		n := 0
		for _, c := range columns {
			n += len(gap) + c.width
		}
		return n + len(gap)
	}
	for _, drop := range []string{"NODE", "CLASS", "PIN/RULE"} {
		if width-used() >= minName {
			break
		}
		for i, c := range columns {
			if c.name == drop {
				columns = append(columns[:i:i], columns[i+1:]...)
				break
			}
		}
	}
	row := func(cell func(irqColumn) string, name string) string {
		var b strings.Builder
		for _, c := range columns {
			b.WriteString(gap)
			text := cut(cell(c), c.width)
			if c.right {
				b.WriteString(strings.Repeat(" ", c.width-utf8.RuneCountInString(text)) + text)
			} else {
				b.WriteString(pad(text, c.width))
			}
		}
		b.WriteString(gap + name)
		return cut(b.String(), width)
	}
	lines := []string{row(func(c irqColumn) string { return c.name }, "NAME")}
	for _, q := range irqs {
		name := "-"
		if n := q.Name(); n != "" {
			name = quote.Printable(n)
		}
		lines = append(lines, row(func(c irqColumn) string { return c.value(q) }, name))
	}
	if fired == 0 {
		lines = append(lines, cut("  (no IRQ fired in the window)", width))
	}
	return lines
}

// pinOrRule is what keeps an IRQ where it is: the admin's pin, or (once
// rules exist) the rule that placed it.
func pinOrRule(q IRQ) string {
	switch {
	case q.Pin != nil:
		return "pin " + cpuText(*q.Pin)
	case q.Rule != "":
		return "rule " + quote.Printable(q.Rule)
	}
	return "-"
}
