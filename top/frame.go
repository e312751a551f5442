package top

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/cpuset"
	"github.com/irqshift/irqshift/sysfs"
)

// The methods a sample's counts come from.
const (
	// MethodProcInterrupts: the per-CPU columns of /proc/interrupts.
	MethodProcInterrupts = "proc-interrupts"
	// MethodEBPF: the eBPF counter on irq/irq_handler_entry (top --ebpf).
	MethodEBPF = "ebpf"
)

// Sample is the interrupt counts at one moment: cumulative since boot
// (/proc/interrupts) or since the eBPF counter was opened. A frame's rates
// are what grew between two samples.
type Sample struct {
	Taken time.Time
	// IRQs are the counts by IRQ number.
	IRQs map[int]IRQCounts
	// Columns are the CPUs whose counts the sample holds: the header of
	// /proc/interrupts, which names only the CPUs online when it was read.
	// The count of a CPU missing from it is unknown, not zero.
	Columns sysfs.CPUSet
	// EveryCPU says that every CPU was counted (eBPF): a CPU absent from
	// PerCPU had no interrupt.
	EveryCPU bool
}

// IRQCounts are one IRQ's counts.
type IRQCounts struct {
	// Key is affinity.Key of the IRQ (number, chip, actions), so that a
	// number reused by another device is not taken for the old one; ""
	// where the counter cannot tell (eBPF counts by number).
	Key    string
	PerCPU map[int]uint64
}

// SampleOf takes the counts of a classified snapshot (its
// /proc/interrupts), read at taken.
func SampleOf(st *affinity.State, taken time.Time) Sample {
	s := Sample{Taken: taken, IRQs: make(map[int]IRQCounts, len(st.IRQs))}
	if st.Snapshot != nil {
		s.Columns = columns(st.Snapshot.Interrupts.CPUs)
	}
	for _, irq := range st.IRQs {
		s.IRQs[irq.IRQ] = IRQCounts{Key: affinity.Key(irq), PerCPU: perCPU(irq.CPUs, irq.Counts)}
	}
	return s
}

// SampleOfInterrupts takes the counts of /proc/interrupts alone, read at
// taken: the first sample of a window, which needs no classification.
func SampleOfInterrupts(in sysfs.Interrupts, taken time.Time) Sample {
	s := Sample{Taken: taken, IRQs: make(map[int]IRQCounts, len(in.IRQs)), Columns: columns(in.CPUs)}
	for _, row := range in.IRQs {
		key := affinity.Key(affinity.IRQ{IRQ: row.IRQ, Chip: row.Chip, Actions: row.Actions})
		s.IRQs[row.IRQ] = IRQCounts{Key: key, PerCPU: perCPU(in.CPUs, row.Counts)}
	}
	return s
}

// columns is the set of a /proc/interrupts header's CPUs. A number no CPU
// set can hold (the parser takes up to 2^31-1) is left out, so its counts
// are never taken for grown: a header is kernel output, and no header
// makes top panic.
func columns(cpus []int) sysfs.CPUSet {
	var set sysfs.CPUSet
	for _, cpu := range cpus {
		if cpu >= 0 && cpu < cpuset.MaxCPUs {
			set = set.With(cpu)
		}
	}
	return set
}

// perCPU pairs the counts of a row with the CPUs of the header; a row
// shorter than the header (the parser allows it) has no count for the rest.
func perCPU(cpus []int, counts []uint64) map[int]uint64 {
	out := make(map[int]uint64, min(len(cpus), len(counts)))
	for i, cpu := range cpus {
		if i < len(counts) {
			out[cpu] = counts[i]
		}
	}
	return out
}

// grown is what an IRQ's counts grew by, per CPU, from before's counts
// (had: before has the IRQ) to after's.
//
//   - An IRQ that before lacks, or that was then another device (its key
//     differs), was allocated within the window: it counts from zero.
//   - A CPU that came online within the window has a /proc/interrupts
//     column again, with the count it kept while offline: its baseline is
//     unknown, so it gives nothing this window rather than a false burst.
//   - A count lower than before's restarted (the IRQ was freed and
//     allocated again): what it holds grew within the window.
func grown(before Sample, b IRQCounts, had bool, a IRQCounts) map[int]uint64 {
	fresh := !had || (b.Key != "" && a.Key != "" && b.Key != a.Key)
	out := make(map[int]uint64, len(a.PerCPU))
	for cpu, n := range a.PerCPU {
		switch {
		case fresh:
			out[cpu] = n
		case !before.EveryCPU && !before.Columns.Contains(cpu):
		case n >= b.PerCPU[cpu]:
			out[cpu] = n - b.PerCPU[cpu]
		default:
			out[cpu] = n
		}
	}
	return out
}

// Input is what a frame shows besides the counts: the classified state at
// the end of the window and the operator's intent.
type Input struct {
	State   *affinity.State
	Pins    affinity.Pins
	Drained affinity.Drains
	// Method is where the counts come from: MethodProcInterrupts or
	// MethodEBPF.
	Method string
}

// Frame is one refresh of top: the rate of every CPU, grouped by NUMA
// node, and of every IRQ.
type Frame struct {
	// Taken is when the window ended; Window how long it lasted (0 when
	// the samples give none, and then every rate is 0).
	Taken  time.Time
	Window time.Duration
	Method string
	// Rate is every counted interrupt per second.
	Rate float64
	// Nodes are the NUMA nodes in order, the CPUs of no node (node -1)
	// last; a machine without NUMA has one group of node -1.
	Nodes []Node
	// IRQs are the IRQs of /proc/interrupts, by number.
	IRQs []IRQ
	// Fired counts the IRQs whose rate is above zero.
	Fired int
}

// Node is a NUMA node's CPUs and their rate.
type Node struct {
	Node int
	Rate float64
	CPUs []CPU
}

// CPU is one present (or online) CPU.
type CPU struct {
	CPU    int
	Node   int
	Online bool
	// Rate is the interrupts per second the CPU handled in the window.
	Rate float64
	// BannedBy are the sources of the CPU's ban (affinity.BanSources
	// order), isolation included.
	BannedBy []affinity.BanSource
	// Isolated is true for a CPU isolated at boot (isolcpus=, nohz_full=)
	// or in an isolated cpuset partition, also where --include-isolated
	// lets IRQs go there.
	Isolated bool
	// DrainedBy says which command drained the CPU, "" when it is not.
	DrainedBy affinity.DrainSource
}

// Banned reports whether the CPU is banned for a reason other than its
// isolation, which Isolated shows.
func (c CPU) Banned() bool { return len(c.otherBans()) > 0 }

// otherBans are the ban sources that are not isolation.
func (c CPU) otherBans() []affinity.BanSource {
	var out []affinity.BanSource
	for _, s := range c.BannedBy {
		if !isolation(s) {
			out = append(out, s)
		}
	}
	return out
}

// isolation reports whether a ban source is the CPU's isolation.
func isolation(s affinity.BanSource) bool {
	return s == affinity.BanIsolcpus || s == affinity.BanNohzFull || s == affinity.BanPartition
}

// IRQ is one IRQ's rate and what the operator needs to place it.
type IRQ struct {
	IRQ  int
	Rate float64
	// PerCPU is the rate on each CPU it fired on.
	PerCPU map[int]float64
	// Where is the effective affinity, or the mask where the kernel gives
	// none.
	Where   sysfs.CPUSet
	Node    int
	Class   affinity.Class
	Chip    string
	Actions []string
	// Pin is the admin's pin irqshift keeps, nil when none.
	Pin *sysfs.CPUSet
	// Rule is the rule that placed the IRQ, "" when none: rules do not
	// exist yet, and the column that shows the pin is where they will go.
	Rule string
}

// Name is the IRQ's actions, joined by commas as list prints them.
func (irq IRQ) Name() string { return strings.Join(irq.Actions, ",") }

// Build makes the frame of the window from before to after.
func Build(before, after Sample, in Input) Frame {
	st := in.State
	f := Frame{Taken: after.Taken, Method: in.Method}
	if w := after.Taken.Sub(before.Taken); w > 0 {
		f.Window = w
	}
	cpuRate := map[int]float64{}
	for _, irq := range st.IRQs {
		out := IRQ{IRQ: irq.IRQ, Where: irq.Where(), Node: irq.Node, Class: irq.Class, Chip: irq.Chip, Actions: irq.Actions}
		if pin, ok := in.Pins[affinity.Key(irq)]; ok {
			cpus := pin.CPUs
			out.Pin = &cpus
		}
		a, ok := after.IRQs[irq.IRQ]
		if ok && f.Window > 0 {
			b, had := before.IRQs[irq.IRQ]
			for cpu, d := range grown(before, b, had, a) {
				if d == 0 {
					continue
				}
				r := float64(d) / f.Window.Seconds()
				if out.PerCPU == nil {
					out.PerCPU = map[int]float64{}
				}
				out.PerCPU[cpu] = r
				out.Rate += r
				cpuRate[cpu] += r
			}
		}
		if out.Rate > 0 {
			f.Fired++
		}
		f.Rate += out.Rate
		f.IRQs = append(f.IRQs, out)
	}
	slices.SortFunc(f.IRQs, func(a, b IRQ) int { return a.IRQ - b.IRQ })
	f.Nodes = nodes(st, in.Drained, cpuRate)
	return f
}

// nodes groups the present and online CPUs by NUMA node.
func nodes(st *affinity.State, drained affinity.Drains, rate map[int]float64) []Node {
	var info sysfs.CPUInfo
	if st.Snapshot != nil {
		info = st.Snapshot.CPUs
	}
	byNode := map[int]*Node{}
	for _, cpu := range info.Present.Union(info.Online).CPUs() {
		node, ok := info.Node[cpu]
		if !ok || node < 0 {
			node = -1
		}
		c := CPU{CPU: cpu, Node: node, Online: info.Online.Contains(cpu), BannedBy: st.BannedBy[cpu],
			Isolated: info.Isolated.Contains(cpu) || info.NohzFull.Contains(cpu)}
		if c.Online {
			c.Rate = rate[cpu]
		}
		for _, s := range c.BannedBy {
			c.Isolated = c.Isolated || isolation(s)
		}
		if st.Drained.Contains(cpu) {
			c.DrainedBy = cmp.Or(drained[cpu], affinity.DrainByDrain)
		}
		n := byNode[node]
		if n == nil {
			n = &Node{Node: node}
			byNode[node] = n
		}
		n.Rate += c.Rate
		n.CPUs = append(n.CPUs, c)
	}
	out := make([]Node, 0, len(byNode))
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		if node >= 0 {
			out = append(out, *byNode[node])
		}
	}
	if n, ok := byNode[-1]; ok {
		out = append(out, *n)
	}
	return out
}

// SortKey orders the IRQ table.
type SortKey string

// The sort keys, with the key that selects each in the live view.
const (
	SortRate SortKey = "rate" // busiest first (r)
	SortIRQ  SortKey = "irq"  // by number (i)
	SortCPU  SortKey = "cpu"  // by the first CPU it is delivered to (c)
	SortName SortKey = "name" // by its actions (n)
)

// SortKeys lists every sort key, for help texts and checks.
var SortKeys = []SortKey{SortRate, SortIRQ, SortCPU, SortName}

// SortKeyOf returns the sort key a key press selects.
func SortKeyOf(key byte) (SortKey, bool) {
	for _, k := range SortKeys {
		if key == k[0] {
			return k, true
		}
	}
	return "", false
}

// ParseSortKey parses a --sort value.
func ParseSortKey(text string) (SortKey, bool) {
	for _, k := range SortKeys {
		if string(k) == text {
			return k, true
		}
	}
	return "", false
}

// Sorted returns the IRQs that fired in the window, ordered by key; ties
// go to the lower IRQ number.
func (f Frame) Sorted(key SortKey) []IRQ {
	var out []IRQ
	for _, irq := range f.IRQs {
		if irq.Rate > 0 {
			out = append(out, irq)
		}
	}
	slices.SortStableFunc(out, func(a, b IRQ) int {
		var c int
		switch key {
		case SortIRQ:
		case SortCPU:
			c = cmp.Compare(firstCPU(a.Where), firstCPU(b.Where))
		case SortName:
			c = strings.Compare(a.Name(), b.Name())
		default:
			c = cmp.Compare(b.Rate, a.Rate)
		}
		return cmp.Or(c, a.IRQ-b.IRQ)
	})
	return out
}

// firstCPU orders an IRQ by the first CPU it goes to, those that go
// nowhere last.
func firstCPU(s sysfs.CPUSet) int {
	if s.IsEmpty() {
		return int(^uint(0) >> 1)
	}
	return s.First()
}
