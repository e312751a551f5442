package affinity

import "github.com/irqshift/irqshift/state"

// The drains are the operator's intent, kept by package state; the
// planner reads them under these names.
type (
	// Drains maps a drained CPU to why it was drained.
	Drains = state.Drains
	// DrainSource says which command drained a CPU.
	DrainSource = state.DrainSource
)

// The drain sources.
const (
	DrainByDrain   = state.DrainByDrain
	DrainByOffline = state.DrainByOffline
)
