package ops

import (
	"context"
	"fmt"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// PinRequest asks to pin an IRQ to CPUs and remember it.
type PinRequest struct {
	IRQ  int
	CPUs sysfs.CPUSet
}

// Pin writes an admin pin and records it in the state file, so that
// irqshift (the CLI and the daemon) restores it when the kernel breaks it
// on CPU offline.
func Pin(ctx context.Context, env *Env, req PinRequest) (report *ApplyReport, err error) {
	s, st, irq, err := env.openForIRQ(ctx, "pin", req.IRQ)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	switch {
	case !irq.Movable():
		return nil, badRequest("IRQ %d cannot be pinned: %s", irq.IRQ, irq.Reason)
	case req.CPUs.IsEmpty():
		return nil, badRequest("pin: no CPU given")
	case !req.CPUs.IsSubsetOf(st.Snapshot.CPUs.Possible):
		return nil, badRequest("pin: CPUs %s do not all exist (possible CPUs: %s)", req.CPUs, st.Snapshot.CPUs.Possible)
	}
	target := req.CPUs.Intersect(st.Allowed)
	if target.IsEmpty() {
		return nil, badRequest("pin: none of CPUs %s is online and allowed (allowed: %s)", req.CPUs, st.Allowed)
	}
	s.engine.ProbePins(st)
	if irq.Affinity.Equal(target) {
		// The mask is already the pin: nothing to write, and nothing to
		// report as narrowed. The pin is recorded all the same.
		s.engine.Pin(irq, req.CPUs)
		return &ApplyReport{State: st, Plan: affinity.Plan{Moves: []affinity.Move{}, Skipped: []affinity.Skip{}}, Results: []affinity.Result{}}, nil
	}
	plan := affinity.Plan{Moves: []affinity.Move{{IRQ: irq.IRQ, From: irq.Where(), To: target, Reason: "pin " + req.CPUs.String()}}, Skipped: []affinity.Skip{}}
	report = &ApplyReport{State: st, Plan: plan}
	report.Results = s.engine.Applier(st, sysfs.CPUSet{}).Apply(ctx, plan, st.IRQs)
	if err := report.settle(ctx); err != nil {
		return report, err
	}
	if r := report.Results[0]; !r.Wrote() {
		return report, fmt.Errorf("%w: pin IRQ %d: %s: %s", ErrNotMoved, irq.IRQ, r.Status, r.Reason)
	}
	s.engine.Pin(irq, req.CPUs)
	return report, nil
}

// UnpinRequest asks to forget the pin of an IRQ.
type UnpinRequest struct {
	IRQ int
}

// Unpin forgets a pin. The IRQ's current mask is marked as not the
// admin's, so no later snapshot learns it again; the mask stays until the
// next rebalance spreads the IRQ.
//
// An IRQ that no longer exists (its driver was unloaded) can be unpinned
// too: its pin is kept for when the driver comes back, so only unpin can
// drop it.
func Unpin(ctx context.Context, env *Env, req UnpinRequest) (report *UnpinReport, err error) {
	if env.Store == nil {
		return nil, badRequest("unpin: %w", ErrNoState)
	}
	s, err := env.open(ctx, true)
	if err != nil {
		return nil, err
	}
	defer s.close(&err)
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	irq, err := findIRQ(st, req.IRQ)
	if err != nil {
		pin, ok := s.engine.UnpinNumber(req.IRQ)
		if !ok {
			return nil, badRequest("IRQ %d is not in /proc/interrupts and has no pin", req.IRQ)
		}
		return &UnpinReport{IRQ: req.IRQ, Pin: pin, Vanished: true}, nil
	}
	pin, ok := s.engine.Unpin(irq)
	if !ok {
		return nil, badRequest("IRQ %d has no pin", irq.IRQ)
	}
	return &UnpinReport{IRQ: irq.IRQ, Pin: pin}, nil
}

// openForIRQ starts a writing operation on the pin of IRQ n: it needs a
// state file, and the IRQ must exist. On error nothing is held.
func (env *Env) openForIRQ(ctx context.Context, verb string, n int) (*session, *affinity.State, affinity.IRQ, error) {
	if env.Store == nil {
		return nil, nil, affinity.IRQ{}, badRequest("%s: %w", verb, ErrNoState)
	}
	s, err := env.open(ctx, true)
	if err != nil {
		return nil, nil, affinity.IRQ{}, err
	}
	st, err := s.loadOnly()
	if err == nil {
		var irq affinity.IRQ
		if irq, err = findIRQ(st, n); err == nil {
			return s, st, irq, nil
		}
	}
	s.release()
	return nil, nil, affinity.IRQ{}, err
}

func findIRQ(st *affinity.State, n int) (affinity.IRQ, error) {
	for _, irq := range st.IRQs {
		if irq.IRQ == n {
			return irq, nil
		}
	}
	return affinity.IRQ{}, badRequest("IRQ %d is not in /proc/interrupts", n)
}

// List reads and classifies the state. It takes no lock and writes
// nothing; pins and drains are those already recorded.
func List(ctx context.Context, env *Env, req ListRequest) (*ListReport, error) {
	s, err := env.openSampled(ctx, false, req.Sample)
	if err != nil {
		return nil, err
	}
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	return &ListReport{Sampled: req.Sample, State: st, Pins: s.engine.Pins(), Drained: s.engine.Drains()}, nil
}
