package ops

import (
	"context"
	"errors"
	"slices"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
)

// StatusRequest asks what irqshift is doing here.
type StatusRequest struct{}

// DaemonInfo says whether a daemon (irqshift watch) owns the state, and
// what it recorded of itself.
type DaemonInfo struct {
	// Known is false without a state file (--state none): nothing tells
	// whether a daemon runs.
	Known   bool
	Running bool
	// PID is the daemon's process (0 if it had not written it yet).
	PID int
	// Status is what it recorded after its last settle; nil when it has
	// recorded nothing yet, or the record is another process's (a daemon
	// that stopped).
	Status *state.DaemonStatus
	// StatusProblem says why Status is nil when a daemon runs ("" when it
	// is there).
	StatusProblem string
}

// RuleUse is a device rule and the IRQs it places now.
type RuleUse struct {
	Rule rules.Rule
	IRQs []int
}

// Misplaced is an IRQ on CPUs it should not be on: what irqshift would
// move and why (affinity.State.Explain), for causes that mean the IRQ is
// where it must not be: offline, ban, drain, pin, rule, numa. A move only
// to even out counts or rates is not one.
type Misplaced struct {
	IRQ  affinity.IRQ
	Move affinity.Move
	Kind affinity.CauseKind
	Why  string
}

// misplacedKinds are the causes of a move that mean the IRQ is where it
// should not be.
var misplacedKinds = []affinity.CauseKind{affinity.CauseOffline, affinity.CauseBan, affinity.CauseDrain,
	affinity.CausePin, affinity.CauseRule, affinity.CauseNUMA}

// StatusReport is irqshift's view of this machine.
type StatusReport struct {
	// StatePath is the state file, "" for none.
	StatePath string
	Daemon    DaemonInfo
	// State is a fresh snapshot, classified: its banned CPUs and their
	// sources, the allowed CPUs.
	State   *affinity.State
	Drained affinity.Drains
	Pins    affinity.Pins
	// RulesDir and Rules are the device rules in force for commands (the
	// daemon loads the same directory).
	RulesDir      string
	Rules         []RuleUse
	Misplaced     []Misplaced
	MovablePerCPU map[int]int
}

// Status reads what the daemon recorded and the state, takes a fresh
// snapshot, and plans (without writing) to find the IRQs that are where
// they should not be. It takes no lock and writes nothing.
func Status(ctx context.Context, env *Env, _ StatusRequest) (*StatusReport, error) {
	s, err := env.open(ctx, false)
	if err != nil {
		return nil, err
	}
	defer s.release()
	s.engine.SetShowDevices(true)
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	report := &StatusReport{State: st, Drained: s.engine.Drains(), Pins: s.engine.Pins(), RulesDir: env.Settings.RulesDir,
		Rules: []RuleUse{}, Misplaced: []Misplaced{}, MovablePerCPU: affinity.MovablePerCPU(st.IRQs, st.Snapshot.CPUs.Online)}
	if env.Store != nil {
		report.StatePath = env.Store.Path()
		report.Daemon = daemonInfo(env.Store)
	}
	if set := env.Settings.Rules; set != nil {
		for _, r := range set.Rules {
			use := RuleUse{Rule: r, IRQs: []int{}}
			for _, irq := range st.IRQs {
				if irq.Rule == r.Name {
					use.IRQs = append(use.IRQs, irq.IRQ)
				}
			}
			report.Rules = append(report.Rules, use)
		}
	}
	plan, err := s.engine.Planner().Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		return nil, err
	}
	byNumber := make(map[int]affinity.IRQ, len(st.IRQs))
	for _, irq := range st.IRQs {
		byNumber[irq.IRQ] = irq
	}
	for _, m := range plan.Moves {
		irq := byNumber[m.IRQ]
		if kind, why := st.Explain(m, irq); slices.Contains(misplacedKinds, kind) {
			report.Misplaced = append(report.Misplaced, Misplaced{IRQ: irq, Move: m, Kind: kind, Why: why})
		}
	}
	return report, nil
}

// daemonInfo asks the state's daemon claim whether a daemon runs, and
// reads its status record when the record is that daemon's.
func daemonInfo(store *state.Store) DaemonInfo {
	info := DaemonInfo{Known: true}
	info.PID, info.Running = store.DaemonRunning()
	if !info.Running {
		return info
	}
	status, err := store.LoadStatus()
	switch {
	case errors.Is(err, state.ErrNoStatus):
		info.StatusProblem = "it has not recorded a settle yet"
	case err != nil && !errors.Is(err, state.ErrNewerState):
		info.StatusProblem = err.Error()
	case info.PID != 0 && status.PID != info.PID:
		info.StatusProblem = "the status file is another process's (a daemon that stopped)"
	default:
		info.Status = &status
	}
	return info
}
