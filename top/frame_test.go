package top

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// TestGrown: what an IRQ's counts grew by, for the ways counts change
// besides growing: a CPU that comes back with the count it kept while
// offline, a number reused by another device, a count that restarted, an
// IRQ allocated within the window, and a CPU that left.
func TestGrown(t *testing.T) {
	before := Sample{Columns: sysfs.NewCPUSet(0, 1, 2)}
	tests := []struct {
		name  string
		b     IRQCounts
		had   bool
		a     IRQCounts
		every bool
		want  map[int]uint64
	}{
		{"grows", IRQCounts{Key: "21/x/a", PerCPU: map[int]uint64{0: 10, 1: 5}}, true,
			IRQCounts{Key: "21/x/a", PerCPU: map[int]uint64{0: 30, 1: 5}}, false, map[int]uint64{0: 20, 1: 0}},
		{"a CPU back online gives no burst", IRQCounts{Key: "k", PerCPU: map[int]uint64{0: 10}}, true,
			IRQCounts{Key: "k", PerCPU: map[int]uint64{0: 12, 3: 100000}}, false, map[int]uint64{0: 2}},
		{"eBPF counts every CPU", IRQCounts{PerCPU: map[int]uint64{0: 10}}, true,
			IRQCounts{PerCPU: map[int]uint64{0: 12, 3: 7}}, true, map[int]uint64{0: 2, 3: 7}},
		{"a reused number counts from zero", IRQCounts{Key: "22/GICv3/virtio3", PerCPU: map[int]uint64{0: 900}}, true,
			IRQCounts{Key: "22/ITS/eth0", PerCPU: map[int]uint64{0: 40}}, false, map[int]uint64{0: 40}},
		{"a restarted count is what it holds", IRQCounts{Key: "k", PerCPU: map[int]uint64{1: 900}}, true,
			IRQCounts{Key: "k", PerCPU: map[int]uint64{1: 15}}, false, map[int]uint64{1: 15}},
		{"a new IRQ counts from zero", IRQCounts{}, false,
			IRQCounts{Key: "k", PerCPU: map[int]uint64{2: 8, 3: 1}}, false, map[int]uint64{2: 8, 3: 1}},
		{"a CPU gone gives nothing", IRQCounts{Key: "k", PerCPU: map[int]uint64{0: 1, 2: 50}}, true,
			IRQCounts{Key: "k", PerCPU: map[int]uint64{0: 1}}, false, map[int]uint64{0: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := before
			b.EveryCPU = tt.every
			if got := grown(b, tt.b, tt.had, tt.a); !maps.Equal(got, tt.want) {
				t.Errorf("grown = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBuildWithoutWindow: samples taken at the same moment (or out of
// order) give no rates rather than a division by zero.
func TestBuildWithoutWindow(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := &affinity.State{
		Snapshot: &sysfs.Snapshot{CPUs: sysfs.CPUInfo{Present: sysfs.NewCPUSet(0, 1), Online: sysfs.NewCPUSet(0, 1)}},
		IRQs:     []affinity.IRQ{{IRQ: 5, Chip: "GICv3", Actions: []string{"x"}, Node: -1, Class: affinity.ClassMovable}},
	}
	before := Sample{Taken: at, Columns: sysfs.NewCPUSet(0, 1), IRQs: map[int]IRQCounts{5: {PerCPU: map[int]uint64{0: 1}}}}
	after := Sample{Taken: at.Add(-time.Second), Columns: sysfs.NewCPUSet(0, 1), IRQs: map[int]IRQCounts{5: {PerCPU: map[int]uint64{0: 100}}}}
	f := Build(before, after, Input{State: st, Method: MethodProcInterrupts})
	if f.Window != 0 || f.Rate != 0 || f.Fired != 0 || math.IsNaN(f.IRQs[0].Rate) {
		t.Errorf("window %v, rate %v, fired %d, IRQ rate %v; want no window and no rates", f.Window, f.Rate, f.Fired, f.IRQs[0].Rate)
	}
	if len(f.Nodes) != 1 || f.Nodes[0].Node != -1 || len(f.Nodes[0].CPUs) != 2 {
		t.Errorf("nodes = %+v, want one group of node -1 with CPUs 0 and 1", f.Nodes)
	}
	text := Render(f, View{Width: 60})
	if want := "no window yet"; !strings.Contains(text, want) {
		t.Errorf("frame without a window does not say %q:\n%s", want, text)
	}
}

// TestRenderNeverWider: no line of a frame is wider than the view, from
// the narrowest to a wide terminal, and a height-limited frame has at
// most that many lines.
func TestRenderNeverWider(t *testing.T) {
	f := syntheticFrame(48)
	for width := 1; width <= 160; width += 7 {
		for _, height := range []int{0, 3, 10, 24, 60} {
			text := Render(f, View{Width: width, Height: height, Live: height > 0, Status: "read /proc/interrupts: \x1b[31mboom"})
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			if height > 0 && len(lines) > height {
				t.Errorf("width %d height %d: %d lines", width, height, len(lines))
			}
			for _, line := range lines {
				if n := len([]rune(line)); n > max(width, MinWidth) {
					t.Errorf("width %d height %d: line of %d characters: %q", width, height, n, line)
				}
				if strings.Contains(line, "\x1b") {
					t.Errorf("width %d: an escape reached the frame: %q", width, line)
				}
			}
		}
	}
}

// syntheticFrame is a frame of cpus CPUs on two nodes, each with a rate,
// and an IRQ per CPU.
func syntheticFrame(cpus int) Frame {
	f := Frame{Window: time.Second, Method: MethodProcInterrupts}
	for node := range 2 {
		n := Node{Node: node}
		for cpu := node * cpus / 2; cpu < (node+1)*cpus/2; cpu++ {
			c := CPU{CPU: cpu, Node: node, Online: cpu%7 != 3, Rate: float64(cpu * 100)}
			if cpu%5 == 0 {
				c.BannedBy = []affinity.BanSource{affinity.BanConfig, affinity.BanIsolcpus}
				c.Isolated = true
			}
			if cpu%6 == 0 {
				c.DrainedBy = affinity.DrainByOffline
			}
			n.CPUs = append(n.CPUs, c)
			n.Rate += c.Rate
			pin := sysfs.NewCPUSet(cpu)
			f.IRQs = append(f.IRQs, IRQ{IRQ: 100 + cpu, Rate: float64(cpu*100 + 1), Where: sysfs.NewCPUSet(cpu), Node: node,
				Class: affinity.ClassMovable, Actions: []string{"eth0-TxRx-with-a-long-name\x1b[2J"}, Pin: &pin})
			f.Fired++
		}
		f.Nodes = append(f.Nodes, n)
	}
	return f
}

// TestSampleOfHugeHeader: a header CPU number beyond what a CPU set holds
// (the parser takes up to 2^31-1) is no column, and no panic.
func TestSampleOfHugeHeader(t *testing.T) {
	in := sysfs.Interrupts{CPUs: []int{0, 1 << 30}, IRQs: []sysfs.Interrupt{{IRQ: 9, Counts: []uint64{4, 5}}}}
	s := SampleOfInterrupts(in, time.Time{})
	if !s.Columns.Equal(sysfs.NewCPUSet(0)) || s.IRQs[9].PerCPU[1<<30] != 5 {
		t.Errorf("columns %s, counts %v; want column 0 only, the counts kept", s.Columns, s.IRQs[9].PerCPU)
	}
	if got := grown(s, s.IRQs[9], true, IRQCounts{PerCPU: map[int]uint64{0: 6, 1 << 30: 50}}); !maps.Equal(got, map[int]uint64{0: 2}) {
		t.Errorf("grown = %v, want CPU 0 only", got)
	}
}
