package affinity

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// gicv5Fixture is the GICv5 machine's /proc/interrupts as kernel 6.17
// prints it (see the fixtures' README).
const gicv5Fixture = "../sysfs/testdata/proc-interrupts/39-synthetic-arm64-6.17-gicv5-4cpu.txt"

// gicv5Want is what each listed IRQ of the GICv5 machine (the fixture and
// sysfstest.GICv5VM4) must be classified as, and a part of the reason.
var gicv5Want = map[int]struct {
	class    Class
	inReason string
}{
	35: {ClassPerCPU, "GICv5 PPI 27"}, // arch_timer
	37: {ClassPerCPU, "GICv5 PPI 23"}, // arm-pmu
	38: {ClassMovable, ""},            // uart-pl011, GICv5-SPI 5
	39: {ClassMovable, ""},            // rtc-pl031, GICv5-SPI 6
	40: {ClassMovable, ""},            // virtio3 on IWB wire 3
	41: {ClassMovable, ""},            // ITS-v5-PCI-MSIX-0000:00:01.0 0
	42: {ClassMovable, ""},
	43: {ClassMovable, ""},
	44: {ClassManaged, "read-only"}, // virtio-blk queues
	45: {ClassManaged, "read-only"},
	46: {ClassManaged, "read-only"},
	47: {ClassManaged, "read-only"},
	48: {ClassMovable, ""},
	49: {ClassMovable, ""},
	50: {ClassMovable, ""},
}

// checkGICv5Classes checks irqs against gicv5Want: the same IRQs, each
// with its class and reason.
func checkGICv5Classes(t *testing.T, irqs []IRQ) {
	t.Helper()
	var got []int
	for _, irq := range irqs {
		got = append(got, irq.IRQ)
		want, ok := gicv5Want[irq.IRQ]
		switch {
		case !ok:
			t.Errorf("IRQ %d (%s %d) is listed; only the IRQs with an action and no IRQ_HIDDEN are", irq.IRQ, irq.Chip, irq.HWIRQ)
		case irq.Class != want.class:
			t.Errorf("IRQ %d (%s %d): class %s (%s), want %s", irq.IRQ, irq.Chip, irq.HWIRQ, irq.Class, irq.Reason, want.class)
		case !strings.Contains(irq.Reason, want.inReason):
			t.Errorf("IRQ %d (%s %d): reason %q does not mention %q", irq.IRQ, irq.Chip, irq.HWIRQ, irq.Reason, want.inReason)
		}
	}
	if len(got) != len(gicv5Want) {
		t.Errorf("classified IRQs %v, want the %d of the machine", got, len(gicv5Want))
	}
}

// TestClassifyGICv5Fixture reads the fixture with the real parser, gives
// each row the /proc/irq/N state that kernel 6.17 gives its kind, and
// checks every IRQ's class and reason.
func TestClassifyGICv5Fixture(t *testing.T) {
	data, err := os.ReadFile(gicv5Fixture)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, dir := range []string{"proc", "sys"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc", "interrupts"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := sysfs.NewFS(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := fs.Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	all := cpus("0-3")
	snap := &sysfs.Snapshot{Interrupts: in, Affinity: map[int]sysfs.IRQAffinity{}}
	for _, row := range in.IRQs {
		aff := sysfs.IRQAffinity{IRQ: row.IRQ, Affinity: all, HasEffective: true}
		switch {
		case row.Chip == "GICv5-PPI":
			// irq_set_percpu_devid and no irq_set_affinity: nothing
			// sets an effective CPU, and irq_can_set_affinity_usr is
			// false, so the mask is 0444.
			aff.ReadOnly = true
		case strings.HasPrefix(row.Actions[0], "virtio2-req."):
			// Managed queue i on CPU i (gicv5_lpi_irq_set_affinity
			// takes the first online CPU of the mask).
			cpu := sysfs.NewCPUSet(int(row.HWIRQ) - 1)
			aff.Affinity, aff.Effective, aff.ReadOnly = cpu, cpu, true
		default:
			// SPI, IWB wire or ITS MSI with the default mask: the
			// first online CPU, CPU0.
			aff.Effective = sysfs.NewCPUSet(0)
		}
		snap.Affinity[row.IRQ] = aff
	}
	checkGICv5Classes(t, Classify(snap, nil, Policy{}))
}

// TestClassifyGICv5Simulated classifies a snapshot of the simulated
// GICv5 machine, /proc/irq files and modes included: its hidden IPIs and
// action-less PPIs are not listed, and the rest are classified as on
// the fixture.
func TestClassifyGICv5Simulated(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.GICv5VM4())
	snap, err := sim.FS().Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	irqs := Classify(snap, nil, Policy{})
	checkGICv5Classes(t, irqs)
	for _, irq := range irqs {
		if irq.Movable() != sim.Kind(irq.IRQ).Movable() {
			t.Errorf("IRQ %d (%s): movable %v, but the simulated kernel says %s", irq.IRQ, irq.Chip, irq.Movable(), sim.Kind(irq.IRQ))
		}
	}
	// The IPIs exist for the kernel all the same, per-CPU.
	ipis := 0
	for _, n := range sim.IRQs() {
		if n <= 32 && sim.Kind(n) == sysfstest.KindPerCPU {
			ipis++
		}
	}
	if ipis != 32 {
		t.Errorf("the simulated machine has %d per-CPU IRQs below 33, want its 32 IPIs", ipis)
	}
}

// TestClassifyGICv5IPIFromSysfs: a GICv5 IPI that shows up through
// /sys/kernel/irq/N rather than /proc/interrupts (Refresh describes an
// IRQ that appeared from there, and IRQ_HIDDEN does not hide those
// files) is per-CPU, although its files show an effective CPU and a
// read-only mask as a managed IRQ's do.
func TestClassifyGICv5IPIFromSysfs(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.GICv5VM4())
	fs := sim.FS()
	prev, err := fs.Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const irq = 60
	if err := sim.AddIRQ(sysfstest.PerCPU(irq, "GICv5-IPI", 33, "Edge", "IPI").WithAffinity(1).Hide()); err != nil {
		t.Fatal(err)
	}
	// The kernel's IPI is bound to CPU1 (irq_force_affinity); the
	// simulator leaves per-CPU IRQs without an effective CPU.
	path := fs.ProcPath("irq", "60", "effective_affinity_list")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	snap, err := fs.Refresh(prev, prev.CPUs.Online, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(snap.Appeared, irq) {
		t.Fatalf("Refresh did not find IRQ %d (appeared %v)", irq, snap.Appeared)
	}
	irqs := classifyRefreshed(Classify(prev, nil, Policy{}), snap, nil, Policy{})
	i := slices.IndexFunc(irqs, func(q IRQ) bool { return q.IRQ == irq })
	if i < 0 {
		t.Fatalf("IRQ %d not classified", irq)
	}
	got := irqs[i]
	if !got.ReadOnly || !got.Effective.Equal(sysfs.NewCPUSet(1)) {
		t.Fatalf("IRQ %d: read-only %v, effective %s; want the kernel's read-only mask and CPU1", irq, got.ReadOnly, got.Effective)
	}
	if got.Class != ClassPerCPU || !strings.Contains(got.Reason, "GICv5 IPI") {
		t.Errorf("IRQ %d (%s, actions %v): %s (%s), want per-CPU as a GICv5 IPI", irq, got.Chip, got.Actions, got.Class, got.Reason)
	}
}
