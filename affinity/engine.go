package affinity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/irqshift/irqshift/internal/ctxsleep"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// EngineConfig is what an Engine is built from.
type EngineConfig struct {
	FS sysfs.FS
	// Kernel receives the IRQ writes; nil means FS.
	Kernel Kernel
	// Hotplug takes CPUs offline and online; nil means FS.
	Hotplug Hotplug
	Banned  BannedCPUs
	Policy  Policy
	// IncludePinned lets rebalance move pinned IRQs.
	IncludePinned bool
	// Balance is what the planner evens out; "" is BalanceLoad.
	Balance Balance
	// Rules are the operator's device rules; nil for none.
	Rules *rules.Set
	// NoLearnPins: masks found are never learned as pins (Settings).
	NoLearnPins bool
	// NUMA keeps each IRQ on its device's NUMA node (--numa local); false
	// spreads every IRQ over all allowed CPUs (--numa ignore).
	NUMA bool
	// TrackPins turns on learning pins from the masks found in each
	// snapshot. It needs the written masks to survive between runs (a
	// state file): without it every mask irqshift wrote would look like a
	// pin.
	TrackPins bool
	// CacheStaticCPUs makes Load read the CPU files that do not change at
	// run time once, and then only the online list (the daemon);
	// ForgetCPUs drops the cache.
	CacheStaticCPUs bool
	Logger          *slog.Logger
	// Clock stamps each state (State.Taken), the time rates are measured
	// by; nil is time.Now. Tests pass the clock they advance the
	// simulator's counts with.
	Clock func() time.Time
	// TrackRates makes every full Load measure the IRQs' rates since the
	// last full Load at least MinRateWindow before, and plan with the
	// median of the last three such windows (RateHistory): the daemon.
	TrackRates bool
}

// Engine ties snapshot, classification, planning and applying together. The
// one-shot commands build one per run; the daemon keeps one, so that what
// it learned and its cursor survive between events. Restore and Saved move
// its state to and from the state file.
type Engine struct {
	fs      sysfs.FS
	kernel  Kernel
	hotplug Hotplug
	banned  BannedCPUs
	policy  Policy
	memory  Memory
	planner Planner
	// drained are the CPUs the operator drained (irqshift drain, or
	// irqshift offline): out of every plan's allowed set until undrained.
	drained         Drains
	trackPins       bool
	cacheStaticCPUs bool
	noCounts        bool
	numa            bool
	staticCPUs      *sysfs.CPUInfo
	// written is what irqshift wrote last to each IRQ, to tell its own
	// masks from the admin's pins.
	written Written
	// dryRun writes nothing (SetDryRun).
	dryRun bool
	logger *slog.Logger
	// transient are online CPU sets that existed since the last Load (the
	// daemon derives them from the events of a batch). A mask equal to one
	// is the kernel's overwrite or a driver's hotplug callback, not a pin.
	transient []sysfs.CPUSet
	// last is the snapshot of the last Load or LoadChanged, which
	// LoadChanged brings up to date.
	last *sysfs.Snapshot
	// touched are the IRQs written since last was read: LoadChanged reads
	// them again rather than trust what a write should have done.
	touched map[int]bool
	// lastIRQs is the classification of last.
	lastIRQs []IRQ
	// followers are the IRQs whose masks a driver's own hotplug callback
	// rewrote (virtio-net sets its queues to the online CPUs), number →
	// Key: LoadChanged reads them again on every event.
	followers map[int]string
	// rates are the IRQs' rates the planner sees (SetRates), by Key.
	rates Rates
	clock func() time.Time
	// trackRates, history and lastFull measure rates between full loads
	// (EngineConfig.TrackRates): lastFull is the start of the window.
	trackRates bool
	history    RateHistory
	lastFull   *State
	// ratesChanged: SetRates ran since the last state was given rates, so
	// the next one gives every IRQ its rate again, not only the IRQs an
	// incremental snapshot read again.
	ratesChanged bool
	// rules are the operator's device rules (SetRules), ruleByName the
	// same by name; matched remembers the rule (or nil) of each IRQ
	// identity; rematch makes the next state match every IRQ again.
	rules       *rules.Set
	ruleByName  map[string]*rules.Rule
	matched     map[string]*rules.Rule
	rematch     bool
	showDevices bool
	// ruleEffects: a rule has effects classification must be given
	// (ignore, node).
	ruleEffects bool
	// devices are the IRQs' devices as last read (sysfs.FS.IRQDevices).
	devices map[int]sysfs.Device
	// foreignActive: another balancer is writing masks (SetForeignWriters);
	// foreign: the next Load learns no pin, true while one is and for the
	// first Load after the last one ended, which sees its last masks.
	foreignActive, foreign bool
	// noLearn: learn no pin at all (Settings.NoLearnPins).
	noLearn bool
}

// NewEngine builds an Engine with an empty state.
func NewEngine(c EngineConfig) *Engine {
	e := &Engine{fs: c.FS, kernel: c.Kernel, hotplug: c.Hotplug, banned: c.Banned, policy: c.Policy,
		trackPins: c.TrackPins, cacheStaticCPUs: c.CacheStaticCPUs, numa: c.NUMA, logger: c.Logger, clock: c.Clock,
		trackRates: c.TrackRates, noLearn: c.NoLearnPins}
	if e.clock == nil {
		e.clock = time.Now
	}
	e.planner.IncludePinned, e.planner.Balance = c.IncludePinned, c.Balance
	e.init()
	e.SetRules(c.Rules)
	return e
}

// Settings are the operator's configuration of the planner, resolved
// once from flags, the environment and the config file (main's settings),
// for commands and the daemon alike.
type Settings struct {
	Banned        BannedCPUs
	Policy        Policy
	IncludePinned bool
	// NUMA keeps each IRQ on its device's NUMA node (--numa local).
	NUMA bool
	// Balance is what the planner evens out (--balance); "" is
	// BalanceLoad.
	Balance Balance
	// NoLearnPins turns off learning pins from masks set by hand
	// (--learn-pins=false): every mask found is taken as not the
	// operator's, and only `irqshift pin` and rules say where an IRQ
	// belongs.
	NoLearnPins bool
	// Rules are the device rules (--rules); nil for none. RulesDir is
	// the directory they came from ("" for none): the daemon follows it
	// and pin --persist writes there.
	Rules    *rules.Set
	RulesDir string
}

// With returns c configured with s: the one way an engine gets the
// operator's settings, in a command and in the daemon.
func (c EngineConfig) With(s Settings) EngineConfig {
	c.Banned, c.Policy, c.IncludePinned, c.NUMA, c.Balance, c.Rules = s.Banned, s.Policy, s.IncludePinned, s.NUMA, s.Balance, s.Rules
	c.NoLearnPins = s.NoLearnPins
	return c
}

// Configure replaces the operator's configuration (SIGHUP): the bans it
// keeps are those the settings give.
func (e *Engine) Configure(s Settings) {
	e.banned, e.policy, e.planner.IncludePinned, e.numa, e.planner.Balance = s.Banned, s.Policy, s.IncludePinned, s.NUMA, s.Balance
	e.noLearn = s.NoLearnPins
	e.SetRules(s.Rules)
}

// SetRates gives the planner the IRQs' rates, by Key (MeasureRates, or a
// RateHistory's smoothed rates); the next states carry them in IRQ.Rate.
// nil forgets them.
func (e *Engine) SetRates(r Rates) { e.rates, e.ratesChanged = r, true }

// Rates are the rates SetRates gave.
func (e *Engine) Rates() Rates { return e.rates }

// Sample loads the state, lets window pass with wait (nil sleeps), loads it
// again and gives the planner the rates measured in between. It returns the
// second state, carrying the rates. A window of 0 loads once and measures
// nothing.
func (e *Engine) Sample(ctx context.Context, window time.Duration, wait func(context.Context, time.Duration) error) (*State, error) {
	first, err := e.Load()
	if err != nil || window <= 0 {
		return first, err
	}
	if wait == nil {
		wait = Sleep
	}
	if err := wait(ctx, window); err != nil {
		return nil, err
	}
	second, err := e.Load()
	if err != nil {
		return nil, err
	}
	e.SetRates(MeasureRates(first, second))
	e.applyRates(second)
	e.ratesChanged = false // second is the last state: its IRQs carry them
	return second, nil
}

// Sleep waits d, or until ctx is done: the wait of a sampling window on
// the live system.
var Sleep = ctxsleep.Sleep

// measure ends a rate window at st, a full load, if the window is long
// enough (else the window goes on to the next one), and gives st the
// smoothed rates.
func (e *Engine) measure(st *State) {
	if e.lastFull == nil {
		e.lastFull = st
		return
	}
	if st.Taken.Sub(e.lastFull.Taken) < MinRateWindow {
		return
	}
	e.history.Add(MeasureRates(e.lastFull, st))
	e.lastFull = st
	e.SetRates(e.history.Smoothed())
	e.applyRates(st)
	e.ratesChanged = false // st is the last state: its IRQs carry them
}

// RateWindows is how many rate windows the engine has measured, up to
// the three it keeps (EngineConfig.TrackRates).
func (e *Engine) RateWindows() int { return e.history.Windows() }

// applyRates sets IRQ.Rate of st's IRQs from the engine's rates.
func (e *Engine) applyRates(st *State) {
	for i := range st.IRQs {
		st.IRQs[i].Rate = e.rates[Key(st.IRQs[i])]
	}
}

// applyRatesTo sets IRQ.Rate of the IRQs of st numbered in any of lists.
func (e *Engine) applyRatesTo(st *State, lists ...[]int) {
	fresh := map[int]bool{}
	for _, list := range lists {
		for _, n := range list {
			fresh[n] = true
		}
	}
	if len(fresh) == 0 {
		return
	}
	for i := range st.IRQs {
		if fresh[st.IRQs[i].IRQ] {
			st.IRQs[i].Rate = e.rates[Key(st.IRQs[i])]
		}
	}
}

// NodeCPUs turns CPUInfo.Node (CPU → node) into node → CPUs.
func NodeCPUs(info sysfs.CPUInfo) map[int]sysfs.CPUSet {
	nodes := map[int]sysfs.CPUSet{}
	for cpu, node := range info.Node {
		if node >= 0 {
			nodes[node] = nodes[node].With(cpu)
		}
	}
	return nodes
}

// FS is the file system the engine reads.
func (e *Engine) FS() sysfs.FS { return e.fs }

// Banned is the configured set of banned CPUs.
func (e *Engine) Banned() BannedCPUs { return e.banned }

// SetBanned replaces the banned CPUs (the daemon's followed ban sources).
func (e *Engine) SetBanned(b BannedCPUs) { e.banned = b }

// SetTrackPins turns learning pins from snapshots on or off.
func (e *Engine) SetTrackPins(on bool) { e.trackPins = on }

// SetNoCounts makes snapshots leave the interrupt counts out (the daemon,
// which plans from the rows and never shows counts; Total is then 0).
func (e *Engine) SetNoCounts(on bool) { e.noCounts = on }

// SetTrackRates turns measuring rates between full loads on or off
// (EngineConfig.TrackRates).
func (e *Engine) SetTrackRates(on bool) { e.trackRates = on }

// SetCacheStaticCPUs turns the cache of the static CPU files on or off.
func (e *Engine) SetCacheStaticCPUs(on bool) { e.cacheStaticCPUs = on }

// NoteTransient records an online CPU set the machine went through since
// the last Load: a mask equal to it is not learned as a pin.
func (e *Engine) NoteTransient(online sysfs.CPUSet) { e.transient = append(e.transient, online) }

// Planner is the engine's planner (its cursor and pins), for plans that
// are only shown.
func (e *Engine) Planner() *Planner { return &e.planner }

// Pins are the recorded pins.
func (e *Engine) Pins() Pins { e.init(); return e.planner.Pins }

// Pin records a pin of irq to cpus.
func (e *Engine) Pin(irq IRQ, cpus sysfs.CPUSet) {
	e.init()
	e.planner.Pins[Key(irq)] = Pin{IRQ: irq.IRQ, CPUs: cpus}
}

// Unpin forgets the pin of irq and marks its current mask as not the
// admin's, so that no later snapshot learns it again.
func (e *Engine) Unpin(irq IRQ) (Pin, bool) {
	e.init()
	pin, ok := e.planner.Pins[Key(irq)]
	if !ok || !e.planner.Pins.Forget(irq.IRQ) {
		return Pin{}, false
	}
	e.written[Key(irq)] = irq.Affinity
	return pin, true
}

// UnpinNumber forgets the pins of IRQ number n when no IRQ of that number
// exists any more (its driver was unloaded): the operator must be able to
// drop a pin whose IRQ is gone. It returns one of the pins forgotten.
func (e *Engine) UnpinNumber(n int) (Pin, bool) {
	e.init()
	var pin Pin
	for _, key := range slices.Sorted(maps.Keys(e.planner.Pins)) {
		if p := e.planner.Pins[key]; p.IRQ == n {
			pin = p
			break
		}
	}
	if !e.planner.Pins.Forget(n) {
		return Pin{}, false
	}
	return pin, true
}

// Drains are the drained CPUs and why.
func (e *Engine) Drains() Drains { e.init(); return e.drained }

// Drain records cpu as drained by by.
func (e *Engine) Drain(cpu int, by DrainSource) { e.init(); e.drained[cpu] = by }

// Undrain forgets the drain of cpu and reports whether there was one.
func (e *Engine) Undrain(cpu int) bool {
	_, ok := e.drained[cpu]
	delete(e.drained, cpu)
	return ok
}

// Hotplug writes /sys/devices/system/cpu/cpuN/online; sysfs.FS implements
// it, and so does the test simulator.
type Hotplug interface {
	SetCPUOnline(cpu int, online bool) error
}

// SetCPUOnline goes through Hotplug, or FS when it is nil.
func (e *Engine) SetCPUOnline(cpu int, online bool) error {
	if e.hotplug != nil {
		return e.hotplug.SetCPUOnline(cpu, online)
	}
	return e.fs.SetCPUOnline(cpu, online)
}

// State is one classified snapshot.
type State struct {
	Snapshot *sysfs.Snapshot
	// Taken is when the snapshot was read (EngineConfig.Clock): rates are
	// measured between two states' Taken.
	Taken time.Time
	IRQs  []IRQ
	// Banned is every CPU no IRQ may go to by configuration or isolation;
	// Drained those the operator drained; Allowed is online minus both.
	Banned  sysfs.CPUSet
	Drained sysfs.CPUSet
	Allowed sysfs.CPUSet
	// BannedBy names, for each banned CPU, where its ban comes from
	// (BanSources).
	BannedBy map[int][]BanSource
	// LearnedPins are the pins this snapshot taught (set by hand since the
	// last one).
	LearnedPins []Pin
}

// Keys is the set of Key(irq) of the snapshot's IRQs: what Saved.Prune
// keeps.
func (st *State) Keys() map[string]bool {
	keys := make(map[string]bool, len(st.IRQs))
	for _, irq := range st.IRQs {
		keys[Key(irq)] = true
	}
	return keys
}

func (e *Engine) init() {
	if e.memory == nil {
		e.memory = Memory{}
	}
	if e.written == nil {
		e.written = Written{}
	}
	if e.planner.Pins == nil {
		e.planner.Pins = Pins{}
	}
	if e.drained == nil {
		e.drained = Drains{}
	}
}

// Load snapshots the kernel state and classifies it.
func (e *Engine) Load() (*State, error) {
	var static *sysfs.CPUInfo
	if e.cacheStaticCPUs {
		static = e.staticCPUs
	}
	// A hotplug during the snapshot changes the online set first and the
	// masks after (the kernel's overwrite, virtio-net's callback): re-read
	// the online set after the masks, and learn no pin from a snapshot in
	// which it moved.
	var snap *sysfs.Snapshot
	consistent := false
	for try := 0; try < 5 && !consistent; try++ {
		s, err := e.fs.Snapshot(sysfs.SnapshotOptions{Static: static, Previous: e.last, NoCounts: e.noCounts})
		if err != nil {
			return nil, err
		}
		snap = s
		consistent = e.onlineStill(s.CPUs.Online)
	}
	if e.cacheStaticCPUs && e.staticCPUs == nil {
		cpus := snap.CPUs
		e.staticCPUs = &cpus
	}
	st := e.state(snap)
	if e.trackRates {
		e.measure(st)
	}
	if e.trackPins && consistent {
		e.learnFollowers(st)
		// The kernel's own masks are not pins: the online sets of a
		// hotplug burst, and a NUMA node's CPUs (the default mask of a
		// device's MSIs on a multi-node machine, 4-7 for node 1), also
		// once some of them are offline.
		defaults := slices.Clone(e.transient)
		for _, cpus := range NodeCPUs(snap.CPUs) {
			defaults = append(defaults, cpus, cpus.Intersect(snap.CPUs.Online))
		}
		for _, irq := range st.IRQs {
			for _, set := range defaults {
				if irq.Movable() && irq.Affinity.Equal(set) {
					e.written[Key(irq)] = irq.Affinity
				}
			}
		}
		if e.foreign || e.noLearn {
			// Another balancer writes masks now (ForeignWriters): none of
			// them is the operator's intent.
			e.disownMasks(st)
		}
		st.LearnedPins = e.driversOwn(e.planner.Pins.LearnPins(st.IRQs, snap.CPUs.Online, snap.CPUs.Possible, e.written), st)
		e.foreign = e.foreignActive
	}
	e.transient = nil
	return st, nil
}

// LoadChanged is Load for a CPU hotplug event of the CPUs in changed, at a
// cost that does not grow with the machine: it reads the online CPUs,
// decides from the classification of the last snapshot which IRQs the
// event can have moved (hotplugRereads: those effective on a CPU that
// changed, those whose mask kept no online CPU, those irqshift wrote
// since, those a driver rewrites on hotplug; never a per-CPU one), and
// has sysfs.FS.Refresh read only those again, and the IRQs that appeared
// or vanished. It learns no pins (the masks an event leaves are the
// kernel's) and keeps the transient online sets for the next Load.
// Without a last snapshot, or where one cannot be refreshed, it is Load.
func (e *Engine) LoadChanged(changed sysfs.CPUSet) (*State, error) {
	if e.last == nil {
		return e.Load()
	}
	// A number now used by another device is read again for nothing,
	// which is harmless.
	also := make([]int, 0, len(e.touched)+len(e.followers))
	for irq := range e.touched {
		also = append(also, irq)
	}
	for irq := range e.followers {
		also = append(also, irq)
	}
	slices.Sort(also)
	for try := 0; try < 5; try++ {
		online, err := e.fs.OnlineWithin(e.last.CPUs.Possible)
		if err != nil {
			return nil, err
		}
		reread := hotplugRereads(e.lastIRQs, e.last.CPUs.Online, online, changed, also)
		snap, err := e.fs.Refresh(e.last, online, reread)
		if errors.Is(err, sysfs.ErrNoRefresh) {
			return e.Load()
		}
		if err != nil {
			return nil, err
		}
		if e.onlineStill(snap.CPUs.Online) {
			return e.state(snap), nil
		}
		// The machine changed again while it was read: read the IRQs of
		// the CPUs of that change too.
		changed = changed.Union(snap.CPUs.Online.Difference(e.last.CPUs.Online)).Union(e.last.CPUs.Online.Difference(snap.CPUs.Online))
	}
	return e.Load()
}

// onlineStill reports whether the online CPUs are still online (read
// after a snapshot: a hotplug during it makes it inconsistent).
func (e *Engine) onlineStill(online sysfs.CPUSet) bool {
	after, err := e.fs.OnlineCPUs()
	return err == nil && after.Equal(online)
}

// state classifies snap and makes it the last snapshot.
func (e *Engine) state(snap *sysfs.Snapshot) *State {
	e.init()
	e.last, e.touched = snap, nil
	e.planner.Nodes = nil
	if e.numa {
		e.planner.Nodes = NodeCPUs(snap.CPUs)
	}
	drained := e.drained.CPUs().Intersect(snap.CPUs.Possible)
	var irqs []IRQ
	if snap.Incremental {
		irqs = classifyRefreshed(e.lastIRQs, snap, e.memory, e.policy)
	} else {
		irqs = Classify(snap, e.memory, e.policy)
	}
	e.matchRules(irqs, snap)
	e.lastIRQs = irqs
	st := &State{
		Snapshot: snap,
		Taken:    e.clock(),
		IRQs:     irqs,
		Banned:   e.banned.All(snap.CPUs),
		BannedBy: e.banned.By(snap.CPUs),
		Drained:  drained,
		Allowed:  e.banned.Allowed(snap.CPUs).Difference(drained),
	}
	switch {
	case e.ratesChanged || !snap.Incremental:
		if e.rates != nil || e.ratesChanged {
			e.applyRates(st)
		}
		e.ratesChanged = false
	case e.rates != nil:
		// The IRQs an event did not make it read again are the last
		// state's, rates and all: a quick settle looks up only the few it
		// read again, not a Key for each of thousands of IRQs.
		e.applyRatesTo(st, snap.Reread, snap.Appeared)
	}
	return st
}

// learnFollowers finds, after a hotplug burst, the movable IRQs whose mask
// is now one of the burst's online sets although the mask irqshift wrote
// kept an online CPU in each of them: the kernel had no reason to
// overwrite it, so a driver's hotplug callback did (virtio-net). They are
// read again on every event from now on.
func (e *Engine) learnFollowers(st *State) {
	if len(e.transient) == 0 {
		return
	}
	for _, irq := range st.IRQs {
		if !irq.Movable() {
			continue
		}
		key := Key(irq)
		wrote, ok := e.written[key]
		if !ok || irq.Affinity.Equal(wrote) {
			continue
		}
		equal, kept := false, true
		for _, set := range e.transient {
			equal = equal || irq.Affinity.Equal(set)
			kept = kept && wrote.Intersects(set)
		}
		if !equal || !kept || e.followers[irq.IRQ] == key {
			continue
		}
		if e.followers == nil {
			e.followers = map[int]string{}
		}
		e.followers[irq.IRQ] = key
		if e.logger != nil {
			e.logger.Info("IRQ follows CPU hotplug by itself (a driver rewrites its mask); reading it on every event", "irq", irq.IRQ, "mask", irq.Affinity.String())
		}
	}
}

// Followers are the IRQs (by Key) learned to follow CPU hotplug by
// themselves.
func (e *Engine) Followers() []string {
	keys := slices.Collect(maps.Values(e.followers))
	slices.Sort(keys)
	return keys
}

// ForgetCPUs drops the cached static CPU files, so the next Load reads
// them all again (on SIGHUP, and after a resync for a reason other than a
// hotplug event).
func (e *Engine) ForgetCPUs() { e.staticCPUs = nil }

// writer is where writes go: Kernel, or FS when it is nil, noting each
// IRQ written for LoadChanged; nowhere in a dry run.
func (e *Engine) writer() Kernel {
	k := e.kernel
	if k == nil {
		k = e.fs
	}
	if e.dryRun {
		return &dryKernel{Kernel: k, wrote: map[int]sysfs.CPUSet{}}
	}
	return touchingKernel{Kernel: k, e: e}
}

// SetDryRun makes the engine plan and "apply" without writing anything
// (irqshift watch --dry-run): each write is taken as done, and read back
// as where it was asked to go, so that what the daemon logs is what it
// would have done. Nothing it would have written is remembered as
// written, so that the kernel's unchanged masks are not taken for pins.
func (e *Engine) SetDryRun(on bool) { e.dryRun = on }

// DryRun reports whether the engine writes nothing.
func (e *Engine) DryRun() bool { return e.dryRun }

// dryKernel accepts every write and writes nothing.
type dryKernel struct {
	Kernel
	wrote map[int]sysfs.CPUSet
}

func (k *dryKernel) WriteAffinity(irq int, cpus sysfs.CPUSet) error {
	k.wrote[irq] = cpus
	return nil
}

// ReadEffective answers a dry write with its first CPU: where a chip that
// delivers to one CPU of the mask would put it.
func (k *dryKernel) ReadEffective(irq int) (sysfs.CPUSet, error) {
	if cpus, ok := k.wrote[irq]; ok {
		return sysfs.NewCPUSet(cpus.First()), nil
	}
	return k.Kernel.ReadEffective(irq)
}

// touchingKernel notes the IRQs written through it in the engine.
type touchingKernel struct {
	Kernel
	e *Engine
}

func (k touchingKernel) WriteAffinity(irq int, cpus sysfs.CPUSet) error {
	if k.e.touched == nil {
		k.e.touched = map[int]bool{}
	}
	k.e.touched[irq] = true
	return k.Kernel.WriteAffinity(irq, cpus)
}

// ProbePins tells managed IRQs from pins before anything relies on the
// pins of st: on kernel 6.1 a managed queue's mask ("2") looks exactly like
// an admin's pin and only a refused write tells them apart. Each newly
// learned pin is written back unchanged, a harmless write; a refusal
// drops the pin, remembers the IRQ as managed and reclassifies it in st.
// Only writing commands and the daemon call it, never list or --dry-run.
func (e *Engine) ProbePins(st *State) {
	if len(st.LearnedPins) == 0 {
		return
	}
	kept := st.LearnedPins[:0]
	for _, pin := range st.LearnedPins {
		i := slices.IndexFunc(st.IRQs, func(irq IRQ) bool { return irq.IRQ == pin.IRQ })
		if i < 0 {
			continue
		}
		mask := st.IRQs[i].Affinity
		if mask.Intersect(st.Allowed).IsEmpty() {
			// Never write a mask without an online, allowed CPU, not even
			// the kernel's own: the planner will try it, and learn then.
			kept = append(kept, pin)
			continue
		}
		err := e.writer().WriteAffinity(pin.IRQ, mask)
		if !errors.Is(err, sysfs.ErrUnmovable) {
			kept = append(kept, pin)
			continue
		}
		reason := fmt.Sprintf("managed: the kernel refused a write (%s)", errnoText(err))
		e.memory.Learn(st.IRQs[i], reason)
		delete(e.planner.Pins, Key(st.IRQs[i]))
		st.IRQs[i].Class, st.IRQs[i].Reason = ClassManaged, reason
	}
	st.LearnedPins = kept
}

// replans bounds the re-plans of Rebalance: each one follows a refusal
// that taught a managed IRQ, and a machine has few of those per CPU.
const replans = 4

// Rebalance plans a rebalance of st and applies it. When the kernel
// refuses some writes (managed IRQs that only a refusal reveals, on 6.1),
// the plan had counted them as movable and given them a place: it loads
// the state again, now knowing them, and rebalances again so the others
// end up even, until no write is refused (at most replans times).
func (e *Engine) Rebalance(ctx context.Context, st *State) (*State, Plan, []Result, error) {
	// A plan from a quick snapshot (LoadChanged) answers CPU events: it
	// leaves cutting the busiest CPU to the full settle after them.
	e.planner.DeferCuts = st.Snapshot != nil && st.Snapshot.Incremental
	plan, err := e.planner.Rebalance(st.IRQs, st.Allowed)
	e.planner.DeferCuts = false
	if err != nil {
		return st, plan, nil, err
	}
	// From now on the IRQs are where a plan with rates put them: the next
	// plans keep a cut of the busiest CPU only when it is material.
	e.planner.Steady = e.planner.Steady || len(e.rates) > 0
	results := e.Applier(st, sysfs.CPUSet{}).Apply(ctx, plan, st.IRQs)
	refused := func(rs []Result) bool {
		return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == StatusUnmovable })
	}
	last := results
	for try := 0; try < replans && refused(last) && ctx.Err() == nil; try++ {
		again, err := e.Load()
		if err != nil {
			return st, plan, results, err
		}
		more, err := e.planner.Rebalance(again.IRQs, again.Allowed)
		if err != nil {
			return st, plan, results, err
		}
		last = e.Applier(again, sysfs.CPUSet{}).Apply(ctx, more, again.IRQs)
		plan.Moves = append(plan.Moves, more.Moves...)
		results = append(results, last...)
		st = again
	}
	return st, plan, results, nil
}

// Applier returns an Applier for plans made from st. avoid holds CPUs a
// retried move must not go to (those being drained).
func (e *Engine) Applier(st *State, avoid sysfs.CPUSet) *Applier {
	e.init()
	return &Applier{
		Kernel:     e.writer(),
		Allowed:    st.Allowed.Difference(avoid),
		Banned:     st.Banned.Union(st.Drained),
		Avoid:      avoid,
		Planner:    &e.planner,
		Memory:     e.memory,
		Written:    e.writtenUnlessDry(),
		Logger:     e.logger,
		RetryDelay: 10 * time.Millisecond,
	}
}

// writtenUnlessDry is where an Applier records its writes: nowhere in a
// dry run, whose writes never reached the kernel.
func (e *Engine) writtenUnlessDry() Written {
	if e.dryRun {
		return nil
	}
	return e.written
}

// Restore puts a saved state into the engine.
func (e *Engine) Restore(s state.Saved) {
	e.drained = s.Drained
	e.planner.Cursor = Cursor(s.Cursor)
	e.planner.Pins = s.Pins
	e.written = s.Written
	e.memory = s.Managed
}

// Saved returns the engine's state, for a state.Session to commit.
func (e *Engine) Saved() state.Saved {
	s := state.NewSaved()
	s.Cursor = state.Cursor(e.planner.Cursor)
	if e.planner.Pins != nil {
		s.Pins = e.planner.Pins
	}
	if e.written != nil {
		s.Written = e.written
	}
	if e.memory != nil {
		s.Managed = e.memory
	}
	if e.drained != nil {
		s.Drained = e.drained
	}
	return s
}
