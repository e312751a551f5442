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
	Kernel  Kernel
	Banned  BannedCPUs
	Policy  Policy
	Memory  Memory
	Planner Planner
	Logger  *slog.Logger
}

// State is one classified snapshot.
type State struct {
	Snapshot *sysfs.Snapshot
	IRQs     []IRQ
	// Banned is every CPU no IRQ may go to; Allowed is online minus Banned.
	Banned  sysfs.CPUSet
	Allowed sysfs.CPUSet
}

// Load snapshots the kernel state and classifies it.
func (e *Engine) Load() (*State, error) {
	snap, err := e.FS.Snapshot()
	if err != nil {
		return nil, err
	}
	if e.Memory == nil {
		e.Memory = Memory{}
	}
	return &State{
		Snapshot: snap,
		IRQs:     Classify(snap, e.Memory, e.Policy),
		Banned:   e.Banned.All(snap.CPUs),
		Allowed:  e.Banned.Allowed(snap.CPUs),
	}, nil
}

// Applier returns an Applier for plans made from st. avoid holds CPUs a
// retried move must not go to (those being drained).
func (e *Engine) Applier(st *State, avoid sysfs.CPUSet) *Applier {
	kernel := e.Kernel
	if kernel == nil {
		kernel = e.FS
	}
	if e.Memory == nil {
		e.Memory = Memory{}
	}
	return &Applier{
		Kernel:     kernel,
		Allowed:    st.Allowed.Difference(avoid),
		Banned:     st.Banned,
		Avoid:      avoid,
		Planner:    &e.Planner,
		Memory:     e.Memory,
		Logger:     e.Logger,
		RetryDelay: 10 * time.Millisecond,
	}
}
