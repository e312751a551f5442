package affinity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/irqshift/irqshift/sysfs"
)

// Engine ties snapshot, classification, planning and applying together. The
// one-shot commands build one per run; the daemon keeps one, so that its
// Memory and Planner cursor survive between events.
type Engine struct {
	FS sysfs.FS
	// Kernel receives the writes; nil means FS.
	Kernel Kernel
	// Hotplug takes CPUs offline and online; nil means FS.
	Hotplug Hotplug
	Banned  BannedCPUs
	Policy  Policy
	Memory  Memory
	Planner Planner
	// Drained are the CPUs the operator drained (irqshift drain, or
	// irqshift offline): out of every plan's allowed set until undrained.
	Drained Drains
	// TrackPins turns on learning pins from the masks found in each
	// snapshot. It needs Written to survive between runs (a state file):
	// without it every mask irqshift wrote would look like a pin.
	TrackPins bool
	// CacheStaticCPUs makes Load read the CPU files that do not change at
	// run time once, and then only the online list. The daemon sets it;
	// Reload (SIGHUP) forgets the cache.
	CacheStaticCPUs bool
	staticCPUs      *sysfs.CPUInfo
	// Written is what irqshift wrote last to each IRQ, to tell its own
	// masks from the admin's pins.
	Written Written
	Logger  *slog.Logger
	// Transient are online CPU sets that existed since the last Load (the
	// daemon derives them from the events of a batch). A mask equal to one
	// is the kernel's overwrite or a driver's hotplug callback, not a pin.
	Transient []sysfs.CPUSet
}

// Hotplug writes /sys/devices/system/cpu/cpuN/online; sysfs.FS implements
// it, and so does the test simulator.
type Hotplug interface {
	SetCPUOnline(cpu int, online bool) error
}

// SetCPUOnline goes through Hotplug, or FS when it is nil.
func (e *Engine) SetCPUOnline(cpu int, online bool) error {
	if e.Hotplug != nil {
		return e.Hotplug.SetCPUOnline(cpu, online)
	}
	return e.FS.SetCPUOnline(cpu, online)
}

// State is one classified snapshot.
type State struct {
	Snapshot *sysfs.Snapshot
	IRQs     []IRQ
	// Banned is every CPU no IRQ may go to by configuration or isolation;
	// Drained those the operator drained; Allowed is online minus both.
	Banned  sysfs.CPUSet
	Drained sysfs.CPUSet
	Allowed sysfs.CPUSet
	// LearnedPins are the pins this snapshot taught (set by hand since the
	// last one).
	LearnedPins []Pin
}

func (e *Engine) init() {
	if e.Memory == nil {
		e.Memory = Memory{}
	}
	if e.Written == nil {
		e.Written = Written{}
	}
	if e.Planner.Pins == nil {
		e.Planner.Pins = Pins{}
	}
	if e.Drained == nil {
		e.Drained = Drains{}
	}
}

// Load snapshots the kernel state and classifies it.
func (e *Engine) Load() (*State, error) {
	var static *sysfs.CPUInfo
	if e.CacheStaticCPUs {
		static = e.staticCPUs
	}
	// A hotplug during the snapshot changes the online set first and the
	// masks after (the kernel's overwrite, virtio-net's callback): re-read
	// the online set after the masks, and learn no pin from a snapshot in
	// which it moved.
	var snap *sysfs.Snapshot
	consistent := false
	for try := 0; try < 5 && !consistent; try++ {
		s, err := e.FS.SnapshotWith(static)
		if err != nil {
			return nil, err
		}
		snap = s
		after, err := e.FS.OnlineCPUs()
		consistent = err == nil && after.Equal(s.CPUs.Online)
	}
	if e.CacheStaticCPUs && e.staticCPUs == nil {
		cpus := snap.CPUs
		e.staticCPUs = &cpus
	}
	e.init()
	drained := e.Drained.CPUs().Intersect(snap.CPUs.Possible)
	st := &State{
		Snapshot: snap,
		IRQs:     Classify(snap, e.Memory, e.Policy),
		Banned:   e.Banned.All(snap.CPUs),
		Drained:  drained,
		Allowed:  e.Banned.Allowed(snap.CPUs).Difference(drained),
	}
	if e.TrackPins && consistent {
		for _, irq := range st.IRQs {
			for _, set := range e.Transient {
				if irq.Movable() && irq.Affinity.Equal(set) {
					e.Written[Key(irq)] = irq.Affinity
				}
			}
		}
		st.LearnedPins = e.Planner.Pins.LearnPins(st.IRQs, snap.CPUs.Online, snap.CPUs.Possible, e.Written)
	}
	e.Transient = nil
	return st, nil
}

// ForgetCPUs drops the cached static CPU files, so the next Load reads
// them all again (on SIGHUP, and after a resync for a reason other than a
// hotplug event).
func (e *Engine) ForgetCPUs() { e.staticCPUs = nil }

// kernel is where writes go.
func (e *Engine) kernel() Kernel {
	if e.Kernel == nil {
		return e.FS
	}
	return e.Kernel
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
		err := e.kernel().WriteAffinity(pin.IRQ, mask)
		if !errors.Is(err, sysfs.ErrUnmovable) {
			kept = append(kept, pin)
			continue
		}
		reason := fmt.Sprintf("managed: the kernel refused a write (%s)", errnoText(err))
		e.Memory.Learn(st.IRQs[i], reason)
		delete(e.Planner.Pins, Key(st.IRQs[i]))
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
	plan, err := e.Planner.Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		return st, plan, nil, err
	}
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
		more, err := e.Planner.Rebalance(again.IRQs, again.Allowed)
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
		Kernel:     e.kernel(),
		Allowed:    st.Allowed.Difference(avoid),
		Banned:     st.Banned.Union(st.Drained),
		Avoid:      avoid,
		Planner:    &e.Planner,
		Memory:     e.Memory,
		Written:    e.Written,
		Logger:     e.Logger,
		RetryDelay: 10 * time.Millisecond,
	}
}

// Restore puts a saved state into the engine.
func (e *Engine) Restore(s Saved) {
	e.Drained = s.Drained
	e.Planner.Cursor = s.Cursor
	e.Planner.Pins = s.Pins
	e.Written = s.Written
	e.Memory = s.Managed
}

// Saved returns the engine's state for Store.Save.
func (e *Engine) Saved() Saved {
	s := NewSaved()
	s.Cursor = e.Planner.Cursor
	if e.Planner.Pins != nil {
		s.Pins = e.Planner.Pins
	}
	if e.Written != nil {
		s.Written = e.Written
	}
	if e.Memory != nil {
		s.Managed = e.Memory
	}
	if e.Drained != nil {
		s.Drained = e.Drained
	}
	return s
}
