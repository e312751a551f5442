package top_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/ebpf"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
	"github.com/irqshift/irqshift/top"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the frames drawn now")

// rig is a simulated machine whose interrupts fire at set rates on the
// test's clock: each window advances the simulator (sysfstest.Sim.Advance)
// and the clock together, so no test sleeps.
type rig struct {
	t   *testing.T
	sim *sysfstest.Sim
	env *ops.Env
	now time.Time
	// timer is the rate of the per-CPU arch_timer on every online CPU.
	timer     float64
	timerIRQ  int
	timerOwed float64
}

func newRig(t *testing.T, cfg sysfstest.Config) *rig {
	t.Helper()
	sim := sysfstest.New(t, cfg)
	store, err := state.OpenStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, sim: sim, now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	r.env = &ops.Env{FS: sim.FS(), Kernel: sim, Hotplug: sim, Store: store, Wait: r.wait, Clock: r.clock}
	return r
}

// rates sets each IRQ's rate (interrupts per second on its effective CPU).
func (r *rig) rates(perSecond map[int]float64) {
	r.t.Helper()
	for irq, rate := range perSecond {
		if err := r.sim.SetRate(irq, rate); err != nil {
			r.t.Fatal(err)
		}
	}
}

// wait is the sampling window's wait: the simulator's and the clock's time
// pass, and the per-CPU timer ticks on every online CPU.
func (r *rig) wait(_ context.Context, d time.Duration) error {
	r.now = r.now.Add(d)
	if r.timer > 0 {
		r.timerOwed += r.timer * d.Seconds()
		n := uint64(r.timerOwed)
		r.timerOwed -= float64(n)
		if err := r.sim.AddCounts(r.timerIRQ, n); err != nil {
			return err
		}
	}
	return r.sim.Advance(d)
}

func (r *rig) clock() time.Time { return r.now }

// top samples one window of a second, continuing from since.
func (r *rig) top(since *ops.TopReport) *ops.TopReport {
	r.t.Helper()
	report, err := ops.Top(context.Background(), r.env, ops.TopRequest{Interval: time.Second, Since: since})
	if err != nil {
		r.t.Fatal(err)
	}
	return report
}

// vm4 is the 4-CPU VM with a pin (IRQ 21 on CPU 2), a drained CPU 3 and
// interrupts firing: virtio-rng 1500/s, virtio-net's input 800/s, the
// virtio-mmio SPI 30/s, a managed queue 120/s and the timer 250/s per CPU.
func vm4(t *testing.T) *rig {
	r := newRig(t, sysfstest.VM4(sysfstest.Kernel612))
	ctx := context.Background()
	if _, err := ops.Pin(ctx, r.env, ops.PinRequest{IRQ: 21, CPUs: sysfs.NewCPUSet(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Drain(ctx, r.env, ops.DrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	r.rates(map[int]float64{21: 1500, 29: 800, 22: 30, 26: 120})
	r.timer, r.timerIRQ = 250, 11
	return r
}

// TestTopGolden draws frames of simulated machines and compares them with
// testdata/*.golden (go test ./top -update rewrites them).
func TestTopGolden(t *testing.T) {
	t.Run("vm4", func(t *testing.T) {
		r := vm4(t)
		f := r.top(nil).Frame()
		for _, key := range top.SortKeys {
			golden(t, "vm4-sort-"+string(key), top.Render(f, top.View{Width: 80, Sort: key}))
		}
		for _, width := range []int{20, 40, 60, 120} {
			golden(t, fmt.Sprintf("vm4-width-%d", width), top.Render(f, top.View{Width: width}))
		}
		var b bytes.Buffer
		if err := top.WriteJSON(&b, f); err != nil {
			t.Fatal(err)
		}
		golden(t, "vm4-json", b.String())
	})
	t.Run("numa8-marks", func(t *testing.T) {
		// Node 0 holds a CPU isolated at boot (3) and one banned by the
		// configuration (2); node 1 one drained (6) and one offline,
		// drained by irqshift offline (7).
		cfg := sysfstest.NUMA8(sysfstest.Kernel612)
		cfg.Isolated = sysfs.NewCPUSet(3)
		r := newRig(t, cfg)
		r.env.Settings.Banned.User = sysfs.NewCPUSet(2)
		r.env.Settings.NUMA = true
		ctx := context.Background()
		if _, err := ops.Offline(ctx, r.env, ops.OfflineRequest{CPUs: []int{7}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ops.Drain(ctx, r.env, ops.DrainRequest{CPUs: []int{6}}); err != nil {
			t.Fatal(err)
		}
		r.rates(map[int]float64{21: 2000, 29: 900, 30: 450, 31: 75, 32: 12.5, 13: 3})
		r.timer, r.timerIRQ = 100, 11
		f := r.top(nil).Frame()
		golden(t, "numa8-marks", top.Render(f, top.View{Width: 80}))
		golden(t, "numa8-marks-width-40", top.Render(f, top.View{Width: 40}))
		var b bytes.Buffer
		if err := top.WriteJSON(&b, f); err != nil {
			t.Fatal(err)
		}
		golden(t, "numa8-marks-json", b.String())
	})
	t.Run("big-live", func(t *testing.T) {
		// 64 CPUs do not fit a 30-line terminal in one column: they flow
		// into columns, their marks become letters, and the IRQ table
		// keeps the lines left.
		cfg := sysfstest.Big(64, 2, 160)
		cfg.Offline, cfg.Isolated = sysfs.NewCPUSet(63), sysfs.NewCPUSet(10)
		r := newRig(t, cfg)
		r.env.Settings.Banned.User = sysfs.NewCPUSet(5, 40)
		if _, err := ops.Drain(context.Background(), r.env, ops.DrainRequest{CPUs: []int{20}}); err != nil {
			t.Fatal(err)
		}
		rates := map[int]float64{}
		for i, irq := range r.sim.IRQs() {
			if r.sim.Kind(irq) == sysfstest.KindMSI && i%3 == 0 {
				rates[irq] = float64(10 * (i + 1))
			}
		}
		r.rates(rates)
		f := r.top(nil).Frame()
		golden(t, "big64-live-100x30", top.Render(f, top.View{Width: 100, Height: 30, Live: true}))
		golden(t, "big64-live-paused-80x20", top.Render(f, top.View{Width: 80, Height: 20, Live: true, Paused: true, Sort: top.SortCPU,
			Status: "read /proc/interrupts: line 7: not a count"}))
	})
}

// TestTopRates: a frame's rates are the counts that grew in its window,
// windows follow one another without losing an interrupt, and the IRQ
// table is sorted by each key.
func TestTopRates(t *testing.T) {
	r := vm4(t)
	first := r.top(nil)
	f := first.Frame()
	if f.Window != time.Second {
		t.Fatalf("window %v, want 1s", f.Window)
	}
	// The timer ticks 250/s on each of the four online CPUs, drained or not.
	want := map[int]float64{21: 1500, 29: 800, 22: 30, 26: 120, 11: 1000}
	for _, irq := range f.IRQs {
		if irq.Rate != want[irq.IRQ] {
			t.Errorf("IRQ %d: rate %v, want %v", irq.IRQ, irq.Rate, want[irq.IRQ])
		}
	}
	// The next window starts where this one ended: with new rates, it
	// shows only those.
	r.rates(map[int]float64{21: 10, 29: 0})
	second := r.top(first).Frame()
	if !second.Taken.Equal(f.Taken.Add(time.Second)) || second.Window != time.Second {
		t.Errorf("second window of %v ending at %v; want 1s ending 1s after the first (%v)", second.Window, second.Taken, f.Taken)
	}
	for _, irq := range second.IRQs {
		if irq.IRQ == 21 && irq.Rate != 10 || irq.IRQ == 29 && irq.Rate != 0 {
			t.Errorf("second window: IRQ %d at %v/s", irq.IRQ, irq.Rate)
		}
	}
	// Sorted by each key.
	checks := map[top.SortKey]func(a, b top.IRQ) bool{
		top.SortRate: func(a, b top.IRQ) bool { return a.Rate > b.Rate || a.Rate == b.Rate && a.IRQ < b.IRQ },
		top.SortIRQ:  func(a, b top.IRQ) bool { return a.IRQ < b.IRQ },
		top.SortCPU: func(a, b top.IRQ) bool {
			return a.Where.First() < b.Where.First() || a.Where.First() == b.Where.First() && a.IRQ < b.IRQ
		},
		top.SortName: func(a, b top.IRQ) bool { return a.Name() < b.Name() || a.Name() == b.Name() && a.IRQ < b.IRQ },
	}
	for key, before := range checks {
		sorted := f.Sorted(key)
		if len(sorted) != f.Fired || f.Fired != 5 {
			t.Errorf("sort %s: %d IRQs of %d fired, want the 5 that fired", key, len(sorted), f.Fired)
		}
		for i := 1; i < len(sorted); i++ {
			if !before(sorted[i-1], sorted[i]) {
				t.Errorf("sort %s: IRQ %d before IRQ %d", key, sorted[i-1].IRQ, sorted[i].IRQ)
			}
		}
	}
}

// TestTopCPUsComeAndGo: a CPU that comes back online within the window
// brings back the count it kept while offline, and a number freed and
// given to another device restarts at zero: neither shows as a burst.
func TestTopCPUsComeAndGo(t *testing.T) {
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	cfg.Offline = sysfs.NewCPUSet(3)
	for i, q := range cfg.IRQs {
		if q.IRQ == 22 {
			cfg.IRQs[i] = q.WithCounts(1_000_000, 0, 0, 5_000_000)
		}
	}
	r := newRig(t, cfg)
	r.rates(map[int]float64{21: 100})
	wait := r.wait
	ctx := context.Background()
	r.env.Wait = func(ctx context.Context, d time.Duration) error {
		if err := r.sim.SetCPUOnline(3, true); err != nil {
			return err
		}
		if err := r.sim.RemoveIRQ(22); err != nil {
			return err
		}
		if err := r.sim.AddIRQ(sysfstest.MSI(22, "ITS-PCI-MSIX-0000:00:09.0", 0, "eth0").WithCounts(7, 0, 0, 0)); err != nil {
			return err
		}
		return wait(ctx, d)
	}
	report, err := ops.Top(ctx, r.env, ops.TopRequest{Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := report.Frame()
	for _, irq := range f.IRQs {
		want := map[int]float64{21: 100, 22: 7}[irq.IRQ]
		if irq.Rate != want {
			t.Errorf("IRQ %d (%s): %v/s, want %v", irq.IRQ, irq.Name(), irq.Rate, want)
		}
	}
	for _, n := range f.Nodes {
		for _, c := range n.CPUs {
			if c.CPU == 3 && (!c.Online || c.Rate != 0) {
				t.Errorf("CPU 3 back online: online %v, %v/s; want online at 0/s", c.Online, c.Rate)
			}
		}
	}
}

// fakeCounter stands for the eBPF counter: it counts what the simulator
// fires, per IRQ and CPU, from when the test made it.
type fakeCounter struct {
	sim   *sysfstest.Sim
	start map[int]map[int]uint64
	fail  error
}

func (c *fakeCounter) read() (map[int]map[int]uint64, error) {
	in, err := c.sim.FS().Interrupts()
	if err != nil {
		return nil, err
	}
	out := map[int]map[int]uint64{}
	for _, row := range in.IRQs {
		out[row.IRQ] = map[int]uint64{}
		for i, cpu := range in.CPUs {
			out[row.IRQ][cpu] = row.Counts[i]
		}
	}
	return out, nil
}

func (c *fakeCounter) Snapshot() (ebpf.Counts, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	now, err := c.read()
	if err != nil {
		return nil, err
	}
	out := ebpf.Counts{}
	for irq, perCPU := range now {
		counts := ebpf.IRQCounts{PerCPU: map[int]uint64{}}
		for cpu, n := range perCPU {
			if d := n - c.start[irq][cpu]; d > 0 {
				counts.PerCPU[cpu] = d
			}
		}
		if len(counts.PerCPU) > 0 {
			out[irq] = counts
		}
	}
	return out, nil
}

// TestTopEBPFCounts: with a counter (top --ebpf) the counts come from it,
// and the frame says so; a counter that fails fails the frame.
func TestTopEBPFCounts(t *testing.T) {
	r := vm4(t)
	counter := &fakeCounter{sim: r.sim}
	var err error
	if counter.start, err = counter.read(); err != nil {
		t.Fatal(err)
	}
	report, err := ops.Top(context.Background(), r.env, ops.TopRequest{Interval: time.Second, Counter: counter})
	if err != nil {
		t.Fatal(err)
	}
	f := report.Frame()
	if f.Method != top.MethodEBPF || !strings.Contains(top.Render(f, top.View{Width: 120}), "counted with eBPF") {
		t.Errorf("method %q; want %q, said in the title", f.Method, top.MethodEBPF)
	}
	got := map[int]float64{}
	for _, irq := range f.IRQs {
		if irq.Rate > 0 {
			got[irq.IRQ] = irq.Rate
		}
	}
	if want := map[int]float64{21: 1500, 29: 800, 22: 30, 26: 120, 11: 1000}; !maps.Equal(got, want) {
		t.Errorf("rates %v, want %v", got, want)
	}
	counter.fail = errors.New("map lookup failed")
	if _, err := ops.Top(context.Background(), r.env, ops.TopRequest{Interval: time.Second, Counter: counter, Since: report}); err == nil || !strings.Contains(err.Error(), "map lookup failed") {
		t.Errorf("a failing counter: err = %v", err)
	}
}

// TestTopRefuses: a window that is not positive, and --ebpf on a fixture
// tree, are bad requests; nothing is read.
func TestTopRefuses(t *testing.T) {
	r := vm4(t)
	if _, err := ops.Top(context.Background(), r.env, ops.TopRequest{}); !errors.Is(err, ops.ErrBadRequest) {
		t.Errorf("interval 0: err = %v, want ErrBadRequest", err)
	}
	if _, err := ops.OpenTopCounter(r.sim.FS()); !errors.Is(err, ops.ErrBadRequest) {
		t.Errorf("--ebpf on a fixture tree: err = %v, want ErrBadRequest", err)
	}
}

// TestTopEBPFLive counts this machine's interrupts with the real eBPF
// counter for one window (the wait returns at once: the test asserts what
// the frame holds, not how many interrupts fired). It needs root and a
// kernel with the irq tracepoints, and says why it skips without them. It
// only reads: the state is not kept and nothing is written.
func TestTopEBPFLive(t *testing.T) {
	fs, err := sysfs.NewFS("/proc", "/sys")
	if err != nil {
		t.Skipf("no /proc and /sys here: %v", err)
	}
	counter, err := ops.OpenTopCounter(fs)
	if errors.Is(err, ops.ErrNoEBPF) {
		t.Skipf("top --ebpf cannot count here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close()
	noWait := func(context.Context, time.Duration) error { return nil }
	report, err := ops.Top(context.Background(), &ops.Env{FS: fs, Wait: noWait}, ops.TopRequest{Interval: time.Second, Counter: counter})
	if err != nil {
		t.Fatal(err)
	}
	f := report.Frame()
	if f.Method != top.MethodEBPF {
		t.Errorf("method %q, want %q", f.Method, top.MethodEBPF)
	}
	online := 0
	for _, n := range f.Nodes {
		for _, c := range n.CPUs {
			if c.Online {
				online++
			}
		}
	}
	if want := report.State.Snapshot.CPUs.Online.Len(); online != want {
		t.Errorf("%d online CPUs in the frame, the machine has %d", online, want)
	}
	var b bytes.Buffer
	if err := top.WriteJSON(&b, f); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc["method"] != "ebpf" {
		t.Errorf("JSON frame %s: %v", b.String(), err)
	}
}

// TestSortKeyOf: the keys of the live view select the sort keys.
func TestSortKeyOf(t *testing.T) {
	for key, want := range map[byte]top.SortKey{'r': top.SortRate, 'i': top.SortIRQ, 'c': top.SortCPU, 'n': top.SortName} {
		if got, ok := top.SortKeyOf(key); !ok || got != want {
			t.Errorf("key %q: %q, %v; want %q", key, got, ok, want)
		}
	}
	for _, key := range []byte{'q', 'p', 0x1b, 'R'} {
		if got, ok := top.SortKeyOf(key); ok {
			t.Errorf("key %q selects %q, want nothing", key, got)
		}
	}
}

// golden compares got with testdata/NAME.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./top -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("frame differs from %s (go test ./top -update accepts it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}
