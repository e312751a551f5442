package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// fakeSource hands the daemon events the test sends; push blocks until the
// daemon's queue has them all, so a batch pushed while the loop is busy is
// read in one go.
type fakeSource struct {
	in chan []hotplug.Event
}

func newFakeSource() *fakeSource { return &fakeSource{in: make(chan []hotplug.Event)} }

func (f *fakeSource) Run(ctx context.Context, events chan<- hotplug.Event) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case batch := <-f.in:
			for _, ev := range batch {
				events <- ev
			}
		}
	}
}

func (f *fakeSource) push(evs ...hotplug.Event) { f.in <- evs }

func cpuEvent(action hotplug.Action, cpu int) hotplug.Event {
	return hotplug.Event{Action: action, CPU: cpu, Received: time.Now()}
}

// harness runs a Daemon on a simulated 4-CPU VM and collects its settles.
type harness struct {
	t       *testing.T
	sim     *sysfstest.Sim
	src     *fakeSource
	d       *Daemon
	settles chan observed
	cancel  context.CancelFunc
	done    chan error
	reg     *prometheus.Registry
	// held is a full settle next received after quick ones: the next
	// call of next returns it.
	held *observed
	// quick are the quick settles, and rechecks the full settles after
	// them, that next received since the last check.
	quick    []observed
	rechecks []observed
}

// observed is a settle with, for a quick one, the simulator as the daemon
// left it right then (OnSettle runs in the daemon's loop, before the
// recheck that follows).
type observed struct {
	Settle
	online    sysfs.CPUSet
	effective map[int]sysfs.CPUSet // movable IRQs
	// followersKnown: the daemon knew every IRQ the simulated drivers
	// move on hotplug by themselves when it settled.
	followersKnown bool
}

// observe is the harness's OnSettle.
func (h *harness) observe(s Settle) {
	o := observed{Settle: s}
	if !s.Full {
		o.online = h.sim.Online()
		o.effective = map[int]sysfs.CPUSet{}
		for _, irq := range h.sim.IRQs() {
			if _, eff, ok := h.sim.State(irq); ok && h.sim.Kind(irq).Movable() {
				o.effective[irq] = eff
			}
		}
		known := map[int]bool{}
		for _, key := range h.d.Engine.Followers() {
			if n, err := strconv.Atoi(strings.SplitN(key, "/", 2)[0]); err == nil {
				known[n] = true
			}
		}
		o.followersKnown = true
		for _, irq := range h.sim.Followers() {
			o.followersKnown = o.followersKnown && known[irq]
		}
	}
	h.settles <- o
}

func startHarness(t *testing.T, version sysfstest.Version, statePath string, tweak func(*Daemon)) *harness {
	t.Helper()
	sim := sysfstest.New(t, sysfstest.VM4(version))
	return startOn(t, sim, statePath, tweak)
}

func startOn(t *testing.T, sim *sysfstest.Sim, statePath string, tweak func(*Daemon)) *harness {
	t.Helper()
	h := &harness{t: t, sim: sim, src: newFakeSource(), settles: make(chan observed, 64), done: make(chan error, 1), reg: prometheus.NewRegistry()}
	var store *state.Store
	if statePath != "" {
		var err error
		if store, err = state.OpenStore(statePath); err != nil {
			t.Fatal(err)
		}
	}
	h.d = &Daemon{
		Engine:   affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim}),
		Source:   h.src,
		Store:    store,
		Metrics:  NewMetrics(h.reg),
		OnSettle: h.observe,
	}
	if tweak != nil {
		tweak(h.d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.d.Run(ctx) }()
	t.Cleanup(h.stop)
	h.next() // the start-up settle
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		h.t.Fatal("daemon did not stop within 5 s")
	}
}

func (h *harness) recv() observed {
	h.t.Helper()
	if h.held != nil {
		o := *h.held
		h.held = nil
		return o
	}
	select {
	case o := <-h.settles:
		return o
	case <-time.After(10 * time.Second):
		h.t.Fatal("no settle within 10 s")
	}
	return observed{}
}

// next returns the next settle. For the quick settle of CPU events it
// also waits for the full recheck the daemon runs once no event waits
// (after any more quick ones) and keeps them all for check.
func (h *harness) next() Settle {
	h.t.Helper()
	first := h.recv()
	for o := first; !o.Full; {
		h.quick = append(h.quick, o)
		o = h.recv()
		switch {
		case o.Full && o.Reason == "recheck":
			h.rechecks = append(h.rechecks, o)
		case o.Full:
			// Events were lost meanwhile: the resync replaces the recheck.
			h.held = &o
		}
	}
	return first.Settle
}

// check asserts the daemon's promises on the simulator's real state: no
// movable IRQ effective on an offline CPU, and movable IRQs per online CPU
// differing by at most one. It returns the count per CPU.
func (h *harness) check(pinned map[int]bool) map[int]int {
	h.t.Helper()
	return h.checkExcept(pinned, sysfs.CPUSet{})
}

// checkExcept is check for a daemon that keeps IRQs off the CPUs of
// empty (banned or drained): those must hold none, the others spread.
//
// It checks the same of every quick settle since the last check, as the
// daemon left the simulator then, where the daemon knew the IRQs the
// simulated drivers move by themselves (it learns them from the recheck
// after their first move; before, a quick settle cannot know where they
// went, so only "no IRQ on an offline CPU" holds). Such a quick settle
// left nothing to do: its recheck must move nothing.
func (h *harness) checkExcept(pinned map[int]bool, empty sysfs.CPUSet) map[int]int {
	h.t.Helper()
	for _, q := range h.quick {
		spread := q.followersKnown
		h.checkView(fmt.Sprintf("quick settle %s %v: ", q.Reason, describe(q.Events)), q.online, q.effective, pinned, empty, spread)
	}
	known := len(h.quick) > 0 && h.quick[len(h.quick)-1].followersKnown
	for _, r := range h.rechecks {
		if moved := countWrites(r.Results); known && moved > 0 {
			h.t.Errorf("the recheck after %v wrote %d IRQs the quick settle missed: %+v", describe(r.Events), moved, r.Results)
		}
	}
	h.quick, h.rechecks = nil, nil
	effective := map[int]sysfs.CPUSet{}
	for _, irq := range h.sim.IRQs() {
		if _, eff, ok := h.sim.State(irq); ok && h.sim.Kind(irq).Movable() {
			effective[irq] = eff
		}
	}
	return h.checkView("", h.sim.Online(), effective, pinned, empty, true)
}

func countWrites(results []affinity.Result) int {
	n := 0
	for _, r := range results {
		if r.Wrote() {
			n++
		}
	}
	return n
}

// checkView is checkExcept of one view of the simulator: where each
// movable IRQ is effective, and the online CPUs. spread false checks only
// that no IRQ is on an offline CPU or one of empty.
func (h *harness) checkView(what string, online sysfs.CPUSet, effective map[int]sysfs.CPUSet, pinned map[int]bool, empty sysfs.CPUSet, spread bool) map[int]int {
	h.t.Helper()
	load := map[int]int{}
	for _, cpu := range online.CPUs() {
		load[cpu] = 0
	}
	for _, irq := range slices.Sorted(maps.Keys(effective)) {
		eff := effective[irq]
		if !eff.IsSubsetOf(online) {
			h.t.Errorf("%sIRQ %d effective on %s, online %s", what, irq, eff, online)
		}
		if pinned[irq] {
			continue
		}
		for _, cpu := range eff.CPUs() {
			load[cpu]++
		}
	}
	if !spread {
		// A driver that moves its IRQs by itself may have put one on a
		// banned CPU too; the recheck takes it away.
		return load
	}
	lo, hi := 1<<30, 0
	for cpu, n := range load {
		if empty.Contains(cpu) {
			if n > 0 {
				h.t.Errorf("%s%d movable IRQs on CPU%d, which must hold none", what, n, cpu)
			}
			continue
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		h.t.Errorf("%smovable IRQs per CPU %v differ by %d", what, load, hi-lo)
	}
	return load
}

func TestStartSettles(t *testing.T) {
	for _, v := range []sysfstest.Version{sysfstest.Kernel61, sysfstest.Kernel612} {
		t.Run(v.String(), func(t *testing.T) {
			h := startHarness(t, v, "", nil)
			h.check(nil)
		})
	}
}

func TestNoInitialRebalance(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	before := len(sim.Writes())
	startOn(t, sim, "", func(d *Daemon) { d.NoInitialRebalance = true })
	if after := len(sim.Writes()); after != before {
		t.Errorf("--no-initial-rebalance wrote %d times", after-before)
	}
}

func TestOfflineOnlineSequence(t *testing.T) {
	h := startHarness(t, sysfstest.Kernel612, "", nil)
	for _, step := range []struct {
		cpu    int
		online bool
	}{{2, false}, {3, false}, {2, true}, {1, false}, {3, true}, {1, true}} {
		if err := h.sim.SetCPUOnline(step.cpu, step.online); err != nil {
			t.Fatal(err)
		}
		action := hotplug.Offline
		if step.online {
			action = hotplug.Online
		}
		h.src.push(cpuEvent(action, step.cpu))
		s := h.next()
		if s.Reason != SettleReason(action) || s.Reaction <= 0 {
			t.Errorf("settle reason %q reaction %v", s.Reason, s.Reaction)
		}
		load := h.check(nil)
		if step.online && load[step.cpu] == 0 {
			t.Errorf("CPU %d came back but holds no IRQ: %v", step.cpu, load)
		}
	}
	if got := testutil.ToFloat64(h.d.Metrics.events.WithLabelValues("offline")); got != 3 {
		t.Errorf("offline events metric = %v, want 3", got)
	}
	if n := testutil.CollectAndCount(h.d.Metrics.reaction); n != 1 {
		t.Errorf("reaction histogram missing")
	}
}

func TestPinRestoredAfterOnline(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	h := startHarness(t, sysfstest.Kernel612, state, nil)
	// The admin pins the uart (IRQ 13) to CPU3 by hand; the next event
	// (a resync here, SIGHUP or any hotplug in real life) learns it.
	if err := h.sim.WriteAffinity(13, sysfs.NewCPUSet(3)); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Resync: true, Reason: hotplug.ReasonPeriodic, CPU: -1})
	s := h.next()
	if len(s.State.LearnedPins) != 1 || s.State.LearnedPins[0].IRQ != 13 {
		t.Fatalf("learned %+v, want the pin of IRQ 13", s.State.LearnedPins)
	}
	if aff, _, _ := h.sim.State(13); aff.String() != "3" {
		t.Fatalf("the daemon moved a pinned IRQ: mask %s", aff)
	}
	// The kernel takes CPU3 away and breaks the pin.
	if err := h.sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 3))
	h.next()
	h.check(map[int]bool{13: true})
	// CPU3 returns: the pin comes back.
	if err := h.sim.SetCPUOnline(3, true); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Online, 3))
	h.next()
	if aff, eff, _ := h.sim.State(13); aff.String() != "3" || eff.String() != "3" {
		t.Errorf("pin not restored: mask %s effective %s", aff, eff)
	}
	h.check(map[int]bool{13: true})

	// A restart reads the pin from the state file.
	h.stop()
	saved, err := loadSaved(state)
	if err != nil || saved.Pins[affinity.Key(affinity.IRQ{IRQ: 13, Chip: "GICv3", Actions: []string{"uart-pl011"}})].CPUs.String() != "3" {
		t.Errorf("state after stop: %+v, %v", saved.Pins, err)
	}
}

func TestRestartWithStateAndTornFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
	h := startOn(t, sim, state, nil)
	if err := sim.WriteAffinity(13, sysfs.NewCPUSet(1)); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Resync: true, Reason: "periodic", CPU: -1})
	h.next()
	h.stop()

	// Restart: the pin is known, so offline of CPU1 then online restores
	// it even though this process never saw the admin's write.
	h2 := startOn(t, sim, state, nil)
	if err := sim.SetCPUOnline(1, false); err != nil {
		t.Fatal(err)
	}
	h2.src.push(cpuEvent(hotplug.Offline, 1))
	h2.next()
	if err := sim.SetCPUOnline(1, true); err != nil {
		t.Fatal(err)
	}
	h2.src.push(cpuEvent(hotplug.Online, 1))
	h2.next()
	if aff, _, _ := sim.State(13); aff.String() != "1" {
		t.Errorf("after restart, pin not restored: %s", aff)
	}
	h2.stop()

	// A torn state file is reported and rebuilt, never fatal.
	if err := os.WriteFile(state, []byte(`{"version":1,"pins":{"13/GI`), 0o644); err != nil {
		t.Fatal(err)
	}
	h3 := startOn(t, sim, state, nil)
	h3.stop()
	if _, err := loadSaved(state); err != nil {
		t.Errorf("state not rebuilt: %v", err)
	}
}

func TestBurstCoalesced(t *testing.T) {
	var once sync.Once
	var h *harness
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h = startOn(t, sim, "", nil)
	// While the loop is busy in a settle, SMT-off style: two CPUs go at
	// once and both events queue up.
	h.d.OnSettle = func(s Settle) {
		h.observe(s)
		once.Do(func() {
			for _, cpu := range []int{1, 2} {
				if err := sim.SetCPUOnline(cpu, false); err != nil {
					t.Error(err)
				}
			}
			h.src.push(cpuEvent(hotplug.Offline, 1), cpuEvent(hotplug.Offline, 2))
		})
	}
	h.src.push(hotplug.Event{Resync: true, Reason: "periodic", CPU: -1})
	h.next() // the resync, during which the burst arrives
	s := h.next()
	if len(s.Events) != 2 {
		t.Errorf("burst settled in a batch of %d events, want 2 coalesced", len(s.Events))
	}
	h.check(nil)
	for _, w := range sim.Writes()[len(sim.Writes())-len(s.Results):] {
		if w.CPUs.Contains(1) || w.CPUs.Contains(2) {
			t.Errorf("write to an offline CPU: %+v", w)
		}
	}
}

func TestStaleMaskDuringSettle(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h := startOn(t, sim, "", nil)
	// CPU3 goes offline; while the daemon applies, CPU2 goes too, right at
	// the first write that targets it.
	if err := sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	for _, irq := range sim.IRQs() {
		if sim.Kind(irq).Movable() {
			sim.OfflineAtWrite(irq, 2)
			break
		}
	}
	h.src.push(cpuEvent(hotplug.Offline, 3))
	s := h.next()
	for _, r := range s.Results {
		if r.Status == affinity.StatusFailed {
			t.Errorf("IRQ %d failed: %s", r.IRQ, r.Reason)
		}
	}
	// The loop learns of CPU2 with its own event and settles again.
	h.src.push(cpuEvent(hotplug.Offline, 2))
	h.next()
	h.check(nil)
}

func TestEnobufsResync(t *testing.T) {
	h := startHarness(t, sysfstest.Kernel612, "", nil)
	// Events were lost: CPU2 went offline without an event reaching us.
	if err := h.sim.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Resync: true, Reason: hotplug.ReasonENOBUFS, CPU: -1})
	if s := h.next(); s.Reason != "resync" {
		t.Errorf("reason %q", s.Reason)
	}
	h.check(nil)
	if got := testutil.ToFloat64(h.d.Metrics.resyncs.WithLabelValues("enobufs")); got != 1 {
		t.Errorf("resync metric = %v", got)
	}
}

// TestConfirmAfterSettle runs the Confirmer on the simulator: the moved
// IRQs that fire land on their new CPUs (verified), and one the test moves
// behind the daemon's back is counted as misrouted.
func TestConfirmAfterSettle(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	confirmed := make(chan struct{}, 4)
	h := startOn(t, sim, "", func(d *Daemon) {
		fire := func(ctx context.Context, window time.Duration) error {
			// Interrupt load during the window: the rng and the mmio
			// virtio fire; the uart was moved away behind our back.
			for _, irq := range []int{21, 22, 13} {
				if err := sim.AddCounts(irq, 100); err != nil {
					return err
				}
			}
			return nil
		}
		c := &Confirmer{Sampler: sysfs.ProcSampler{FS: sim.FS(), Wait: fire}, Window: time.Millisecond, Metrics: d.Metrics, Logger: slog.New(slog.DiscardHandler)}
		d.AfterApply = func(ctx context.Context, st *affinity.State, results []affinity.Result) {
			// Someone moves the uart elsewhere right after our write.
			for _, r := range results {
				if r.IRQ == 13 {
					other := (r.To.First() + 1) % 4
					if err := sim.WriteAffinity(13, sysfs.NewCPUSet(other)); err != nil {
						t.Error(err)
					}
				}
			}
			c.AfterApply(ctx, st, results)
			confirmed <- struct{}{}
		}
	})
	select {
	case <-confirmed:
	case <-time.After(10 * time.Second):
		t.Fatal("no confirmation after the start-up settle")
	}
	verified := testutil.ToFloat64(h.d.Metrics.verifiedMoves)
	misrouted := testutil.ToFloat64(h.d.Metrics.misroutedIRQs)
	if verified < 2 || misrouted != 1 {
		t.Errorf("verified %v misrouted %v; want >= 2 and 1 (the uart)", verified, misrouted)
	}
}

func loadSaved(path string) (state.Saved, error) {
	store, err := state.OpenStore(path)
	if err != nil {
		return state.Saved{}, err
	}
	return store.Load()
}
