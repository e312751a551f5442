package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// rulesRig is VM4 (6.12) with its PCI devices in /sys (bound to
// virtio-pci) and the rules of files (name → content) in a rules
// directory.
func rulesRig(t *testing.T, files map[string]string) *rig {
	t.Helper()
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	for i, q := range cfg.IRQs {
		if bdf, ok := sysfs.ChipPCIAddress(q.Chip); ok {
			cfg.IRQs[i] = q.WithDevice(bdf, "virtio-pci")
		}
	}
	r := newRig(t, cfg)
	dir := filepath.Join(t.TempDir(), "rules.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.reloadRules(dir)
	return r
}

// reloadRules loads dir into the rig's settings, as the CLI does.
func (r *rig) reloadRules(dir string) {
	r.t.Helper()
	set, err := rules.Load(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.env.Settings.Rules, r.env.Settings.RulesDir = set, dir
}

// TestRulesReport: each rule with the IRQs it places and where they are,
// and the problems: a rule that matches nothing, one shadowed by an
// earlier one, CPUs that do not exist.
func TestRulesReport(t *testing.T) {
	r := rulesRig(t, map[string]string{
		"10-rng.toml": "[[rule]]\nname = \"rng\"\ndevice = \"0000:00:02.0\"\ncpus = \"3\"\n",
		"20-all.toml": "[[rule]]\nname = \"rng-again\"\nactions = \"virtio1-*\"\ncpus = \"2\"\n" +
			"[[rule]]\nname = \"nothing\"\nactions = \"mlx5_comp*\"\ncpus = \"1\"\n" +
			"[[rule]]\nname = \"far\"\ndriver = \"virtio-pci\"\ncpus = \"2-9\"\n",
	})
	ctx := context.Background()
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	report, err := Rules(ctx, r.env, RulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]RuleStatus{}
	for _, rs := range report.Rules {
		byName[rs.Rule.Name] = rs
	}
	if got := byName["rng"]; !slices.Equal(got.IRQs, []int{20, 21}) || !got.CPUs.Equal(sysfs.NewCPUSet(3)) {
		t.Errorf("rule rng places %v on %s, want [20 21] on 3", got.IRQs, got.CPUs)
	}
	if got := byName["rng-again"]; len(got.IRQs) != 0 {
		t.Errorf("rule rng-again places %v, want none (rng is first)", got.IRQs)
	}
	// far matches the other virtio-pci MSIs (net, blk config); managed
	// queues are matched too but stay where the kernel keeps them.
	if got := byName["far"]; !slices.Contains(got.IRQs, 28) || !got.CPUs.IsSubsetOf(sysfs.NewCPUSet(0, 1, 2, 3)) {
		t.Errorf("rule far places %v on %s", got.IRQs, got.CPUs)
	}
	want := map[string]string{"rng-again": "shadowed", "nothing": "matches no IRQ", "far": "do not exist"}
	for _, p := range report.Problems {
		if w, ok := want[p.Rule]; ok && strings.Contains(p.Text, w) {
			delete(want, p.Rule)
		}
	}
	if len(want) != 0 {
		t.Errorf("problems %v lack %v", report.Problems, want)
	}
	for _, p := range report.Problems {
		if p.Rule == "rng" {
			t.Errorf("a problem with the good rule rng: %s", p)
		}
	}
}

// TestRebalanceFollowsRules: a one-shot rebalance puts a rule's IRQs on its
// CPUs, keeps the others off an exclusive rule's CPUs, and a drain of the
// rule's CPU keeps them on the rule's other CPUs.
func TestRebalanceFollowsRules(t *testing.T) {
	r := rulesRig(t, map[string]string{
		"net.toml": "[[rule]]\nname = \"net\"\ndevice = \"0000:00:01.0\"\ncpus = \"2-3\"\nexclusive = true\n",
	})
	ctx := context.Background()
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	net := []int{28, 29, 30}
	for _, irq := range r.state().IRQs {
		_, eff, _ := r.sim.State(irq.IRQ)
		switch {
		case !irq.Movable():
		case slices.Contains(net, irq.IRQ):
			if irq.Rule != "net" || !eff.IsSubsetOf(sysfs.NewCPUSet(2, 3)) {
				t.Errorf("IRQ %d: rule %q on %s, want rule net on 2-3", irq.IRQ, irq.Rule, eff)
			}
		case eff.Intersects(sysfs.NewCPUSet(2, 3)):
			t.Errorf("IRQ %d (%v), not the rule's, on %s: 2-3 are exclusive to rule net", irq.IRQ, irq.Actions, eff)
		}
	}
	if _, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	for _, irq := range net {
		if _, eff, _ := r.sim.State(irq); !eff.Equal(sysfs.NewCPUSet(2)) {
			t.Errorf("after drain 3, rule net's IRQ %d is on %s, want 2", irq, eff)
		}
	}
}

// TestPinPersist: pin --persist writes a rule of the IRQ's device and
// action; after a "reboot" (a new state file, masks back to every CPU) a
// rebalance puts the IRQ back on its CPU; unpin --persist removes the rule;
// without a rules directory, or with a foreign pins file, pin --persist is
// refused and writes nothing.
func TestPinPersist(t *testing.T) {
	r := rulesRig(t, nil)
	ctx := context.Background()
	dir := r.env.Settings.RulesDir
	report, err := Pin(ctx, r.env, PinRequest{IRQ: 21, CPUs: sysfs.NewCPUSet(3), Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if report.Persisted == nil || report.Persisted.File != filepath.Join(dir, rules.PinsFile) {
		t.Fatalf("Persisted = %+v", report.Persisted)
	}
	r.reloadRules(dir)
	if r.env.Settings.Rules.Len() != 1 || r.env.Settings.Rules.Rules[0].Device != "0000:00:02.0" {
		t.Fatalf("rules after pin --persist: %+v", r.env.Settings.Rules)
	}

	// Reboot: the state is gone and the kernel placed the IRQ elsewhere
	// (a wide mask, not one that looks set by hand).
	if err := r.sim.WriteAffinity(21, sysfs.NewCPUSet(0, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, eff, _ := r.sim.State(21); eff.Contains(3) {
		t.Fatalf("the simulated reboot left IRQ 21 on %s", eff)
	}
	fresh, err := state.OpenStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	r.env.Store = fresh
	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, eff, _ := r.sim.State(21); !eff.Equal(sysfs.NewCPUSet(3)) {
		t.Errorf("after the reboot, the persistent pin's IRQ 21 is on %s, want 3", eff)
	}

	unpinned, err := Unpin(ctx, r.env, UnpinRequest{IRQ: 21, Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if unpinned.Persisted == nil {
		t.Error("unpin --persist removed no rule")
	}
	if _, err := os.Stat(filepath.Join(dir, rules.PinsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pins file is still there after its last pin went: %v", err)
	}

	// A pins file that is not irqshift's: refused, nothing written.
	foreign := "# mine\n[[rule]]\nname = \"x\"\nactions = \"y\"\ncpus = \"1\"\n"
	if err := os.WriteFile(filepath.Join(dir, rules.PinsFile), []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _, _ := r.sim.State(20)
	if _, err := Pin(ctx, r.env, PinRequest{IRQ: 20, CPUs: sysfs.NewCPUSet(1), Persist: true}); err == nil {
		t.Error("pin --persist over a pins file irqshift did not write succeeded")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, rules.PinsFile)); string(data) != foreign {
		t.Errorf("the foreign pins file changed:\n%s", data)
	}
	if after, _, _ := r.sim.State(20); !after.Equal(before) {
		t.Errorf("a refused pin --persist wrote IRQ 20: %s -> %s", before, after)
	}
	r.env.Settings.RulesDir = ""
	if _, err := Pin(ctx, r.env, PinRequest{IRQ: 20, CPUs: sysfs.NewCPUSet(1), Persist: true}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("pin --persist without a rules directory: %v, want a bad request", err)
	}
}
