package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// The VM4 (6.12) devices the rules tests name: virtio-rng and virtio-net.
const (
	rngDevice = "0000:00:02.0"
	netDevice = "0000:00:01.0"
)

// vm4Devices is VM4 (6.12) with its PCI devices in /sys: each MSI belongs
// to the device its chip names, bound to virtio-pci.
func vm4Devices(t *testing.T) *sysfstest.Sim {
	t.Helper()
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	for i, q := range cfg.IRQs {
		if bdf, ok := sysfs.ChipPCIAddress(q.Chip); ok {
			cfg.IRQs[i] = q.WithDevice(bdf, "virtio-pci")
		}
	}
	return sysfstest.New(t, cfg)
}

// rulesSet loads dir, failing the test on an error.
func rulesSet(t *testing.T, dir string) *rules.Set {
	t.Helper()
	set, err := rules.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// effectiveOf returns where the simulator delivers irq.
func effectiveOf(t *testing.T, sim *sysfstest.Sim, irq int) sysfs.CPUSet {
	t.Helper()
	_, eff, ok := sim.State(irq)
	if !ok {
		t.Fatalf("IRQ %d does not exist", irq)
	}
	return eff
}

// TestDaemonRules: rules in force at start place the rng's IRQs on CPU3
// alone (exclusive); across an offline of CPU3 they spill and come back;
// a change of the rules directory applies at once; a file with a mistake
// keeps the last good rules (and counts a failure); the device unbound and
// bound again, with new IRQ numbers, gets its rule's CPUs back from the
// bind event; IRQs per rule are in the metrics.
func TestDaemonRules(t *testing.T) {
	sim := vm4Devices(t)
	dir := t.TempDir()
	writeRenamed(t, filepath.Join(dir, "10-rng.toml"), `
[[rule]]
name = "rng"
device = "`+rngDevice+`"
cpus = "3"
exclusive = true
`)
	log := &syncBuffer{}
	h := startOn(t, sim, "", func(d *Daemon) {
		d.RulesDir = dir
		d.Engine.SetRules(rulesSet(t, dir))
		d.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	if !strings.Contains(log.String(), "reason=rule") || !strings.Contains(log.String(), `why="rule rng"`) {
		t.Errorf("no move logged with its rule:\n%s", log.String())
	}
	rng := []int{20, 21}
	for _, irq := range rng {
		if eff := effectiveOf(t, sim, irq); !eff.Equal(sysfs.NewCPUSet(3)) {
			t.Errorf("at start, rule rng's IRQ %d is on %s, want 3", irq, eff)
		}
	}
	for _, irq := range []int{13, 18, 22, 23, 28, 29, 30} {
		if eff := effectiveOf(t, sim, irq); eff.Contains(3) {
			t.Errorf("at start, IRQ %d, matched by no rule, is on CPU3, exclusive to rule rng", irq)
		}
	}
	if n := testutil.ToFloat64(h.d.Metrics.ruleIRQs.WithLabelValues("rng")); n != 2 {
		t.Errorf("irqshift_rule_irqs{rule=\"rng\"} = %v, want 2", n)
	}

	// CPU3 offline: they spill; back: they return.
	if err := sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 3))
	h.next()
	for _, irq := range rng {
		if eff := effectiveOf(t, sim, irq); eff.Contains(3) || eff.IsEmpty() {
			t.Errorf("CPU3 offline: rule rng's IRQ %d is on %s", irq, eff)
		}
	}
	if err := sim.SetCPUOnline(3, true); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Online, 3))
	h.next()
	for _, irq := range rng {
		if eff := effectiveOf(t, sim, irq); !eff.Equal(sysfs.NewCPUSet(3)) {
			t.Errorf("CPU3 back: rule rng's IRQ %d is on %s, want 3", irq, eff)
		}
	}

	// The rule now wants CPU2.
	writeRenamed(t, filepath.Join(dir, "10-rng.toml"), `
[[rule]]
name = "rng"
device = "`+rngDevice+`"
cpus = "2"
`)
	h.nextReason(SettleRules)
	for _, irq := range rng {
		if eff := effectiveOf(t, sim, irq); !eff.Equal(sysfs.NewCPUSet(2)) {
			t.Errorf("after the rules changed, rule rng's IRQ %d is on %s, want 2", irq, eff)
		}
	}

	// A mistake: the last good rules stay, and nothing settles for it.
	writeRenamed(t, filepath.Join(dir, "20-bad.toml"), "[[rule]]\nname = \"bad\"\ncpus = \"1-x\"\nactions = \"virtio*\"\n")
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.d.Metrics.rulesFailures) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a rules file with a mistake was not reported in irqshift_rules_load_failures_total")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.d.Engine.Rules(); got.Len() != 1 || !got.Rules[0].CPUs.Equal(sysfs.NewCPUSet(2)) {
		t.Errorf("after a bad file the engine has rules %+v, want the last good one", got)
	}
	if err := os.Remove(filepath.Join(dir, "20-bad.toml")); err != nil {
		t.Fatal(err)
	}

	// The device unbound and bound again, its IRQs with new numbers and
	// the kernel's default masks: the bind event puts them back on CPU2.
	if err := sim.UnbindDevice(rngDevice); err != nil {
		t.Fatal(err)
	}
	chip := "ITS-PCI-MSIX-" + rngDevice
	if err := sim.BindDevice(rngDevice, "virtio-pci",
		sysfstest.MSI(40, chip, 0, "virtio1-config").WithNode(-1),
		sysfstest.MSI(41, chip, 1, "virtio1-input").WithNode(-1)); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Action: hotplug.Bound, CPU: -1, Device: "/devices/pci0000:00/" + rngDevice})
	s := h.nextReason(SettleIRQs)
	for _, irq := range []int{40, 41} {
		if eff := effectiveOf(t, sim, irq); !eff.Equal(sysfs.NewCPUSet(2)) {
			t.Errorf("after a rebind, rule rng's new IRQ %d is on %s, want 2", irq, eff)
		}
	}
	for _, irq := range s.State.IRQs {
		if irq.IRQ == 40 && (irq.Rule != "rng" || irq.Device != rngDevice || irq.Driver != "virtio-pci") {
			t.Errorf("IRQ 40: rule %q device %q driver %q", irq.Rule, irq.Device, irq.Driver)
		}
	}
}

// TestDaemonIRQPoll: IRQs allocated without a uevent (a driver requests
// them when its device is opened) are found by the /proc/irq poll and
// placed by their rule.
func TestDaemonIRQPoll(t *testing.T) {
	sim := vm4Devices(t)
	dir := t.TempDir()
	writeRenamed(t, filepath.Join(dir, "nic.toml"), "[[rule]]\nname = \"nic\"\nactions = \"eth9-*\"\ncpus = \"1\"\n")
	h := startOn(t, sim, "", func(d *Daemon) {
		d.Engine.SetRules(rulesSet(t, dir))
		d.IRQPollInterval = 10 * time.Millisecond
	})
	if err := sim.AddIRQ(sysfstest.MSI(45, "ITS-PCI-MSIX-"+netDevice, 5, "eth9-rx-0").WithNode(-1)); err != nil {
		t.Fatal(err)
	}
	h.nextReason(SettleIRQs)
	if eff := effectiveOf(t, sim, 45); !eff.Equal(sysfs.NewCPUSet(1)) {
		t.Errorf("a new IRQ of rule nic is on %s, want 1", eff)
	}
}

// TestDaemonIgnoreRule: an ignored IRQ is never written, even when its CPU
// goes offline, and is counted as class ignored.
func TestDaemonIgnoreRule(t *testing.T) {
	sim := vm4Devices(t)
	dir := t.TempDir()
	writeRenamed(t, filepath.Join(dir, "keep.toml"), "[[rule]]\nname = \"uart\"\nactions = \"uart-*\"\nignore = true\n")
	before, _, _ := sim.State(13)
	h := startOn(t, sim, "", func(d *Daemon) { d.Engine.SetRules(rulesSet(t, dir)) })
	if err := sim.SetCPUOnline(1, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 1))
	s := h.next()
	if after, _, _ := sim.State(13); !after.Equal(before) {
		t.Errorf("the ignored IRQ 13's mask went from %s to %s", before, after)
	}
	for _, r := range s.Results {
		if r.IRQ == 13 {
			t.Errorf("the daemon wrote the ignored IRQ 13: %+v", r)
		}
	}
	for _, irq := range s.State.IRQs {
		if irq.IRQ == 13 && (irq.Class != affinity.ClassIgnored || !strings.Contains(irq.Reason, "uart")) {
			t.Errorf("IRQ 13: class %s reason %q, want ignored by rule uart", irq.Class, irq.Reason)
		}
	}
	if n := testutil.ToFloat64(h.d.Metrics.unmovable.WithLabelValues(string(affinity.ClassIgnored))); n != 1 {
		t.Errorf("irqshift_unmovable_irqs{class=\"ignored\"} = %v, want 1", n)
	}
}

// TestReloadFollowsAnotherRulesDir: a SIGHUP whose configuration names
// another rules directory applies its rules and follows it from then on:
// a change there settles at once; the old directory is no longer watched.
func TestReloadFollowsAnotherRulesDir(t *testing.T) {
	sim := vm4Devices(t)
	oldDir, newDir := t.TempDir(), t.TempDir()
	reloads := make(chan struct{})
	h := startOn(t, sim, "", func(d *Daemon) {
		d.RulesDir = oldDir
		d.Engine.SetRules(rulesSet(t, oldDir))
		d.Reload = reloads
		d.reloadSettings = func() (affinity.Settings, error) {
			return affinity.Settings{RulesDir: newDir, Rules: rulesSet(t, newDir)}, nil
		}
	})
	reloads <- struct{}{}
	h.nextReason(SettleReload)
	if h.d.RulesDir != newDir {
		t.Fatalf("after the reload the daemon follows %q, want %q", h.d.RulesDir, newDir)
	}
	// A rule written in the old directory is not followed any more…
	writeRenamed(t, filepath.Join(oldDir, "10-old.toml"), "[[rule]]\nname = \"old\"\ndevice = \""+rngDevice+"\"\ncpus = \"1\"\n")
	// …one in the new directory applies at once.
	writeRenamed(t, filepath.Join(newDir, "10-rng.toml"), "[[rule]]\nname = \"rng\"\ndevice = \""+rngDevice+"\"\ncpus = \"2\"\n")
	h.nextReason(SettleRules)
	if got := h.d.Engine.Rules(); got.Len() != 1 || got.Rules[0].Name != "rng" {
		t.Errorf("the engine's rules after a change in the new directory: %+v", got)
	}
	for _, irq := range []int{20, 21} {
		if eff := effectiveOf(t, sim, irq); !eff.Equal(sysfs.NewCPUSet(2)) {
			t.Errorf("rule rng's IRQ %d is on %s, want 2", irq, eff)
		}
	}
}
