package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// cli is a one-shot command beside the daemon: its own Store on the same
// state file, as a separate process would have.
func cliEnv(t *testing.T, sim *sysfstest.Sim, statePath string) *ops.Env {
	t.Helper()
	store, err := state.OpenStore(statePath)
	if err != nil {
		t.Fatal(err)
	}
	return &ops.Env{FS: sim.FS(), Kernel: sim, Hotplug: sim, Store: store}
}

// nextReason waits for the next settle and checks why it ran.
func (h *harness) nextReason(reason SettleReason) Settle {
	h.t.Helper()
	s := h.next()
	if s.Reason != reason {
		h.t.Fatalf("settle %q, want %q", s.Reason, reason)
	}
	return s
}

// TestDaemonKeepsCLIDrain: `irqshift drain 3` while the daemon runs keeps
// CPU3 empty across an unrelated offline and online of CPU1, and `undrain
// 3` gives it IRQs again; the daemon learns both from the state file
// (inotify), with no SIGHUP.
func TestDaemonKeepsCLIDrain(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h := startOn(t, sim, statePath, nil)
	env := cliEnv(t, sim, statePath)
	ctx := context.Background()
	if _, err := ops.Drain(ctx, env, ops.DrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	s := h.nextReason("state")
	if !s.State.Drained.Equal(sysfs.NewCPUSet(3)) || s.State.Allowed.Contains(3) {
		t.Fatalf("daemon after the drain: drained %s, allowed %s", s.State.Drained, s.State.Allowed)
	}
	for _, step := range []struct {
		online bool
		action hotplug.Action
	}{{false, hotplug.Offline}, {true, hotplug.Online}} {
		if err := sim.SetCPUOnline(1, step.online); err != nil {
			t.Fatal(err)
		}
		h.src.push(cpuEvent(step.action, 1))
		h.nextReason(SettleReason(step.action))
		h.checkExcept(nil, sysfs.NewCPUSet(3))
	}
	h.src.push(hotplug.Event{Resync: true, Reason: "periodic", CPU: -1})
	h.nextReason("resync")
	h.checkExcept(nil, sysfs.NewCPUSet(3))
	if _, err := ops.Undrain(ctx, env, ops.UndrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	s = h.nextReason("state")
	if !s.State.Allowed.Contains(3) {
		t.Fatalf("daemon still treats CPU3 as drained: allowed %s", s.State.Allowed)
	}
	if load := h.check(nil); load[3] == 0 {
		t.Errorf("CPU3 has no IRQ after undrain: %v", load)
	}
}

// TestDaemonFollowsCLIPins: a pin made by the CLI while the daemon runs is
// restored by the daemon when its CPU returns; an unpin is not undone.
func TestDaemonFollowsCLIPins(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h := startOn(t, sim, statePath, nil)
	env := cliEnv(t, sim, statePath)
	ctx := context.Background()
	if _, err := ops.Pin(ctx, env, ops.PinRequest{IRQ: 13, CPUs: sysfs.NewCPUSet(2)}); err != nil {
		t.Fatal(err)
	}
	h.nextReason("state")
	h.checkExcept(map[int]bool{13: true}, sysfs.CPUSet{})
	if err := sim.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 2))
	h.nextReason("offline")
	if err := sim.SetCPUOnline(2, true); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Online, 2))
	h.nextReason("online")
	if aff, eff, _ := sim.State(13); aff.String() != "2" || eff.String() != "2" {
		t.Fatalf("CLI pin not restored by the daemon: mask %s effective %s", aff, eff)
	}
	if _, err := ops.Unpin(ctx, env, ops.UnpinRequest{IRQ: 13}); err != nil {
		t.Fatal(err)
	}
	h.nextReason("state")
	h.src.push(hotplug.Event{Resync: true, Reason: "periodic", CPU: -1})
	h.nextReason("resync")
	saved, err := env.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Pins) != 0 {
		t.Errorf("the daemon wrote the unpinned IRQ's pin back: %v", saved.Pins)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	startOn(t, sim, statePath, nil)
	store, err := state.OpenStore(statePath)
	if err != nil {
		t.Fatal(err)
	}
	second := &Daemon{Engine: affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim}), Source: newFakeSource(), Store: store}
	err = second.Run(context.Background())
	if !errors.Is(err, state.ErrDaemonRunning) {
		t.Fatalf("second daemon: %v, want ErrDaemonRunning", err)
	}
	if w := len(sim.Writes()); w == 0 {
		t.Fatal("the first daemon wrote nothing: the test proves nothing")
	}
}

// TestDaemonPublishesItsBans: the daemon records the CPUs its
// configuration bans, and a one-shot rebalance beside it honours them.
func TestDaemonPublishesItsBans(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h := startOn(t, sim, statePath, func(d *Daemon) {
		d.Engine.Configure(affinity.Settings{Banned: affinity.BannedCPUs{User: sysfs.NewCPUSet(2)}})
	})
	env := cliEnv(t, sim, statePath)
	report, err := ops.Rebalance(context.Background(), env, ops.RebalanceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if report.State.Allowed.Contains(2) {
		t.Fatalf("the CLI beside the daemon ignores its ban: allowed %s", report.State.Allowed)
	}
	h.checkExcept(nil, sysfs.NewCPUSet(2))
}
