package affinity

import (
	"regexp"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		row      sysfs.Interrupt
		aff      sysfs.IRQAffinity
		memory   Memory
		banned   map[int]bool
		want     Class
		inReason string
	}{
		{name: "GICv3 PPI arch_timer", row: sysfs.Interrupt{IRQ: 11, Chip: "GICv3", HWIRQ: 27, HasHWIRQ: true, Actions: []string{"arch_timer"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus(""), HasEffective: true}, want: ClassPerCPU, inReason: "PPI 27"},
		{name: "GICv2 PPI on a fixture without effective", row: sysfs.Interrupt{IRQ: 11, Chip: "GICv2", HWIRQ: 30, HasHWIRQ: true, Actions: []string{"arch_timer"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3")}, want: ClassPerCPU, inReason: "PPI 30"},
		{name: "SGI", row: sysfs.Interrupt{IRQ: 1, Chip: "GICv3", HWIRQ: 3, HasHWIRQ: true, Actions: []string{"ipi"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3")}, want: ClassPerCPU, inReason: "SGI 3"},
		{name: "extended PPI", row: sysfs.Interrupt{IRQ: 40, Chip: "GICv3", HWIRQ: 1060, HasHWIRQ: true, Actions: []string{"x"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3")}, want: ClassPerCPU, inReason: "EPPI"},
		{name: "partitioned PPI", row: sysfs.Interrupt{IRQ: 31, Chip: "GICv3-23", HWIRQ: 0, HasHWIRQ: true, Actions: []string{"arm-pmu"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3")}, want: ClassPerCPU, inReason: "partitioned"},
		{name: "empty effective on any chip", row: sysfs.Interrupt{IRQ: 50, Chip: "interrupt-controller@7ef00100", HWIRQ: 2, HasHWIRQ: true, Actions: []string{"x"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), HasEffective: true}, want: ClassPerCPU, inReason: "empty effective"},
		{name: "SPI is movable", row: sysfs.Interrupt{IRQ: 13, Chip: "GICv3", HWIRQ: 33, HasHWIRQ: true, Actions: []string{"uart-pl011"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "hwirq 27 on a non-GIC chip is not a PPI", row: sysfs.Interrupt{IRQ: 60, Chip: "ITS-MSI", HWIRQ: 27, HasHWIRQ: true, Actions: []string{"nvme0q1"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("1"), HasEffective: true}, want: ClassMovable},
		{name: "no action", row: sysfs.Interrupt{IRQ: 70, Chip: "GICv3", HWIRQ: 40, HasHWIRQ: true},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassNoAction},
		{name: "managed by 0444 mode (6.12)", row: sysfs.Interrupt{IRQ: 26, Chip: "ITS-PCI-MSIX-0000:00:03.0", HWIRQ: 3, HasHWIRQ: true, Actions: []string{"virtio2-req.2"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("2"), Effective: cpus("2"), HasEffective: true, ReadOnly: true}, want: ClassManaged, inReason: "read-only"},
		{name: "managed learned from a refused write (6.1)", row: sysfs.Interrupt{IRQ: 26, Chip: "ITS-MSI", HWIRQ: 49155, HasHWIRQ: true, Actions: []string{"virtio2-req.2"}},
			aff:    sysfs.IRQAffinity{Affinity: cpus("2"), Effective: cpus("2"), HasEffective: true},
			memory: Memory{"26/ITS-MSI/virtio2-req.2": "managed: the kernel refused a write (EIO)"}, want: ClassManaged, inReason: "EIO"},
		{name: "memory is per device, not per number", row: sysfs.Interrupt{IRQ: 26, Chip: "ITS-MSI", HWIRQ: 1, HasHWIRQ: true, Actions: []string{"eth0"}},
			aff:    sysfs.IRQAffinity{Affinity: cpus("2"), Effective: cpus("2"), HasEffective: true},
			memory: Memory{"26/ITS-MSI/virtio2-req.2": "managed"}, want: ClassMovable},
		{name: "banned by the user", row: sysfs.Interrupt{IRQ: 13, Chip: "GICv3", HWIRQ: 33, HasHWIRQ: true, Actions: []string{"uart-pl011"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, banned: map[int]bool{13: true}, want: ClassBanned, inReason: "user"},
		{name: "x86 IO-APIC line is movable", row: sysfs.Interrupt{IRQ: 8, Chip: "IR-IO-APIC", HWIRQ: 8, HasHWIRQ: true, Handler: "edge", Actions: []string{"rtc0"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-19"), Effective: cpus("4"), HasEffective: true}, want: ClassMovable},
		// GICv5 (kernel 6.17+, drivers/irqchip/irq-gic-v5*.c): the chip,
		// not the hwirq, says what is per-CPU.
		{name: "GICv5 PPI arch_timer", row: sysfs.Interrupt{IRQ: 35, Chip: "GICv5-PPI", HWIRQ: 27, HasHWIRQ: true, Actions: []string{"arch_timer"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), HasEffective: true, ReadOnly: true}, want: ClassPerCPU, inReason: "GICv5 PPI 27"},
		{name: "GICv5 PPI above 31 without effective file", row: sysfs.Interrupt{IRQ: 60, Chip: "GICv5-PPI", HWIRQ: 100, HasHWIRQ: true, Actions: []string{"imp-def"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3")}, want: ClassPerCPU, inReason: "GICv5 PPI 100"},
		{name: "GICv5 IPI bound to its CPU is per-CPU, not managed", row: sysfs.Interrupt{IRQ: 10, Chip: "GICv5-IPI", HWIRQ: 9, HasHWIRQ: true, Trigger: "Edge", Actions: []string{"IPI"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("1"), Effective: cpus("1"), HasEffective: true, ReadOnly: true}, want: ClassPerCPU, inReason: "GICv5 IPI"},
		{name: "GICv5 SPI 5 is not an SGI", row: sysfs.Interrupt{IRQ: 38, Chip: "GICv5-SPI", HWIRQ: 5, HasHWIRQ: true, Trigger: "Level", Actions: []string{"uart-pl011"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "GICv5 SPI 27 is not a PPI", row: sysfs.Interrupt{IRQ: 39, Chip: "GICv5-SPI", HWIRQ: 27, HasHWIRQ: true, Trigger: "Level", Actions: []string{"rtc-pl031"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "GICv5 SPI 0 without a driver", row: sysfs.Interrupt{IRQ: 41, Chip: "GICv5-SPI", HWIRQ: 0, HasHWIRQ: true, Trigger: "Level"},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassNoAction},
		{name: "GICv5 LPI 3 is movable", row: sysfs.Interrupt{IRQ: 42, Chip: "GICv5-LPI", HWIRQ: 3, HasHWIRQ: true, Trigger: "Edge", Actions: []string{"lpi-user"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("2"), HasEffective: true}, want: ClassMovable},
		{name: "GICv5 IWB wire 3 is movable", row: sysfs.Interrupt{IRQ: 40, Chip: "ITS-v5-GICv5-IWB-2f000000.interrupt-controller", HWIRQ: 3, HasHWIRQ: true, Trigger: "Level", Actions: []string{"virtio3"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "GICv5 IWB template name is movable", row: sysfs.Interrupt{IRQ: 40, Chip: "GICv5-IWB", HWIRQ: 3, HasHWIRQ: true, Trigger: "Level", Actions: []string{"virtio3"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "ITS-v5 MSI-X vector 1 is movable", row: sysfs.Interrupt{IRQ: 42, Chip: "ITS-v5-PCI-MSIX-0000:00:01.0", HWIRQ: 1, HasHWIRQ: true, Trigger: "Edge", Actions: []string{"virtio1-input"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0-3"), Effective: cpus("0"), HasEffective: true}, want: ClassMovable},
		{name: "ITS-v5 managed queue", row: sysfs.Interrupt{IRQ: 44, Chip: "ITS-v5-PCI-MSIX-0000:00:02.0", HWIRQ: 1, HasHWIRQ: true, Trigger: "Edge", Actions: []string{"virtio2-req.0"}},
			aff: sysfs.IRQAffinity{Affinity: cpus("0"), Effective: cpus("0"), HasEffective: true, ReadOnly: true}, want: ClassManaged, inReason: "read-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := tt.row
			row.Counts = []uint64{1, 2, 3, 4}
			aff := tt.aff
			aff.IRQ = row.IRQ
			snap := &sysfs.Snapshot{
				Interrupts: sysfs.Interrupts{CPUs: []int{0, 1, 2, 3}, IRQs: []sysfs.Interrupt{row}},
				Affinity:   map[int]sysfs.IRQAffinity{row.IRQ: aff},
			}
			irqs := Classify(snap, tt.memory, Policy{BannedIRQs: tt.banned})
			if len(irqs) != 1 {
				t.Fatalf("got %d IRQs", len(irqs))
			}
			got := irqs[0]
			if got.Class != tt.want {
				t.Errorf("class = %s (%s), want %s", got.Class, got.Reason, tt.want)
			}
			if !strings.Contains(got.Reason, tt.inReason) {
				t.Errorf("reason %q does not mention %q", got.Reason, tt.inReason)
			}
			if got.Movable() != (tt.want == ClassMovable) || (got.Movable() && got.Reason != "") {
				t.Errorf("movable %v with reason %q", got.Movable(), got.Reason)
			}
			if got.CountOn(3) != 4 || got.Total != 10 {
				t.Errorf("counts %v total %d", got.Counts, got.Total)
			}
		})
	}
}

func TestClassifySkipsVanishedAndSorts(t *testing.T) {
	snap := &sysfs.Snapshot{
		Interrupts: sysfs.Interrupts{CPUs: []int{0, 2}, IRQs: []sysfs.Interrupt{
			{IRQ: 30, Chip: "GICv3", HWIRQ: 40, HasHWIRQ: true, Actions: []string{"a"}, Counts: []uint64{5, 7}},
			{IRQ: 12, Chip: "GICv3", HWIRQ: 41, HasHWIRQ: true, Actions: []string{"b"}, Counts: []uint64{0, 0}},
			{IRQ: 20, Chip: "GICv3", HWIRQ: 42, HasHWIRQ: true, Actions: []string{"gone"}, Counts: []uint64{0, 0}},
		}},
		Affinity: map[int]sysfs.IRQAffinity{30: {IRQ: 30, Affinity: cpus("0")}, 12: {IRQ: 12, Affinity: cpus("2")}},
	}
	irqs := Classify(snap, nil, Policy{})
	if len(irqs) != 2 || irqs[0].IRQ != 12 || irqs[1].IRQ != 30 {
		t.Fatalf("got %+v", irqs)
	}
	// Counts are keyed by CPU number from the header, not by column.
	if irqs[1].CountOn(2) != 7 || irqs[1].CountOn(1) != 0 {
		t.Errorf("counts %v, want CPU2=7", irqs[1].Counts)
	}
}

func TestAllowedCPUs(t *testing.T) {
	info := sysfs.CPUInfo{Online: cpus("0-7"), Isolated: cpus("6"), NohzFull: cpus("7")}
	if got := (BannedCPUs{User: cpus("0")}).Allowed(info).String(); got != "1-5" {
		t.Errorf("allowed = %q, want 1-5", got)
	}
	if got := (BannedCPUs{User: cpus("0"), IncludeIsolated: true}).Allowed(info).String(); got != "1-7" {
		t.Errorf("allowed with isolated = %q, want 1-7", got)
	}
}

// The regular expressions the hand-written chip matchers replace.
var (
	gicChipRE         = regexp.MustCompile(`^GIC(v[0-9]+)?(-[0-9]+)?$`)
	partitionedChipRE = regexp.MustCompile(`^GICv[0-9]+-[0-9]+$`)
	gicv5PerCPUChipRE = regexp.MustCompile(`^GICv5-(PPI|IPI)$`)
	chipMatcherCases  = []string{"GIC", "GICv2", "GICv3", "GIC-0", "GICv3-23", "GICv5-PPI", "GICv", "GIC-", "GICv3-", "GICv-1",
		"GICv33-1234", "xGICv3", "GICv3 ", "ITS-MSI", "GICv3-23-1", "GIC-0-1", "GICvv3", "", "G", "GICv3x", "GIC-9v3",
		"GICv5-IPI", "GICv5-SPI", "GICv5-LPI", "GICv5-IWB", "GICv5-ITS-MSI", "ITS-v5-PCI-MSIX-0000:00:02.0",
		"ITS-v5-GICv5-IWB-2f000000.interrupt-controller", "GICv5", "GICv5-", "GICv5-5", "GICv5-PPIx", "GICv5-ppi",
		" GICv5-PPI", "GICv5-PPI ", "GICv4-PPI", "GICv5-IPI-0"}
)

// TestGICChipMatchers checks the hand-written chip matchers against the
// regular expressions they replace.
func TestGICChipMatchers(t *testing.T) {
	for _, chip := range chipMatcherCases {
		checkChipMatchers(t, chip)
	}
	// The GICv5's chips are not GICv2/v3 names: their hwirqs must never
	// meet perCPUHWIRQ's INTID ranges.
	for _, chip := range []string{"GICv5-PPI", "GICv5-IPI", "GICv5-SPI", "GICv5-LPI", "GICv5-IWB"} {
		if gicChip(chip) || partitionedPPIChip(chip) {
			t.Errorf("%q is taken for a GICv2/v3 chip", chip)
		}
	}
}

func FuzzGICChipMatchers(f *testing.F) {
	for _, s := range chipMatcherCases {
		f.Add(s)
	}
	f.Fuzz(checkChipMatchers)
}

func checkChipMatchers(t *testing.T, chip string) {
	t.Helper()
	if got, want := gicChip(chip), gicChipRE.MatchString(chip); got != want {
		t.Errorf("gicChip(%q) = %v, want %v", chip, got, want)
	}
	if got, want := partitionedPPIChip(chip), partitionedChipRE.MatchString(chip); got != want {
		t.Errorf("partitionedPPIChip(%q) = %v, want %v", chip, got, want)
	}
	if got, want := gicv5PerCPUChip(chip), gicv5PerCPUChipRE.MatchString(chip); got != want {
		t.Errorf("gicv5PerCPUChip(%q) = %v, want %v", chip, got, want)
	}
}
