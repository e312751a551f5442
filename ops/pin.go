package ops

import (
	"context"

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
	if env.Store == nil {
		return nil, badRequest("pin: pins are kept in the state file; give --state PATH")
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
		return nil, err
	}
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
	plan := affinity.Plan{Moves: []affinity.Move{{IRQ: irq.IRQ, From: irq.Where(), To: target, Reason: "pin " + req.CPUs.String()}}, Skipped: []affinity.Skip{}}
	report = &ApplyReport{State: st, Plan: plan}
	report.Results = s.engine.Applier(st, sysfs.CPUSet{}).Apply(ctx, plan, st.IRQs)
	if err := report.settle(ctx); err != nil {
		return report, err
	}
	if r := report.Results[0]; !r.Wrote() {
		return report, badRequest("pin IRQ %d: %s: %s", irq.IRQ, r.Status, r.Reason)
	}
	s.engine.Planner.Pins[affinity.Key(irq)] = affinity.Pin{IRQ: irq.IRQ, CPUs: req.CPUs}
	return report, nil
}

// UnpinRequest asks to forget the pin of an IRQ.
type UnpinRequest struct {
	IRQ int
}

// Unpin forgets a pin. The IRQ's current mask is marked as not the
// admin's, so no later snapshot learns it again; the mask stays until the
// next rebalance spreads the IRQ.
func Unpin(ctx context.Context, env *Env, req UnpinRequest) (report *UnpinReport, err error) {
	if env.Store == nil {
		return nil, badRequest("unpin: pins are kept in the state file; give --state PATH")
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
		return nil, err
	}
	pin, ok := s.engine.Planner.Pins[affinity.Key(irq)]
	if !ok || !s.engine.Planner.Pins.Forget(irq.IRQ) {
		return nil, badRequest("IRQ %d has no pin", irq.IRQ)
	}
	s.engine.Written[affinity.Key(irq)] = irq.Affinity
	return &UnpinReport{IRQ: irq.IRQ, Pin: pin}, nil
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
func List(ctx context.Context, env *Env) (*ListReport, error) {
	s, err := env.open(ctx, false)
	if err != nil {
		return nil, err
	}
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	return &ListReport{State: st, Pins: s.engine.Planner.Pins, Drained: s.engine.Drained}, nil
}
