package ops

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// PinRequest asks to pin an IRQ to CPUs and remember it.
type PinRequest struct {
	IRQ  int
	CPUs sysfs.CPUSet
	// Persist also writes the pin as a rule of the IRQ's device and action
	// into the rules directory (rules.PinsFile), so that it outlives the
	// IRQ's number: a reboot, a driver bound again.
	Persist bool
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
		missing := req.CPUs.Difference(st.Snapshot.CPUs.Possible)
		return nil, badRequest("pin: %s %s not exist (possible CPUs: %s)", affinity.CPUNoun(missing), doVerb(missing), st.Snapshot.CPUs.Possible)
	}
	target := req.CPUs.Intersect(st.Allowed)
	if target.IsEmpty() {
		if req.CPUs.Len() == 1 {
			return nil, badRequest("pin: CPU %s is not online and allowed (allowed: %s)", req.CPUs, st.Allowed)
		}
		return nil, badRequest("pin: none of CPUs %s is online and allowed (allowed: %s)", req.CPUs, st.Allowed)
	}
	var persisted *rules.Rule
	if req.Persist {
		if persisted, err = env.persistPin(irq, req.CPUs); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				env.dropPersisted(persisted)
			}
		}()
	}
	s.engine.ProbePins(st)
	if irq.Affinity.Equal(target) {
		// The mask is already the pin: nothing to write, and nothing to
		// report as narrowed. The pin is recorded all the same.
		s.engine.Pin(irq, req.CPUs)
		return &ApplyReport{State: st, Plan: affinity.Plan{Moves: []affinity.Move{}, Skipped: []affinity.Skip{}}, Results: []affinity.Result{}, Persisted: persisted}, nil
	}
	plan := affinity.Plan{Moves: []affinity.Move{{IRQ: irq.IRQ, From: irq.Where(), To: target, Reason: "pin " + req.CPUs.String()}}, Skipped: []affinity.Skip{}}
	report = &ApplyReport{State: st, Plan: plan, Persisted: persisted}
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
	// Persist also removes the rule pin --persist wrote for it.
	Persist bool
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
	if err == nil && req.Persist {
		removed, err := env.unpersistPin(irq)
		if err != nil {
			return nil, err
		}
		pin, ok := s.engine.Unpin(irq)
		return &UnpinReport{IRQ: irq.IRQ, Pin: pin, Persisted: removed, NoPin: !ok}, nil
	}
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
	// pin --persist keys its rule on the IRQ's device.
	s.engine.SetShowDevices(true)
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
	s.engine.SetShowDevices(true)
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	shown, err := req.Filter.apply(st, s.engine.Pins())
	if err != nil {
		return nil, err
	}
	return &ListReport{Sampled: req.Sample, State: st, Pins: s.engine.Pins(), Drained: s.engine.Drains(), Shown: shown,
		MovablePerCPU: affinity.MovablePerCPU(st.IRQs, st.Snapshot.CPUs.Online)}, nil
}

// persistPin writes the rule of pin --persist for irq (rules.PinRule: its
// device and action, not its number) before anything is written to the
// kernel, so that a refused rule changes nothing.
func (env *Env) persistPin(irq affinity.IRQ, cpus sysfs.CPUSet) (*rules.Rule, error) {
	dir := env.Settings.RulesDir
	if dir == "" {
		return nil, badRequest("pin --persist: there is no rules directory to keep the pin in; give --rules DIR")
	}
	rule, err := rules.PinRule(identity(irq), cpus)
	if err != nil {
		return nil, badRequest("pin --persist: IRQ %d: %v", irq.IRQ, err)
	}
	if err := rules.AddPin(dir, rule); err != nil {
		return nil, fmt.Errorf("pin --persist: %w", err)
	}
	rule.File = filepath.Join(dir, rules.PinsFile)
	return &rule, nil
}

// dropPersisted takes back the rule persistPin wrote when the pin itself
// failed: a failed command changes nothing.
func (env *Env) dropPersisted(rule *rules.Rule) {
	if _, err := rules.RemovePin(env.Settings.RulesDir, rule.Name); err != nil {
		env.logger().Warn("could not take back the rule of a failed pin --persist", "rule", rule.Name, "err", err)
	}
}

// unpersistPin removes the rule pin --persist wrote for irq.
func (env *Env) unpersistPin(irq affinity.IRQ) (*rules.Rule, error) {
	dir := env.Settings.RulesDir
	if dir == "" {
		return nil, badRequest("unpin --persist: there is no rules directory; give --rules DIR")
	}
	rule, err := rules.PinRule(identity(irq), sysfs.NewCPUSet(0))
	if err != nil {
		return nil, badRequest("unpin --persist: IRQ %d: %v", irq.IRQ, err)
	}
	removed, err := rules.RemovePin(dir, rule.Name)
	if err != nil {
		return nil, fmt.Errorf("unpin --persist: %w", err)
	}
	if !removed {
		return nil, badRequest("unpin --persist: IRQ %d has no persistent pin (no rule %q in %s)", irq.IRQ, rule.Name, filepath.Join(dir, rules.PinsFile))
	}
	rule.File = filepath.Join(dir, rules.PinsFile)
	return &rule, nil
}

// identity is what a rule matches on for irq.
func identity(irq affinity.IRQ) rules.Identity {
	return rules.Identity{Chip: irq.Chip, Actions: irq.Actions, Device: irq.Device, Driver: irq.Driver}
}
