package affinity

import (
	"log/slog"
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
	// TrackPins turns on learning pins from the masks found in each
	// snapshot. It needs Written to survive between runs (a state file):
	// without it every mask irqshift wrote would look like a pin.
	TrackPins bool
	// Written is what irqshift wrote last to each IRQ, to tell its own
	// masks from the admin's pins.
	Written Written
	Logger  *slog.Logger
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
	// Banned is every CPU no IRQ may go to; Allowed is online minus Banned.
	Banned  sysfs.CPUSet
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
}

// Load snapshots the kernel state and classifies it.
func (e *Engine) Load() (*State, error) {
	snap, err := e.FS.Snapshot()
	if err != nil {
		return nil, err
	}
	e.init()
	st := &State{
		Snapshot: snap,
		IRQs:     Classify(snap, e.Memory, e.Policy),
		Banned:   e.Banned.All(snap.CPUs),
		Allowed:  e.Banned.Allowed(snap.CPUs),
	}
	if e.TrackPins {
		st.LearnedPins = e.Planner.Pins.LearnPins(st.IRQs, snap.CPUs.Online, e.Written)
	}
	return st, nil
}

// Applier returns an Applier for plans made from st. avoid holds CPUs a
// retried move must not go to (those being drained).
func (e *Engine) Applier(st *State, avoid sysfs.CPUSet) *Applier {
	kernel := e.Kernel
	if kernel == nil {
		kernel = e.FS
	}
	e.init()
	return &Applier{
		Kernel:     kernel,
		Allowed:    st.Allowed.Difference(avoid),
		Banned:     st.Banned,
		Avoid:      avoid,
		Planner:    &e.Planner,
		Memory:     e.Memory,
		Written:    e.Written,
		Logger:     e.Logger,
		RetryDelay: 10 * time.Millisecond,
	}
}
