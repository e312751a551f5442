package daemon

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// busyRates are the rates of the three virtio-serial MSIs of loadHarness.
var busyRates = map[int]float64{40: 60, 41: 30, 42: 15}

// syncBuffer is a log the test reads while the daemon writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loadHarness is the harness on VM4 (6.12) with three busy virtio-serial
// MSIs, 40 and 41 on CPU1 and 42 on CPU3 as the kernel put them, and a
// clock of the test's: window lets time pass, the IRQs firing meanwhile,
// then runs the periodic check.
type loadHarness struct {
	*harness
	mu  sync.Mutex
	now time.Time
	log *syncBuffer
}

func startLoadHarness(t *testing.T) *loadHarness {
	t.Helper()
	sim := sysfstest.New(t, sysfstest.VM4Busy(sysfstest.Kernel612))
	for irq, rate := range busyRates {
		if err := sim.SetRate(irq, rate); err != nil {
			t.Fatal(err)
		}
	}
	l := &loadHarness{now: time.Unix(1_000_000, 0), log: &syncBuffer{}}
	l.harness = startOn(t, sim, "", func(d *Daemon) {
		d.Engine = affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, Clock: l.clock})
		d.Logger = slog.New(slog.NewTextHandler(l.log, nil))
	})
	return l
}

func (l *loadHarness) clock() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

// window lets 30 s pass and runs a periodic check; it returns that settle.
func (l *loadHarness) window() Settle {
	l.t.Helper()
	l.mu.Lock()
	l.now = l.now.Add(30 * time.Second)
	l.mu.Unlock()
	if err := l.sim.Advance(30 * time.Second); err != nil {
		l.t.Fatal(err)
	}
	l.src.push(hotplug.Event{Resync: true, Reason: hotplug.ReasonPeriodic, CPU: -1})
	return l.next()
}

// busyWhere returns the effective CPU of each busy IRQ.
func (l *loadHarness) busyWhere() map[int]int {
	where := map[int]int{}
	for irq := range busyRates {
		_, eff, _ := l.sim.State(irq)
		where[irq] = eff.First()
	}
	return where
}

func distinctCPUs(where map[int]int) bool {
	seen := map[int]bool{}
	for _, cpu := range where {
		if seen[cpu] {
			return false
		}
		seen[cpu] = true
	}
	return true
}

// TestDaemonSeparatesBusyIRQs: once it has measured a window, the daemon
// puts the busy IRQs on distinct CPUs, logs the move for load, and shows
// the rates in its metrics; the counts stay within one.
func TestDaemonSeparatesBusyIRQs(t *testing.T) {
	l := startLoadHarness(t)
	if where := l.busyWhere(); distinctCPUs(where) {
		t.Fatalf("the start-up settle, with no rates, already separated them: %v", where)
	}
	l.window()
	l.check(nil)
	if where := l.busyWhere(); !distinctCPUs(where) {
		t.Errorf("after a measured window the busy IRQs are on %v, want three CPUs", where)
	}
	if log := l.log.String(); !strings.Contains(log, "msg=moved") || !strings.Contains(log, "reason=load") || !strings.Contains(log, `why="`) {
		t.Errorf("no move for load in the log:\n%s", log)
	}
	share := testutil.ToFloat64(l.d.Metrics.busiestShare)
	if share < 0.5 || share > 0.6 {
		t.Errorf("irqshift_busiest_cpu_rate_share %.3f, want the busiest IRQ's 60/105", share)
	}
	if n := testutil.ToFloat64(l.d.Metrics.onOffline); n != 0 {
		t.Errorf("irqshift_movable_irqs_on_offline_cpus %v", n)
	}
}

// TestDaemonSteadyUnderLoad: with the busy IRQs apart, windows whose rates
// wobble by ±10%, and one in which an idle IRQ beside a busy one spikes to
// 500/s, move nothing.
func TestDaemonSteadyUnderLoad(t *testing.T) {
	l := startLoadHarness(t)
	l.window()
	l.window()
	rng := rand.New(rand.NewPCG(3, 4))
	var spiked int
	for round := 0; round < 12; round++ {
		for irq, rate := range busyRates {
			if err := l.sim.SetRate(irq, rate*(0.9+0.2*rng.Float64())); err != nil {
				t.Fatal(err)
			}
		}
		switch round {
		case 5:
			// An idle IRQ on the CPU of IRQ 40 fires 500 times a second for
			// one window.
			cpu := l.busyWhere()[40]
			for _, irq := range l.sim.IRQs() {
				_, eff, _ := l.sim.State(irq)
				if _, busy := busyRates[irq]; !busy && l.sim.Kind(irq).Movable() && eff.First() == cpu {
					spiked = irq
					break
				}
			}
			if spiked == 0 {
				t.Fatal("no idle movable IRQ beside IRQ 40")
			}
			if err := l.sim.SetRate(spiked, 500); err != nil {
				t.Fatal(err)
			}
		case 6:
			if err := l.sim.SetRate(spiked, 0); err != nil {
				t.Fatal(err)
			}
		}
		s := l.window()
		if n := countWrites(s.Results); n > 0 {
			t.Errorf("round %d under steady load wrote %d IRQs: %+v", round, n, s.Plan.Moves)
		}
	}
}

// TestDaemonBusyIRQLeavesDyingCPU: when the CPU of a busy IRQ goes offline,
// the quick settle puts it on a CPU with no busy IRQ, and when it comes back
// they stay apart.
func TestDaemonBusyIRQLeavesDyingCPU(t *testing.T) {
	l := startLoadHarness(t)
	l.window()
	before := l.busyWhere()
	if !distinctCPUs(before) {
		t.Fatalf("busy IRQs not apart before the offline: %v", before)
	}
	dying := before[41]
	if err := l.sim.SetCPUOnline(dying, false); err != nil {
		t.Fatal(err)
	}
	l.src.push(cpuEvent(hotplug.Offline, dying))
	l.next()
	l.check(nil)
	after := l.busyWhere()
	if after[41] == dying || !distinctCPUs(after) {
		t.Errorf("CPU %d offline: busy IRQs went from %v to %v, want IRQ 41 alone on a live CPU", dying, before, after)
	}
	if err := l.sim.SetCPUOnline(dying, true); err != nil {
		t.Fatal(err)
	}
	l.src.push(cpuEvent(hotplug.Online, dying))
	l.next()
	l.check(nil)
	if back := l.busyWhere(); !distinctCPUs(back) {
		t.Errorf("CPU %d back: busy IRQs on %v", dying, back)
	}
}
