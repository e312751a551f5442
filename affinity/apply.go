package affinity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/sysfs"
)

// Kernel is what Apply needs from the kernel. sysfs.FS implements it on
// /proc (or a fixture tree); tests use a simulator.
type Kernel interface {
	WriteAffinity(irq int, cpus sysfs.CPUSet) error
	ReadEffective(irq int) (sysfs.CPUSet, error)
	OnlineCPUs() (sysfs.CPUSet, error)
}

// Status is the outcome of one planned move.
type Status string

// The outcomes.
const (
	// StatusMoved: written, and the interrupt now fires on a CPU within the
	// new mask, different from the CPU(s) it was delivered to before.
	StatusMoved Status = "moved"
	// StatusNarrowed: written, and the effective affinity is what it was
	// before (Move.From): the mask changed, the interrupt did not move.
	StatusNarrowed Status = "narrowed"
	// StatusPending: written, but the chip still delivers elsewhere; some
	// chips (x86 without IRQ remapping) move at the next interrupt.
	StatusPending Status = "pending"
	// StatusUnmovable: the kernel refused; the IRQ is now known as managed.
	StatusUnmovable Status = "unmovable"
	// StatusVanished: the IRQ was freed before or during the write.
	StatusVanished Status = "vanished"
	// StatusFailed: the move did not happen for another reason.
	StatusFailed Status = "failed"
)

// Result says what happened to one move.
type Result struct {
	IRQ       int          `json:"irq"`
	From      sysfs.CPUSet `json:"from"`
	To        sysfs.CPUSet `json:"to"`
	Effective sysfs.CPUSet `json:"effective"`
	Status    Status       `json:"status"`
	Reason    string       `json:"reason,omitempty"`
	// ErrorClass is sysfs.WriteClassName of the write error, if any: one
	// of sysfs.WriteErrorClasses.
	ErrorClass sysfs.WriteErrorClass `json:"error_class,omitempty"`
}

// Wrote reports whether the kernel accepted the write: moved, narrowed or
// pending.
func (r Result) Wrote() bool {
	return r.Status == StatusMoved || r.Status == StatusNarrowed || r.Status == StatusPending
}

// Applier writes plans. It is not safe for concurrent use.
type Applier struct {
	Kernel Kernel
	// Allowed is the set every written mask must stay within.
	Allowed sysfs.CPUSet
	// Banned is removed from a fresh online set after a stale-mask error.
	Banned sysfs.CPUSet
	// Avoid holds CPUs being drained: a retried move never goes there.
	Avoid sysfs.CPUSet
	// Planner's cursor picks a new CPU when a target went offline.
	Planner *Planner
	// Memory learns the IRQs the kernel refuses to move.
	Memory Memory
	// Written records every mask written, so it is not taken for a pin.
	Written Written
	Logger  *slog.Logger
	// RetryDelay is the pause before retrying a transient error.
	RetryDelay time.Duration

	// wentOffline collects allowed CPUs found offline by a retarget.
	wentOffline sysfs.CPUSet
}

// Apply performs the moves of plan in order. irqs supplies what Memory
// needs to remember refused IRQs. It stops early only when ctx is done.
func (a *Applier) Apply(ctx context.Context, plan Plan, irqs []IRQ) []Result {
	byNumber := make(map[int]IRQ, len(irqs))
	for _, irq := range irqs {
		byNumber[irq.IRQ] = irq
	}
	results := make([]Result, 0, len(plan.Moves))
	for _, move := range plan.Moves {
		if ctx.Err() != nil {
			break
		}
		results = append(results, a.applyOne(ctx, move, byNumber[move.IRQ]))
	}
	return results
}

func (a *Applier) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *Applier) applyOne(ctx context.Context, move Move, irq IRQ) Result {
	res := Result{IRQ: move.IRQ, From: move.From, To: move.To}
	to := move.To
	if !to.Intersect(a.wentOffline).IsEmpty() {
		// An earlier stale-mask error showed this target went offline
		// after the snapshot: retarget now rather than fail.
		var err error
		if to, err = a.retarget(to); err != nil {
			res.Status, res.Reason = StatusFailed, err.Error()
			return res
		}
		res.To = to
	}
	if to.IsEmpty() || !to.IsSubsetOf(a.Allowed) {
		res.Status = StatusFailed
		res.Reason = fmt.Sprintf("refusing to write %q: not within the allowed CPUs %s", to, a.Allowed)
		return res
	}
	err := a.Kernel.WriteAffinity(move.IRQ, to)
	if errors.Is(err, sysfs.ErrTransient) {
		select {
		case <-ctx.Done():
		case <-time.After(a.RetryDelay):
		}
		err = a.Kernel.WriteAffinity(move.IRQ, to)
	}
	if errors.Is(err, sysfs.ErrStaleMask) {
		// A CPU went offline since the snapshot: plan this IRQ again on
		// a fresh online set, once.
		var retarget error
		to, retarget = a.retarget(to)
		if retarget != nil {
			res.Status, res.Reason, res.ErrorClass = StatusFailed, retarget.Error(), sysfs.WriteClassName(err)
			return res
		}
		res.To = to
		a.logger().Info("target CPU went offline, retrying", "irq", move.IRQ, "to", to.String())
		err = a.Kernel.WriteAffinity(move.IRQ, to)
	}
	switch {
	case err == nil:
		if a.Written != nil {
			a.Written[Key(irq)] = to
		}
	case errors.Is(err, sysfs.ErrUnmovable):
		reason := fmt.Sprintf("managed: the kernel refused a write (%s)", errnoText(err))
		if a.Memory != nil {
			a.Memory.Learn(irq, reason)
		}
		res.Status, res.Reason, res.ErrorClass = StatusUnmovable, reason, sysfs.WriteClassName(err)
		return res
	case errors.Is(err, sysfs.ErrGone):
		res.Status, res.Reason, res.ErrorClass = StatusVanished, "the IRQ was freed", sysfs.WriteClassName(err)
		return res
	default:
		res.Status, res.Reason, res.ErrorClass = StatusFailed, err.Error(), sysfs.WriteClassName(err)
		return res
	}
	effective, err := a.Kernel.ReadEffective(move.IRQ)
	switch {
	case errors.Is(err, sysfs.ErrGone):
		res.Status, res.Reason = StatusVanished, "the IRQ was freed after the write"
	case err != nil:
		res.Status, res.Reason = StatusFailed, fmt.Sprintf("written, but reading it back failed: %v", err)
	case !effective.IsEmpty() && effective.IsSubsetOf(to) && effective.Equal(move.From):
		res.Status, res.Effective = StatusNarrowed, effective
	case !effective.IsEmpty() && effective.IsSubsetOf(to):
		res.Status, res.Effective = StatusMoved, effective
	default:
		res.Status, res.Effective = StatusPending, effective
		res.Reason = fmt.Sprintf("written; the chip still delivers to %q", effective)
	}
	return res
}

// retarget re-reads the online CPUs after a stale-mask error and returns
// the part of to that is still allowed, or the cursor's next allowed CPU.
func (a *Applier) retarget(to sysfs.CPUSet) (sysfs.CPUSet, error) {
	online, err := a.Kernel.OnlineCPUs()
	if err != nil {
		return sysfs.CPUSet{}, fmt.Errorf("stale online mask, and re-reading it failed: %w", err)
	}
	allowed := online.Difference(a.Banned).Difference(a.Avoid)
	a.wentOffline = a.wentOffline.Union(a.Allowed.Difference(online))
	a.Allowed = a.Allowed.Intersect(online)
	if still := to.Intersect(allowed); !still.IsEmpty() {
		return still, nil
	}
	planner := a.Planner
	if planner == nil {
		planner = &Planner{}
	}
	cpu := planner.Cursor.Pick(allowed, nil)
	if cpu < 0 {
		return sysfs.CPUSet{}, fmt.Errorf("stale online mask, and no allowed CPU is online now (online: %s)", online)
	}
	return sysfs.NewCPUSet(cpu), nil
}

// errnoText names the errno inside a write error ("EIO", "EPERM"), for
// reasons people read.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return errno.Error()
	}
	return err.Error()
}
