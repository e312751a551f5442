package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// oneshot is a simulated `irqbalance --oneshot`: a process in the
// simulator's /proc while it runs, which writes masks.
type oneshot struct {
	t   *testing.T
	dir string
}

func startOneshot(t *testing.T, sim *sysfstest.Sim, pid string) *oneshot {
	t.Helper()
	dir := filepath.Join(sim.ProcDir(), pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comm"), []byte("irqbalance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &oneshot{t: t, dir: dir}
}

func (o *oneshot) exit() {
	if err := os.RemoveAll(o.dir); err != nil {
		o.t.Fatal(err)
	}
}

// TestDaemonForeignBalancer is a CRI-O pod's start and stop with
// irqbalance installed but not enabled: the ban file changes, the oneshot
// runs and writes its masks (stacking IRQs on CPU0, single-CPU masks
// among them, as measured in the VM), and exits. The daemon learns none of
// its masks as pins, and once it ends puts its own placement back (counts
// within one, the banned CPU empty) at once, with the ban kept; the same at
// the pod's stop, when the ban is lifted.
func TestDaemonForeignBalancer(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	banFile := filepath.Join(t.TempDir(), "irqbalance")
	h := startOn(t, sim, filepath.Join(t.TempDir(), "state.json"), func(d *Daemon) {
		d.Bans = &Bans{FS: sim.FS(), Files: []string{banFile}}
		d.ForeignWriters = DefaultForeignWriters
	})
	movable := []int{13, 18, 20, 21, 22, 23, 28, 29, 30}
	for i, step := range []struct {
		ban    string
		banned sysfs.CPUSet
		masks  map[int]sysfs.CPUSet
	}{
		{"IRQBALANCE_BANNED_CPUS=8\n", sysfs.NewCPUSet(3), map[int]sysfs.CPUSet{
			20: sysfs.NewCPUSet(0, 1, 2), 21: sysfs.NewCPUSet(0, 1, 2), 23: sysfs.NewCPUSet(0), 28: sysfs.NewCPUSet(0), 29: sysfs.NewCPUSet(0, 1, 2)}},
		{"IRQBALANCE_BANNED_CPUS=\n", sysfs.CPUSet{}, map[int]sysfs.CPUSet{
			20: sysfs.NewCPUSet(0), 21: sysfs.NewCPUSet(0, 1, 2, 3), 23: sysfs.NewCPUSet(1), 29: sysfs.NewCPUSet(0), 30: sysfs.NewCPUSet(0)}},
	} {
		// The oneshot is there when the ban file's change wakes the
		// daemon (CRI-O starts it right after writing the file; the
		// daemon also looks for one for ForeignScanWindow after).
		proc := startOneshot(t, sim, "4242")
		writeRenamed(t, banFile, step.ban)
		h.nextReason(SettleBans)
		for irq, mask := range step.masks {
			if err := sim.WriteAffinity(irq, mask); err != nil {
				t.Fatal(err)
			}
		}
		proc.exit()
		s := h.nextReason(SettleBalancer)
		if len(s.State.LearnedPins) != 0 || len(h.d.Engine.Pins()) != 0 {
			t.Errorf("step %d: the oneshot's masks were learned as pins: %v (pins %v)", i, s.State.LearnedPins, h.d.Engine.Pins())
		}
		if !s.State.Banned.Equal(step.banned) {
			t.Errorf("step %d: banned %s after the oneshot, want %s", i, s.State.Banned, step.banned)
		}
		count := map[int]int{}
		for _, irq := range movable {
			_, eff, _ := sim.State(irq)
			if eff.Len() != 1 || eff.Intersects(step.banned) {
				t.Errorf("step %d: IRQ %d on %s after the oneshot (banned %s)", i, irq, eff, step.banned)
			}
			count[eff.First()]++
		}
		allowed := sysfs.NewCPUSet(0, 1, 2, 3).Difference(step.banned)
		lo, hi := len(movable), 0
		for _, cpu := range allowed.CPUs() {
			lo, hi = min(lo, count[cpu]), max(hi, count[cpu])
		}
		if hi-lo > 1 {
			t.Errorf("step %d: movable IRQs per CPU %v after the oneshot, want within one over %s", i, count, allowed)
		}
	}
	// Without a foreign balancer, a mask set by hand is still the
	// operator's: it is learned at the next full settle.
	if err := sim.WriteAffinity(13, sysfs.NewCPUSet(2)); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Resync: true, Reason: hotplug.ReasonPeriodic, CPU: -1})
	s := h.nextReason(SettleResync)
	if len(s.State.LearnedPins) != 1 || s.State.LearnedPins[0].IRQ != 13 {
		t.Errorf("a mask set by hand with no balancer running: learned %v, want IRQ 13's", s.State.LearnedPins)
	}
}

// TestDaemonForeignBalancerAfterBan: a oneshot that starts after the ban
// file changed is found by the scans that follow the change, and its end
// is settled for.
func TestDaemonForeignBalancerAfterBan(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	banFile := filepath.Join(t.TempDir(), "irqbalance")
	log := &syncBuffer{}
	h := startOn(t, sim, "", func(d *Daemon) {
		d.Bans = &Bans{FS: sim.FS(), Files: []string{banFile}}
		d.ForeignWriters = DefaultForeignWriters
		d.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	writeRenamed(t, banFile, "IRQBALANCE_BANNED_CPUS=4\n")
	h.nextReason(SettleBans)
	proc := startOneshot(t, sim, "4244")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "foreign IRQ balancer running") {
		if time.Now().After(deadline) {
			t.Fatalf("a oneshot started after the ban change was not found:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sim.WriteAffinity(21, sysfs.NewCPUSet(0)); err != nil {
		t.Fatal(err)
	}
	proc.exit()
	s := h.nextReason(SettleBalancer)
	if len(s.State.LearnedPins) != 0 {
		t.Errorf("the oneshot's mask was learned: %v", s.State.LearnedPins)
	}
}
