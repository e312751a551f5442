package sysfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/irqshift/irqshift/internal/quote"
)

// Interrupts is the parsed content of /proc/interrupts.
//
// The kernel writes the file in kernel/irq/proc.c, show_interrupts (renamed
// irq_seq_show in later kernels), and the architecture appends its own rows
// in arch_show_interrupts:
//
//	           CPU0       CPU1       CPU2       CPU3
//	 11:        638        513        556        605     GICv3  27 Level     arch_timer
//	 20:          0          0          0          0   ITS-MSI 32768 Edge      virtio1-config
//	IPI0:        36         46         17         41       Rescheduling interrupts
//	Err:          0
//
// The header names the online CPUs only, so a count column belongs to the
// CPU its header names, not to the CPU of its position.
//
// The named rows (IPI0, Err, NMI, LOC, ...) are checked but not kept:
// nothing plans from them, and keeping them cost every snapshot a copy of
// their names, descriptions and counts.
type Interrupts struct {
	CPUs []int       // CPU numbers from the header, in column order (online CPUs only; may have gaps)
	IRQs []Interrupt // numbered rows, in file order

	// named holds the named rows, in file order, when the parser was
	// asked to keep them (the parser tests check them against procfs).
	named []namedRow
}

// Interrupt is one numbered row of /proc/interrupts. show_interrupts prints
// it as "%*d:", one "%10u " count per online CPU, the chip name (" %8s", or
// the chip's irq_print_chip), the hwirq (" %*lu", blank without an IRQ
// domain), the trigger (" %-8s" Level or Edge, only where the architecture
// selects GENERIC_IRQ_SHOW_LEVEL as arm and arm64 do), the flow handler
// name ("-%-8s", when it has one) and the action names joined by ", ".
type Interrupt struct {
	IRQ      int
	Counts   []uint64 // Counts[i] belongs to CPU Interrupts.CPUs[i]
	Chip     string   // "GICv3", "ITS-MSI", "BRCM STB PCIe MSI", "GICv3-23", "ITS-PCI-MSIX-0000:00:02.0", "IR-IO-APIC"...
	HWIRQ    uint64
	HasHWIRQ bool     // false when the kernel printed no hwirq (no irq domain)
	Trigger  string   // "Level", "Edge", or "" where none printed (x86)
	Handler  string   // flow handler name without the dash: "event" (Xen "-event"), "edge"/"fasteoi" (x86 "8-edge"), "" if none
	Actions  []string // action names, split on ", "; empty (nil or len 0) when the line ends after the trigger

	// sum is the row's total where the parser was asked to skip the
	// counts (Counts nil): a rate needs only the total, and the daemon
	// is spared the per-CPU slab.
	sum uint64
}

// Total returns the sum of the counts (also where they were skipped). It
// saturates at math.MaxUint64 rather than wrapping.
func (i Interrupt) Total() uint64 {
	if i.Counts == nil {
		return i.sum
	}
	var sum uint64
	for _, c := range i.Counts {
		var carry uint64
		sum, carry = bits.Add64(sum, c, 0)
		if carry != 0 {
			return math.MaxUint64
		}
	}
	return sum
}

// namedRow is a row of /proc/interrupts whose label is not a number: the
// rows arch_show_interrupts prints after the numbered ones (arm64
// arch/arm64/kernel/smp.c IPIs, x86 arch/x86/kernel/irq.c NMI/LOC/...) and
// the generic "Err:"/"ERR:"/"MIS:" rows.
type namedRow struct {
	Name        string   // "IPI0", "Err", "NMI", ...
	Counts      []uint64 // as many counts as printed (Err has 0 or 1)
	Description string   // "Rescheduling interrupts", "Non-maskable interrupts", ...
}

// CountOn returns the count of CPU cpu, and false if cpu is not a header column.
// irqIndex indexes in.IRQs; an index out of range also gives false.
func (in Interrupts) CountOn(irqIndex int, cpu int) (uint64, bool) {
	if irqIndex < 0 || irqIndex >= len(in.IRQs) {
		return 0, false
	}
	col, ok := in.column(cpu)
	counts := in.IRQs[irqIndex].Counts
	if !ok || col >= len(counts) {
		return 0, false
	}
	return counts[col], true
}

// column returns the column of CPU cpu. The parser guarantees that CPUs is
// strictly ascending (the kernel walks for_each_online_cpu), so a binary
// search finds it; with no CPU offline the column is the CPU number itself.
func (in Interrupts) column(cpu int) (int, bool) {
	if cpu >= 0 && cpu < len(in.CPUs) && in.CPUs[cpu] == cpu {
		return cpu, true
	}
	return slices.BinarySearch(in.CPUs, cpu)
}

// Interrupts reads and parses <proc>/interrupts. The file has no length
// limit: a 256-CPU × 4096-IRQ table is about 12 MB. The read buffer is
// kept between calls, since a daemon reads the file again and again and
// the parsed value keeps no reference into it. It is not a sync.Pool: a
// snapshot of a big machine allocates enough to run the GC every time,
// and a pool emptied by the GC regrew the 12 MB buffer from 64 KB on
// every read (a third of the read's time). A quiet daemon gives it back
// with ReleaseReadBuffers.
func (fs FS) Interrupts() (Interrupts, error) {
	return fs.interrupts(true)
}

// interrupts is Interrupts; without counts, every row is checked as
// always but its Counts are nil: the daemon plans from the rows, and on a
// 256-CPU machine the counts are 8 MB to convert, allocate and collect.
func (fs FS) interrupts(counts bool) (Interrupts, error) {
	buf := takeInterruptsBuf()
	defer func() { putInterruptsBuf(buf) }()
	var err error
	for try := 0; ; try++ {
		var data []byte
		data, err = readInterruptsFile(fs.ProcPath("interrupts"), buf)
		buf = data
		if err != nil {
			return Interrupts{}, err
		}
		p := interruptsParser{skipCounts: !counts}
		in, perr := p.parse(data)
		// The kernel prints the header once but each row with the CPUs
		// online when it prints that row: a CPU that goes offline or
		// online while a file of many pages is read leaves the later rows
		// a count short or long (seen at 64 vCPUs, 4–9 times in a run
		// of hotplug bursts). Such a file is read again; a file that
		// stays malformed is an error.
		if perr == nil || !errors.Is(perr, ErrFileParse) || try == interruptsRereads {
			return in, perr
		}
	}
}

// readInterruptsFile reads /proc/interrupts (a test gives each read its
// own content).
var readInterruptsFile = readFileInto

// interruptsRereads bounds the reads again of a /proc/interrupts that did
// not parse; a hotplug burst is over long before.
const interruptsRereads = 4

// interruptsBuf is the read buffer of FS.Interrupts; a call that finds it
// taken by another one in flight uses a new buffer. last is the length of
// the last file read, so that a buffer given back by ReleaseReadBuffers
// comes back in one allocation of the size it needs, not regrown from
// 64 KB by doubling.
var interruptsBuf struct {
	sync.Mutex
	b    []byte
	last int
}

func takeInterruptsBuf() []byte {
	interruptsBuf.Lock()
	defer interruptsBuf.Unlock()
	b := interruptsBuf.b
	interruptsBuf.b = nil
	if b == nil && interruptsBuf.last > 0 {
		// The file grows by a row or a CPU column at a time: an eighth
		// more than last time, and a page for the read that meets EOF.
		n := interruptsBuf.last
		b = make([]byte, 0, n+n/8+4096)
	}
	return b
}

// putInterruptsBuf keeps b, which holds the last file read, for the next
// read.
func putInterruptsBuf(b []byte) {
	interruptsBuf.Lock()
	defer interruptsBuf.Unlock()
	if len(b) > 0 {
		interruptsBuf.last = len(b)
	}
	if cap(b) > cap(interruptsBuf.b) {
		interruptsBuf.b = b[:0]
	}
}

// ReleaseReadBuffers drops the buffers kept between reads of the big
// kernel files, so that the next GC frees them: the /proc/interrupts read
// buffer is 12 MB on 256 CPUs × 4096 IRQs, held for nothing while the
// daemon waits for an event. A daemon calls it once it is quiet; the next
// read allocates the buffer again, at the size the file last had.
func ReleaseReadBuffers() {
	interruptsBuf.Lock()
	defer interruptsBuf.Unlock()
	interruptsBuf.b = nil
}

// readFileInto reads the whole file at path into buf[:0], growing it as
// needed, and wraps failures in ErrFileRead as readFile does. Like
// readFile it does not trust the size a kernel file reports.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	defer f.Close()
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("%w: %w", ErrFileRead, err)
		}
	}
}

// parseInterrupts parses the bytes of /proc/interrupts (format: see
// Interrupts and kernel/irq/proc.c, show_interrupts).
//
// A numbered row is anchored on its count columns, exactly one per header
// CPU, and then on the first "Level" or "Edge" word: the tokens before it
// are the chip name (which may hold spaces) and, when the last of them is a
// number, the hwirq (a lone number is the hwirq of a chip printed as
// blanks). Without that word (x86) the first token of the form
// "<hwirq>-<handler>" or "-<handler>" ends the chip instead. After either
// come the optional "-<handler>" and the action names.
//
// No chip name and no description of a named row is a number, so a number
// where one begins, after one count per header CPU, is a count too many:
// the row was printed after a CPU came online (see FS.interrupts), and it
// is an error like a row a count short, never a chip named "7 ITS-MSI".
//
// Named rows are parsed and checked like the others; keepNamed keeps them
// in Interrupts.named.
//
// Malformed input gives an error wrapping ErrFileParse that names the line.
// The parser never panics, whatever the input.
func parseInterrupts(data []byte, keepNamed bool) (Interrupts, error) {
	p := interruptsParser{keepNamed: keepNamed}
	return p.parse(data)
}

const (
	// maxIRQ and maxCPU bound the IRQ and CPU numbers: both are unsigned
	// int in the kernel, and an int must hold them on every platform.
	maxIRQ = math.MaxInt32
	maxCPU = math.MaxInt32
	// textChunkMax is the largest chunk of the text arena.
	textChunkMax = 64 << 10
)

// interruptsParser holds the state of one parse: the slabs every row's
// slices are cut from and the interned strings.
type interruptsParser struct {
	ncpu       int
	keepNamed  bool
	skipCounts bool

	// counts is the slab all Counts are cut from. Every row takes ncpu
	// slots and commits as many as it filled.
	counts []uint64
	// actions is the slab all Actions are cut from.
	actions []string
	// text is the current chunk of the arena holding the kept text
	// (action names, row names, descriptions, new chip names). A chunk is
	// only appended to within its capacity, so the strings cut from it
	// stay valid; when it is full a new chunk starts.
	text      strings.Builder
	textChunk int

	// interned maps chip and handler names to one string each; lastChip
	// and lastHandler short-cut the map for runs of equal names.
	interned    map[string]string
	lastChip    string
	lastHandler string

	// lastIRQ is the largest IRQ number so far. Rows come in ascending
	// order, so a number above it cannot be a duplicate; seen is built
	// only once a row breaks the order.
	lastIRQ int
	seen    map[int]struct{}
}

func (p *interruptsParser) parse(data []byte) (Interrupts, error) {
	var in Interrupts
	rest := data
	lineNo := 0
	for len(rest) > 0 {
		var line []byte
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			line, rest = rest[:nl], rest[nl+1:]
		} else {
			line, rest = rest, nil
		}
		lineNo++
		start := skipSpace(line, 0)
		if start == len(line) {
			continue // blank line
		}
		if in.CPUs == nil {
			cpus, why := parseInterruptsHeader(line[start:])
			if why != "" {
				return Interrupts{}, interruptsLineError(lineNo, line, why)
			}
			in.CPUs = cpus
			in.IRQs = make([]Interrupt, 0, p.init(data, len(cpus)))
			continue
		}
		if why := p.parseRow(&in, line, start); why != "" {
			return Interrupts{}, interruptsLineError(lineNo, line, why)
		}
	}
	if in.CPUs == nil {
		return Interrupts{}, fmt.Errorf("%w: /proc/interrupts has no CPU header line", ErrFileParse)
	}
	return in, nil
}

// init sizes the slabs from the whole input: one count slot per header CPU
// per line, but never more than there are numbers in the file, so a long
// header over a short file allocates little. It returns the number of
// lines, an upper bound of the rows.
func (p *interruptsParser) init(data []byte, ncpu int) int {
	p.ncpu = ncpu
	p.lastIRQ = -1
	lines := bytes.Count(data, []byte{'\n'}) + 1
	slots := len(data)/2 + 1 + ncpu // every count is a digit and a separator
	if lines <= slots/ncpu {
		slots = lines * ncpu
	}
	if !p.skipCounts {
		p.counts = make([]uint64, 0, slots)
	}
	// Every action is the first of its line or follows a ", ".
	p.actions = make([]string, 0, lines+bytes.Count(data, []byte{','}))
	// The kept text is a small part of each line; most of a line is counts.
	est := len(data) - lines*(11*ncpu+5)
	p.textChunk = min(max(est, 256), textChunkMax)
	return lines
}

// parseInterruptsHeader parses "CPU0       CPU1 ...", trimmed of leading
// space. The CPU numbers must be ascending: the kernel prints them with
// for_each_online_cpu.
func parseInterruptsHeader(line []byte) ([]int, string) {
	cpus := make([]int, 0, bytes.Count(line, []byte("CPU")))
	for i := 0; ; {
		i = skipSpace(line, i)
		if i == len(line) {
			return cpus, ""
		}
		j := tokenEnd(line, i)
		tok := line[i:j]
		if len(tok) < 4 || string(tok[:3]) != "CPU" {
			return nil, fmt.Sprintf("header column %s is not CPU<n>", quoteToken(tok))
		}
		cpu, ok := parseDecimalInt(tok[3:], maxCPU)
		if !ok {
			return nil, fmt.Sprintf("header column %s is not CPU<n>", quoteToken(tok))
		}
		if len(cpus) > 0 && cpu <= cpus[len(cpus)-1] {
			return nil, fmt.Sprintf("header column %s is not above CPU%d: CPU numbers must ascend", quoteToken(tok), cpus[len(cpus)-1])
		}
		cpus = append(cpus, cpu)
		i = j
	}
}

// parseRow parses one non-blank row after the header. It returns why the
// row is malformed, or "".
func (p *interruptsParser) parseRow(in *Interrupts, line []byte, start int) string {
	j := start
	for j < len(line) && line[j] != ':' && !isSpace(line[j]) {
		j++
	}
	if j == len(line) || line[j] != ':' {
		return "no label ending in ':'"
	}
	if j == start {
		return "empty label before ':'"
	}
	label := line[start:j]
	if !isDigits(label) {
		return p.parseNamed(in, label, line, j+1)
	}
	irq, ok := parseDecimalInt(label, maxIRQ)
	if !ok {
		return "IRQ number out of range"
	}
	if why := p.checkDuplicate(in, irq); why != "" {
		return why
	}

	var dst []uint64
	if !p.skipCounts {
		dst = p.takeCounts()
	}
	n, next, sum, bad, why := parseCounts(line, j+1, dst, p.ncpu)
	switch {
	case why != "":
		return why
	case n < p.ncpu && bad && line[next]-'0' <= 9:
		return fmt.Sprintf("count %s is not a number", quoteToken(line[next:tokenEnd(line, next)]))
	case n < p.ncpu:
		return fmt.Sprintf("has %d counts, want %d (one per header CPU)", n, p.ncpu)
	}
	if why := p.countPastHeader(line, next, true); why != "" {
		return why
	}
	var irqRow Interrupt
	if dst != nil {
		p.counts = p.counts[:len(p.counts)+n]
		irqRow = Interrupt{IRQ: irq, Counts: dst[:n:n]}
	} else {
		irqRow = Interrupt{IRQ: irq, sum: sum}
	}
	if why := p.parseTail(&irqRow, line, next); why != "" {
		return why
	}
	in.IRQs = append(in.IRQs, irqRow)
	return ""
}

// checkDuplicate fails when irq was already seen.
func (p *interruptsParser) checkDuplicate(in *Interrupts, irq int) string {
	if p.seen == nil {
		if irq > p.lastIRQ {
			p.lastIRQ = irq
			return ""
		}
		// Out of order: from here on, remember every number.
		p.seen = make(map[int]struct{}, len(in.IRQs)+1)
		for _, r := range in.IRQs {
			p.seen[r.IRQ] = struct{}{}
		}
	}
	if _, dup := p.seen[irq]; dup {
		return fmt.Sprintf("duplicate IRQ %d", irq)
	}
	p.seen[irq] = struct{}{}
	return ""
}

// parseNamed parses a row such as "IPI0:  36  46  Rescheduling interrupts",
// "Err:          0" or "Err:": up to one count per header CPU, then the
// description. line[pos:] follows the colon.
//
// The per-CPU rows (IPIn, NMI, LOC, ...) are printed like the numbered
// ones, so they too have a count more than the header when a CPU came
// online meanwhile; that is an error here as well, so that the file is
// read again rather than the count taken for a word of the description.
func (p *interruptsParser) parseNamed(in *Interrupts, label, line []byte, pos int) string {
	if !p.keepNamed {
		n, next, _, _, why := parseCounts(line, pos, nil, p.ncpu)
		if why == "" && n == p.ncpu {
			why = p.countPastHeader(line, next, false)
		}
		return why
	}
	dst := p.takeCounts()
	n, next, _, _, why := parseCounts(line, pos, dst, p.ncpu)
	if why == "" && n == p.ncpu {
		why = p.countPastHeader(line, next, false)
	}
	if why != "" {
		return why
	}
	p.counts = p.counts[:len(p.counts)+n]
	in.named = append(in.named, namedRow{
		Name:        p.keep(label),
		Counts:      dst[:n:n],
		Description: p.keep(trimSpace(line[next:])),
	})
	return ""
}

// takeCounts returns room for one row of counts at the end of the slab.
// The caller commits what it used by extending p.counts.
func (p *interruptsParser) takeCounts() []uint64 {
	if cap(p.counts)-len(p.counts) < p.ncpu {
		// Only reached on odd input: init sized the slab for the file.
		// Rows already cut from the old slab keep it.
		p.counts = make([]uint64, 0, 8*p.ncpu)
	}
	return p.counts[len(p.counts) : len(p.counts)+p.ncpu]
}

// parseCounts reads up to len(dst) decimal numbers from line[pos:]. It
// stops early at the end of the line or at a token that is not a number
// (then bad is true). next is where the first unread token starts, or
// where reading stopped. why is set when a number overflows uint64.
func parseCounts(line []byte, pos int, dst []uint64, want int) (n, next int, sum uint64, bad bool, why string) {
	i := pos
	for n < want {
		i = skipSpace(line, i)
		if i == len(line) {
			return n, i, sum, false, ""
		}
		start := i
		var v uint64
		for i < len(line) {
			d := line[i] - '0'
			if d > 9 {
				break
			}
			v = v*10 + uint64(d)
			i++
		}
		if i == start || (i < len(line) && !isSpace(line[i])) {
			return n, start, sum, true, ""
		}
		if i-start > 19 { // 19 digits always fit in a uint64
			var ok bool
			if v, ok = parseDecimalUint(line[start:i]); !ok {
				return n, start, sum, false, fmt.Sprintf("count %s overflows uint64", quoteToken(line[start:i]))
			}
		}
		if dst != nil {
			dst[n] = v
		}
		var carry uint64
		if sum, carry = bits.Add64(sum, v, 0); carry != 0 {
			sum = math.MaxUint64
		}
		n++
	}
	return n, i, sum, false, ""
}

// countPastHeader returns why a row is malformed when the token at or
// after line[pos], which follows one count per header CPU, is a number, or
// "". No chip name (nor description of a named row) is a number: one there
// is the count of a CPU that came online after the header was printed.
// With hwirqFirst, a number followed by "Level" or "Edge" is accepted: it
// is the hwirq of a chip whose name printed as blanks.
func (p *interruptsParser) countPastHeader(line []byte, pos int, hwirqFirst bool) string {
	i := skipSpace(line, pos)
	j := tokenEnd(line, i)
	if !isDigits(line[i:j]) {
		return ""
	}
	if hwirqFirst {
		h := skipSpace(line, j)
		if triggerWord(line[h:tokenEnd(line, h)]) != "" {
			return ""
		}
	}
	return fmt.Sprintf("has more than %d counts (next %s), want %d (one per header CPU)", p.ncpu, quoteToken(line[i:j]), p.ncpu)
}

// parseTail parses what follows the counts of a numbered row: chip, hwirq,
// trigger, handler and actions.
func (p *interruptsParser) parseTail(row *Interrupt, line []byte, pos int) string {
	var (
		k            int // tokens before the current one
		chipStart    int // start of token 0
		lastS, lastE int // token k-1
		prevE        int // end of token k-2
	)
	for i := pos; ; {
		i = skipSpace(line, i)
		if i == len(line) {
			break
		}
		j := tokenEnd(line, i)
		tok := line[i:j]
		if trig := triggerWord(tok); trig != "" {
			// arm, arm64: chip [hwirq] Level|Edge [-handler] [actions]
			row.Trigger = trig
			chipEnd, chipTokens := lastE, k
			if k >= 1 && isDigits(line[lastS:lastE]) {
				hw, ok := parseDecimalUint(line[lastS:lastE])
				if !ok {
					return "hwirq out of range"
				}
				row.HWIRQ, row.HasHWIRQ = hw, true
				chipEnd, chipTokens = prevE, k-1
			}
			// A lone number is the hwirq of a chip printed as blanks
			// (an empty name): the chip stays "".
			if chipTokens > 0 {
				row.Chip = p.intern(line[chipStart:chipEnd], &p.lastChip)
			}
			rest := j
			if h := skipSpace(line, j); h < len(line) && line[h] == '-' {
				if e := tokenEnd(line, h); e-h > 1 {
					row.Handler = p.intern(line[h+1:e], &p.lastHandler)
					rest = e
				}
			}
			p.setActions(row, line[rest:])
			return ""
		}
		if k >= 1 {
			// x86: chip <hwirq>-<handler> [actions], or chip -<handler>
			// [actions] without an IRQ domain.
			if dash := handlerDash(tok); dash >= 0 {
				if dash > 0 {
					hw, ok := parseDecimalUint(tok[:dash])
					if !ok {
						return "hwirq out of range"
					}
					row.HWIRQ, row.HasHWIRQ = hw, true
				}
				row.Chip = p.intern(line[chipStart:lastE], &p.lastChip)
				row.Handler = p.intern(tok[dash+1:], &p.lastHandler)
				p.setActions(row, line[j:])
				return ""
			}
		}
		if k == 0 {
			chipStart = i
		}
		prevE = lastE
		lastS, lastE = i, j
		k++
		i = j
	}
	// Neither a trigger nor a handler: chip [hwirq] [actions].
	i := skipSpace(line, pos)
	if i == len(line) {
		return "" // nothing after the counts
	}
	j := tokenEnd(line, i)
	row.Chip = p.intern(line[i:j], &p.lastChip)
	h := skipSpace(line, j)
	if e := tokenEnd(line, h); e > h && isDigits(line[h:e]) {
		hw, ok := parseDecimalUint(line[h:e])
		if !ok {
			return "hwirq out of range"
		}
		row.HWIRQ, row.HasHWIRQ = hw, true
		j = e
	}
	p.setActions(row, line[j:])
	return ""
}

// triggerWord returns "Level" or "Edge" when tok is one of them.
func triggerWord(tok []byte) string {
	switch string(tok) {
	case "Level":
		return "Level"
	case "Edge":
		return "Edge"
	}
	return ""
}

// handlerDash returns the index of the dash in an x86 "<digits>-<name>" or
// "-<name>" token, or -1 when tok is not one.
func handlerDash(tok []byte) int {
	dash := bytes.IndexByte(tok, '-')
	if dash < 0 || dash == len(tok)-1 || (dash > 0 && !isDigits(tok[:dash])) {
		return -1
	}
	return dash
}

// setActions splits the action list b (with surrounding space) on ", ".
func (p *interruptsParser) setActions(row *Interrupt, b []byte) {
	b = trimSpace(b)
	if len(b) == 0 {
		return
	}
	s := p.keep(b)
	start := len(p.actions)
	for {
		k := strings.Index(s, ", ")
		if k < 0 {
			p.actions = append(p.actions, s)
			break
		}
		p.actions = append(p.actions, s[:k])
		s = s[k+2:]
	}
	row.Actions = p.actions[start:len(p.actions):len(p.actions)]
}

// intern returns one string for every equal chip or handler name. *last
// caches the previous answer for runs of rows with the same name.
func (p *interruptsParser) intern(b []byte, last *string) string {
	if string(b) == *last {
		return *last
	}
	s, ok := p.interned[string(b)]
	if !ok {
		if p.interned == nil {
			p.interned = make(map[string]string)
		}
		s = p.keep(b)
		p.interned[s] = s
	}
	*last = s
	return s
}

// keep copies b into the text arena and returns it as a string.
func (p *interruptsParser) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if p.text.Cap()-p.text.Len() < len(b) {
		// Start a new chunk; strings cut from the old one keep it alive.
		p.text = strings.Builder{}
		p.text.Grow(max(p.textChunk, len(b)))
		p.textChunk = min(2*p.textChunk, textChunkMax)
	}
	p.text.Write(b)
	s := p.text.String()
	return s[len(s)-len(b):]
}

// interruptsLineError wraps ErrFileParse with the line number, the line
// (quoted with quote.Bytes) and why: a why that cites a token quotes it
// with quoteToken, so the message stays short however long the line.
func interruptsLineError(lineNo int, line []byte, why string) error {
	return fmt.Errorf("%w: /proc/interrupts line %d %s: %s", ErrFileParse, lineNo, quote.Bytes(line), why)
}

// quoteToken quotes a token of a line that the message quotes too.
func quoteToken(tok []byte) string {
	return quote.Token(tok)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// skipSpace returns the index of the first non-space byte of b at or after i.
// The kernel pads every count to 11 columns, so it looks at 8 bytes at a
// time first and jumps to the first byte that is not ' '.
func skipSpace(b []byte, i int) int {
	for i >= 0 && i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:]) ^ 0x2020202020202020
		if x != 0 {
			i += bits.TrailingZeros64(x) >> 3
			break
		}
		i += 8
	}
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// tokenEnd returns the index of the first space byte of b at or after i.
func tokenEnd(b []byte, i int) int {
	for i < len(b) && !isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// isDigits reports whether b is one or more ASCII digits.
func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c-'0' > 9 {
			return false
		}
	}
	return true
}

// parseDecimalUint parses ASCII digits into a uint64, failing on anything
// else and on overflow.
func parseDecimalUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		if v > (math.MaxUint64-uint64(d))/10 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	return v, true
}

// parseDecimalInt parses ASCII digits into an int no larger than limit.
func parseDecimalInt(b []byte, limit int) (int, bool) {
	v, ok := parseDecimalUint(b)
	if !ok || v > uint64(limit) {
		return 0, false
	}
	return int(v), true
}
