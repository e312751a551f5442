package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// Errors of the operations, besides affinity.ErrBadCPU (a CPU argument
// refused) and sysfs.ErrPermission (not allowed to write).
var (
	// ErrBadRequest: the request names something that does not exist or
	// cannot be done (an IRQ not in /proc/interrupts, a pin without a
	// state file). Nothing was written.
	ErrBadRequest = errors.New("bad request")
	// ErrInterrupted: the operation was cancelled (SIGINT, SIGTERM) and
	// stopped before its next write; the report says what was done.
	ErrInterrupted = errors.New("interrupted")
	// ErrStateNotSaved: the writes happened, but the state file could not
	// be saved, so what the operator decided is not recorded.
	ErrStateNotSaved = errors.New("the state could not be saved")
	// ErrNoState: the operation keeps what it did in the state file, and
	// there is none.
	ErrNoState = errors.New("pins are kept in the state file, and there is none")
	// ErrNotMoved: the operation finished but some IRQs could not be moved
	// or are still where they must not be.
	ErrNotMoved = errors.New("not every IRQ could be moved")
)

// countOf counts a noun: "1 IRQ", "3 IRQs".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrBadRequest, fmt.Errorf(format, args...))
}

// ApplyReport is what a planning operation did: the plan, and unless it
// was a dry run, the result of each write attempted.
type ApplyReport struct {
	// State is the snapshot the plan was made from.
	State   *affinity.State
	Plan    affinity.Plan
	Results []affinity.Result
	DryRun  bool
	// NotDone counts planned moves that were never attempted because the
	// operation was interrupted.
	NotDone int
	// Persisted is the rule pin --persist wrote (its Name and File), nil
	// for none.
	Persisted *rules.Rule
}

// Done counts the writes that happened (moved, narrowed or pending).
func (r *ApplyReport) Done() int {
	n := 0
	for _, res := range r.Results {
		if res.Wrote() {
			n++
		}
	}
	return n
}

// Failed lists the IRQs whose write failed. Refused writes that taught us
// an IRQ is managed are not failures: the kernel owns those IRQs.
func (r *ApplyReport) Failed() []int {
	return failedIRQs(r.Results)
}

func failedIRQs(results []affinity.Result) []int {
	var failed []int
	for _, res := range results {
		if res.Status == affinity.StatusFailed {
			failed = append(failed, res.IRQ)
		}
	}
	return failed
}

// settle fills in NotDone after an apply and returns the operation's
// error: interruption first, then missing privilege, then failed moves.
// Summary counts the report's outcomes.
func (r *ApplyReport) Summary() affinity.Summary {
	return affinity.Summarize(len(r.Plan.Moves), r.Results, r.NotDone)
}

func (r *ApplyReport) settle(ctx context.Context) error {
	r.NotDone = max(0, len(r.Plan.Moves)-len(r.Results))
	return resultsError(ctx, r.Results, r.NotDone)
}

func resultsError(ctx context.Context, results []affinity.Result, notDone int) error {
	if ctx.Err() != nil && notDone > 0 {
		return fmt.Errorf("%w: %s done, %d not done", ErrInterrupted, countOf(len(results), "planned move"), notDone)
	}
	for _, res := range results {
		if res.ErrorClass == sysfs.WriteClassName(sysfs.ErrPermission) {
			return fmt.Errorf("%w: IRQ %d: %s", sysfs.ErrPermission, res.IRQ, res.Reason)
		}
	}
	if failed := failedIRQs(results); len(failed) > 0 {
		return fmt.Errorf("%w: %s could not be moved: %v", ErrNotMoved, countOf(len(failed), "IRQ"), failed)
	}
	return nil
}

// OfflineReport is what offline did: the drain, the CPU writes, and the
// rebalance once the CPUs were gone.
type OfflineReport struct {
	CPUs sysfs.CPUSet
	// Drain is the drain before the CPUs went offline.
	Drain ApplyReport
	// Offlined are the CPUs actually taken offline.
	Offlined sysfs.CPUSet
	// Rebalanced are the writes after the offline, evening out what
	// drivers' own hotplug callbacks changed.
	Rebalanced []affinity.Result
	// LeftBehind lists movable IRQs still effective on the CPUs: empty
	// unless something went wrong. Non-empty before the offline means the
	// CPUs were not taken offline.
	LeftBehind []int
	// After is the state once everything was done.
	After *affinity.State
}

// OnlineReport is what online did: the CPUs brought online and the
// rebalance after.
type OnlineReport struct {
	CPUs sysfs.CPUSet
	// Undrained are the CPUs that irqshift offline had drained and that
	// this online gave back.
	Undrained sysfs.CPUSet
	Rebalance ApplyReport
}

// UnpinReport says which pin was dropped.
type UnpinReport struct {
	IRQ int
	Pin affinity.Pin
	// Vanished is true when the IRQ no longer exists: only its pin went.
	Vanished bool
	// Persisted is the rule unpin --persist removed, nil for none; NoPin
	// is true when only that rule went (the IRQ had no pin until reboot).
	Persisted *rules.Rule
	NoPin     bool
}

// ListRequest asks for the IRQs and CPUs as they are.
type ListRequest struct {
	// Sample is how long to measure the IRQs' rates (IRQ.Rate); 0 shows
	// none.
	Sample time.Duration
	// Filter chooses the IRQs shown (ListReport.Shown); the zero Filter
	// shows them all.
	Filter ListFilter
}

// ListReport is the classified state with what the operator decided.
type ListReport struct {
	// Sampled is the window the rates (IRQ.Rate) were measured over; 0
	// when none was.
	Sampled time.Duration
	State   *affinity.State
	Pins    affinity.Pins
	Drained affinity.Drains
	// Shown are the IRQs of State the filter chose, in IRQ order.
	Shown []affinity.IRQ
	// MovablePerCPU counts the movable IRQs on each online CPU, of all
	// IRQs whatever the filter: what irqshift keeps within one.
	MovablePerCPU map[int]int
}
