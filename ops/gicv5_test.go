package ops

import (
	"context"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// TestGICv5DrainAndRebalance drains and rebalances the simulated GICv5
// machine (kernel 6.17): the SPIs, the IWB wire and the ITS-v5 MSIs move,
// and no write ever goes to a PPI, an IPI or a managed queue.
func TestGICv5DrainAndRebalance(t *testing.T) {
	r := newRig(t, sysfstest.GICv5VM4())
	ctx := context.Background()
	perCPUBefore := map[int][2]sysfs.CPUSet{}
	for _, irq := range r.sim.IRQs() {
		if r.sim.Kind(irq) == sysfstest.KindPerCPU {
			aff, eff, _ := r.sim.State(irq)
			perCPUBefore[irq] = [2]sysfs.CPUSet{aff, eff}
		}
	}
	if len(perCPUBefore) != 32+5 {
		t.Fatalf("%d per-CPU IRQs, want 32 IPIs and 5 PPIs", len(perCPUBefore))
	}
	// A GICv5 SPI or LPI goes to the first online CPU of its mask: all
	// nine movable IRQs start on CPU0.
	if counts := r.perCPU(); counts[0] != 9 || counts[1]+counts[2]+counts[3] != 0 {
		t.Fatalf("boot layout %v, want the 9 movable IRQs on CPU0", counts)
	}
	for _, irq := range r.state().IRQs {
		if irq.Chip == "GICv5-PPI" && irq.Class != affinity.ClassPerCPU {
			t.Errorf("IRQ %d (%s %d) is %s", irq.IRQ, irq.Chip, irq.HWIRQ, irq.Class)
		}
		if irq.Chip == "GICv5-IPI" {
			t.Errorf("IRQ %d: the IPIs are IRQ_HIDDEN, yet listed", irq.IRQ)
		}
	}

	if _, err := Drain(ctx, r.env, DrainRequest{CPUs: []int{0}}); err != nil {
		t.Fatal(err)
	}
	movedChips := map[string]bool{}
	for _, w := range r.sim.Writes() {
		if w.Errno == 0 {
			movedChips[chipFamily(r, w.IRQ)] = true
		}
	}
	for _, family := range []string{"GICv5-SPI", "ITS-v5-GICv5-IWB", "ITS-v5-PCI-MSIX"} {
		if !movedChips[family] {
			t.Errorf("the drain of CPU0 moved no %s IRQ (moved: %v)", family, movedChips)
		}
	}
	if n := r.perCPU()[0]; n != 0 {
		t.Errorf("CPU0 holds %d movable IRQs after its drain", n)
	}

	if _, err := Rebalance(ctx, r.env, RebalanceRequest{}); err != nil {
		t.Fatal(err)
	}
	if counts := r.perCPU(); counts[0] != 0 || spread(counts, sysfs.NewCPUSet(1, 2, 3)) > 1 {
		t.Errorf("after drain and rebalance: %v, want CPU0 empty and spread ≤ 1 over 1-3", counts)
	}
	if _, err := Undrain(ctx, r.env, UndrainRequest{CPUs: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if counts := r.perCPU(); counts[0] == 0 || spread(counts, r.sim.Online()) > 1 {
		t.Errorf("after undrain: %v, want CPU0 used and spread ≤ 1", counts)
	}

	for _, w := range r.sim.Writes() {
		if k := r.sim.Kind(w.IRQ); !k.Movable() {
			t.Errorf("wrote %s to IRQ %d (%s, %s)", w.CPUs, w.IRQ, k, chipFamily(r, w.IRQ))
		}
	}
	for irq, before := range perCPUBefore {
		aff, eff, _ := r.sim.State(irq)
		if !aff.Equal(before[0]) || !eff.Equal(before[1]) {
			t.Errorf("per-CPU IRQ %d changed: %s/%s, was %s/%s", irq, aff, eff, before[0], before[1])
		}
	}
}

// chipFamily is the chip of irq in the simulator's /sys/kernel/irq, less
// its device: "GICv5-SPI", "ITS-v5-PCI-MSIX", "ITS-v5-GICv5-IWB".
func chipFamily(r *rig, irq int) string {
	r.t.Helper()
	k, err := r.sim.FS().KernelIRQ(irq)
	if err != nil {
		r.t.Fatal(err)
	}
	chip := k.ChipName
	if bdf, ok := sysfs.ChipPCIAddress(chip); ok {
		return strings.TrimSuffix(chip, "-"+bdf)
	}
	if i := strings.Index(chip, "-IWB-"); i >= 0 {
		return chip[:i+len("-IWB")]
	}
	return chip
}
