package sysfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

const interruptsTestdata = "testdata/proc-interrupts"

func readInterruptsFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(interruptsTestdata, name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func u(v ...uint64) []uint64 { return v }

// zeros returns n zero counts, with want[i] = v for each (i, v) pair in at.
func zeros(n int, at ...uint64) []uint64 {
	c := make([]uint64, n)
	for i := 0; i+1 < len(at); i += 2 {
		c[at[i]] = at[i+1]
	}
	return c
}

func cpuRange(n int) []int {
	c := make([]int, n)
	for i := range c {
		c[i] = i
	}
	return c
}

// gic builds an arm row with a hwirq and a trigger.
func gic(irq int, counts []uint64, chip string, hwirq uint64, trigger string, actions ...string) Interrupt {
	return Interrupt{IRQ: irq, Counts: counts, Chip: chip, HWIRQ: hwirq, HasHWIRQ: true, Trigger: trigger, Actions: actions}
}

// x86 builds a row printed as "<hwirq>-<handler>".
func x86(irq int, counts []uint64, chip string, hwirq uint64, handler string, actions ...string) Interrupt {
	return Interrupt{IRQ: irq, Counts: counts, Chip: chip, HWIRQ: hwirq, HasHWIRQ: true, Handler: handler, Actions: actions}
}

func TestParseInterruptsFixtures(t *testing.T) {
	ipis61 := []string{"Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
		"CPU stop (for crash dump) interrupts", "Timer broadcast interrupts", "IRQ work interrupts",
		"CPU wake-up interrupts"}
	var vfio []string
	for i := range 34 {
		vfio = append(vfio, fmt.Sprintf("vfio-intx(0000:%02x:00.0)", i))
	}
	tests := []struct {
		file          string
		cpus          []int
		nIRQs, nNamed int
		irqs          []Interrupt // rows that must be there as given, found by IRQ number
		named         []namedRow  // rows that must be there as given, found by name
	}{
		{
			file: "01-rockpi4-rk3399-6cpu.txt", cpus: cpuRange(6), nIRQs: 43, nNamed: 8,
			irqs: []Interrupt{
				gic(23, u(4221703, 2325251, 5737616, 1332002, 1418781, 1368697), "GICv3", 30, "Level", "arch_timer"),
				gic(31, u(11137, 2335, 4349, 978, 0, 0), "GICv3-23", 0, "Level", "arm-pmu"),
				gic(42, zeros(6), "GICv3", 151, "Level", "ff8f3f00.iommu", "ff8f0000.vop"),
				gic(50, zeros(6), "rockchip_gpio_irq", 21, "Level", "rk808"),
				gic(56, zeros(6), "rk808", 5, "Edge", "RTC alarm"),
				gic(64, zeros(6), "rockchip_gpio_irq", 7, "Edge", "fe320000.mmc cd"),
				gic(79, zeros(6, 0, 50468710), "rockchip_gpio_irq", 16, "Level", "adis16505"),
			},
			named: []namedRow{
				{"IPI0", u(629986, 29367897, 1604808, 9830343, 7634766, 7528717), "Rescheduling interrupts"},
				{"IPI3", zeros(6), "CPU stop (for crash dump) interrupts"},
				{"Err", u(0), ""},
			},
		},
		{
			file: "07-raspberrypi4-bcm2711-gicv2-4cpu.txt", cpus: cpuRange(4), nIRQs: 36, nNamed: 8,
			irqs: []Interrupt{
				gic(9, zeros(4), "GICv2", 25, "Level", "vgic"),
				gic(12, zeros(4), "GICv2", 27, "Level", "kvm guest vtimer"),
				gic(27, zeros(4), "GICv2", 175, "Level", "PCIe PME", "aerdrv"),
				gic(30, u(34078, 0, 0, 0), "BRCM STB PCIe MSI", 524288, "Edge", "xhci_hcd"),
				gic(41, zeros(4), "interrupt-controller@7ef00100", 4, "Level", "vc4 hdmi hpd connected"),
				gic(51, u(52263, 0, 0, 0), "GICv2", 142, "Level", "vc4 crtc", "vc4 crtc"),
				gic(55, zeros(4), "GICv2", 130, "Level", "feb10000.codec"),
			},
			named: []namedRow{{"IPI1", u(138261, 353735, 425067, 295127), "Function call interrupts"}},
		},
		{
			file: "12-x86-intel-desktop-20cpu.txt", cpus: cpuRange(20), nIRQs: 91, nNamed: 19,
			irqs: []Interrupt{
				x86(8, zeros(20), "IR-IO-APIC", 8, "edge", "rtc0"),
				x86(16, zeros(20, 14, 4), "IR-IO-APIC", 16, "fasteoi", "peak_pciefd", "peak_pciefd", "peak_pciefd", "peak_pciefd"),
				x86(18, zeros(20, 18, 687), "IR-IO-APIC", 18, "fasteoi", "i801_smbus", "snd_hda_intel:card2"),
				x86(121, zeros(20), "DMAR-MSI", 1, "edge", "dmar1"),
				x86(230, zeros(20, 15, 138205), "IR-PCI-MSI", 1048576, "edge", "nvidia"),
			},
			named: []namedRow{
				{"LOC", u(8019100, 2732118, 7530896, 1145194, 7715584, 1787839, 8532279, 820360, 10887596, 601426,
					12029097, 810678, 11081674, 781984, 10455644, 576294, 5640682, 3954630, 2196579, 1312346), "Local timer interrupts"},
				{"ERR", u(0), ""},
				{"MIS", u(0), ""},
				{"PIW", zeros(20), "Posted-interrupt wakeup event"},
			},
		},
		{
			file: "20-qemu-arm64-6.1-4cpu.txt", cpus: cpuRange(4), nIRQs: 15, nNamed: 8,
			irqs: []Interrupt{
				gic(11, u(638, 513, 556, 605), "GICv3", 27, "Level", "arch_timer"),
				gic(21, u(0, 5, 0, 0), "ITS-MSI", 32769, "Edge", "virtio1-input"),
				gic(22, u(1, 0, 0, 0), "GICv3", 79, "Edge", "virtio3"),
				gic(30, u(0, 6, 0, 0), "ITS-MSI", 16386, "Edge", "virtio0-output.0"),
			},
			named: []namedRow{
				{"IPI0", u(36, 46, 17, 41), ipis61[0]},
				{"IPI6", zeros(4), ipis61[6]},
				{"Err", u(0), ""},
			},
		},
		{
			file: "30-synthetic-arm64-6.12-its-pci-msix.txt", cpus: cpuRange(4), nIRQs: 15, nNamed: 9,
			irqs: []Interrupt{
				gic(20, zeros(4), "ITS-PCI-MSIX-0000:00:01.0", 0, "Edge", "virtio1-config"),
				gic(25, u(0, 1, 0, 0), "ITS-PCI-MSIX-0000:00:02.0", 2, "Edge", "virtio2-req.1"),
				gic(30, u(0, 6, 0, 0), "ITS-PCI-MSIX-0000:00:03.0", 2, "Edge", "virtio0-output.0"),
			},
			named: []namedRow{
				{"IPI3", zeros(4), "CPU stop NMIs"},
				{"IPI7", zeros(4), "KGDB roundup interrupts"},
			},
		},
		{
			file: "31-synthetic-offline-cpus.txt", cpus: []int{0, 2}, nIRQs: 4, nNamed: 8,
			irqs: []Interrupt{
				gic(11, u(638, 556), "GICv3", 27, "Level", "arch_timer"),
				gic(13, u(0, 12), "GICv3", 33, "Level", "uart-pl011"),
				gic(21, u(0, 5), "ITS-MSI", 32769, "Edge", "virtio1-input"),
				gic(26, u(0, 0), "ITS-MSI", 49155, "Edge", "virtio2-req.2"),
			},
			named: []namedRow{{"IPI0", u(36, 17), ipis61[0]}, {"IPI6", u(0, 0), ipis61[6]}, {"Err", u(0), ""}},
		},
		{
			file: "32-synthetic-4digit-irqs.txt", cpus: []int{0, 1}, nIRQs: 5, nNamed: 3,
			irqs: []Interrupt{
				gic(11, u(5000, 4000), "GICv3", 27, "Level", "arch_timer"),
				gic(999, u(0, 1), "GICv3", 400, "Level", "serial"),
				gic(1000, u(7, 0), "ITS-MSI", 524288, "Edge", "nvme0q0"),
				gic(4095, u(0, 9), "ITS-MSI", 524289, "Edge", "nvme0q1"),
				gic(10240, u(1, 2), "GICv3", 5119, "Level", "espi-dev"),
			},
			named: []namedRow{{"IPI0", u(10, 20), ipis61[0]}, {"IPI1", u(10, 20), ipis61[1]}, {"Err", u(3), ""}},
		},
		{
			file: "33-synthetic-xen-arm64.txt", cpus: []int{0, 1}, nIRQs: 7, nNamed: 8,
			irqs: []Interrupt{
				gic(11, u(900, 800), "GICv3", 27, "Level", "arch_timer"),
				gic(12, u(4321, 0), "GICv3", 31, "Level", "events"),
				{IRQ: 13, Counts: u(17, 0), Chip: "xen-dyn", Trigger: "Edge", Handler: "event", Actions: []string{"xenbus"}},
				{IRQ: 14, Counts: u(0, 3), Chip: "xen-dyn", Trigger: "Edge", Handler: "event", Actions: []string{"blkif"}},
				{IRQ: 15, Counts: u(0, 0), Chip: "xen-dyn", Trigger: "Edge", Handler: "event", Actions: []string{"eth0-q0-tx", "eth0-q0-rx"}},
				{IRQ: 16, Counts: u(2, 2), Chip: "xen-percpu", Trigger: "Edge", Handler: "ipi", Actions: []string{"callfuncsingle0"}},
				{IRQ: 17, Counts: u(0, 0), Chip: "xen-dyn", Trigger: "Edge", Handler: "event"},
			},
		},
		{
			file: "34-synthetic-empty-actions.txt", cpus: cpuRange(4), nIRQs: 5, nNamed: 2,
			irqs: []Interrupt{
				gic(5, zeros(4), "GICv3", 25, "Level", "vgic"),
				gic(17, zeros(4), "GICv3", 35, "Level"),
				gic(18, u(1, 0, 0, 0), "ITS-MSI", 16384, "Edge"),
				gic(19, zeros(4), "GICv3", 36, "Level", "dev"),
				gic(20, zeros(4), "GICv3", 37, "Edge"),
			},
		},
		{
			file: "35-synthetic-ipi-no-space.txt", cpus: cpuRange(4), nIRQs: 1, nNamed: 3,
			irqs: []Interrupt{gic(11, u(4294967295, 2768808080, 7, 0), "GICv3", 27, "Level", "arch_timer")},
			named: []namedRow{
				{"IPI0", u(2768808080, 1234567890, 99, 0), ipis61[0]},
				{"IPI1", u(1000000000, 0, 0, 4294967295), ipis61[1]},
			},
		},
		{
			file: "36-synthetic-err-no-value.txt", cpus: []int{0, 1}, nIRQs: 1, nNamed: 2,
			named: []namedRow{{"IPI0", u(3, 4), ipis61[0]}, {"Err", nil, ""}},
		},
		{
			file: "37-synthetic-x86.txt", cpus: cpuRange(4), nIRQs: 9, nNamed: 5,
			irqs: []Interrupt{
				x86(0, u(44, 0, 0, 0), "IR-IO-APIC", 2, "edge", "timer"),
				x86(8, zeros(4), "IR-IO-APIC", 8, "edge", "rtc0"),
				x86(9, u(0, 7, 0, 0), "IR-IO-APIC", 9, "fasteoi", "acpi"),
				{IRQ: 48, Counts: u(512, 0, 0, 0), Chip: "xen-percpu", Handler: "virq", Actions: []string{"timer0"}},
				{IRQ: 49, Counts: u(3, 0, 0, 0), Chip: "xen-dyn", Handler: "event", Actions: []string{"xenbus"}},
				x86(120, zeros(4), "DMAR-MSI", 0, "edge", "dmar0"),
				x86(127, u(0, 0, 19, 0), "IR-PCI-MSI", 327680, "edge", "xhci_hcd"),
				x86(128, u(0, 0, 0, 5), "IR-PCI-MSI", 2149580800, "edge", "nvme0q1"),
				x86(129, u(1, 1, 1, 1), "PCI-MSI", 1572864, "edge"),
			},
			named: []namedRow{
				{"NMI", u(92, 28, 100, 10), "Non-maskable interrupts"},
				{"LOC", u(8019100, 2732118, 7530896, 1145194), "Local timer interrupts"},
				{"SPU", zeros(4), "Spurious interrupts"},
				{"ERR", u(0), ""},
				{"MIS", u(0), ""},
			},
		},
		{
			file: "38-synthetic-odd-names.txt", cpus: cpuRange(4), nIRQs: 11, nNamed: 2,
			irqs: []Interrupt{
				gic(9, zeros(4), "GICv3-23", 0, "Level", "arm-pmu"),
				gic(30, u(34078, 0, 0, 0), "BRCM STB PCIe MSI", 524288, "Edge", "xhci_hcd"),
				gic(41, zeros(4), "interrupt-controller@7ef00100", 4, "Level", "vc4 hdmi hpd connected"),
				gic(42, zeros(4), "ARMH0061:00", 12, "Edge", "mdio-bus:01"),
				gic(43, u(9, 0, 0, 0), "GICv3", 165, "Level", "ahci-ceva[fd0c0000.ahci]"),
				gic(44, zeros(4), "GICv3", 175, "Level", "PCIe PME", "aerdrv"),
				gic(45, zeros(4), "GICv2", 27, "Level", "kvm guest vtimer"),
				gic(46, zeros(4), "rockchip_gpio_irq", 21, "Level", "rk808"),
				gic(47, zeros(4), "mt-eint", 7, "Edge", "11270000.i2c:touch"),
				gic(48, u(1, 2, 3, 4), "ITS-MSI", 1342177280, "Edge", "mlx5_comp0@pci:0000:01:00.0"),
				gic(49, zeros(4), "GIC-0", 96, "Level", vfio...),
			},
		},
		{
			file: "39-synthetic-arm64-6.17-gicv5-4cpu.txt", cpus: cpuRange(4), nIRQs: 15, nNamed: 9,
			irqs: []Interrupt{
				gic(35, u(1203, 977, 1011, 1160), "GICv5-PPI", 27, "Level", "arch_timer"),
				gic(37, zeros(4), "GICv5-PPI", 23, "Level", "arm-pmu"),
				gic(38, zeros(4, 0, 42), "GICv5-SPI", 5, "Level", "uart-pl011"),
				gic(40, zeros(4, 0, 7), "ITS-v5-GICv5-IWB-2f000000.interrupt-controller", 3, "Level", "virtio3"),
				gic(41, zeros(4), "ITS-v5-PCI-MSIX-0000:00:01.0", 0, "Edge", "virtio1-config"),
				gic(45, zeros(4, 1, 9), "ITS-v5-PCI-MSIX-0000:00:02.0", 2, "Edge", "virtio2-req.1"),
				gic(50, zeros(4, 0, 6), "ITS-v5-PCI-MSIX-0000:00:03.0", 2, "Edge", "virtio0-output.0"),
			},
			named: []namedRow{
				{"IPI0", u(36, 46, 17, 41), "Rescheduling interrupts"},
				{"IPI3", zeros(4), "CPU stop NMIs"},
				{"IPI7", zeros(4), "KGDB roundup interrupts"},
				{"Err", u(0), ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in, err := parseInterrupts(readInterruptsFixture(t, tt.file), true)
			if err != nil {
				t.Fatal(err)
			}
			checkInterruptsInvariants(t, in)
			if !slices.Equal(in.CPUs, tt.cpus) {
				t.Errorf("CPUs = %v, want %v", in.CPUs, tt.cpus)
			}
			if len(in.IRQs) != tt.nIRQs || len(in.named) != tt.nNamed {
				t.Errorf("got %d IRQs and %d named rows, want %d and %d", len(in.IRQs), len(in.named), tt.nIRQs, tt.nNamed)
			}
			for _, want := range tt.irqs {
				i := slices.IndexFunc(in.IRQs, func(r Interrupt) bool { return r.IRQ == want.IRQ })
				if i < 0 {
					t.Errorf("IRQ %d missing", want.IRQ)
					continue
				}
				if d := diffInterrupt(in.IRQs[i], want); d != "" {
					t.Errorf("IRQ %d: %s", want.IRQ, d)
				}
			}
			for _, want := range tt.named {
				i := slices.IndexFunc(in.named, func(r namedRow) bool { return r.Name == want.Name })
				if i < 0 {
					t.Errorf("row %s missing", want.Name)
					continue
				}
				if d := diffNamed(in.named[i], want); d != "" {
					t.Errorf("row %s: %s", want.Name, d)
				}
			}
		})
	}
}

func TestParseInterruptsRows(t *testing.T) {
	const hdr = "           CPU0       CPU1\n"
	tests := []struct {
		name  string
		input string
		irqs  []Interrupt
		named []namedRow
	}{
		{
			name:  "header with leading and trailing space and tabs",
			input: " \t  CPU0  \t CPU1   \t\n 1: 1 2 GICv3 27 Level a\n",
			irqs:  []Interrupt{gic(1, u(1, 2), "GICv3", 27, "Level", "a")},
		},
		{
			name:  "no trailing newline",
			input: hdr + " 11:          1          2     GICv3  27 Level     arch_timer",
			irqs:  []Interrupt{gic(11, u(1, 2), "GICv3", 27, "Level", "arch_timer")},
		},
		{
			name:  "blank lines and CRLF",
			input: "\n" + strings.ReplaceAll(hdr, "\n", "\r\n") + " 11: 1 2  GICv3 27 Level  a, b\r\n\r\n   \n",
			irqs:  []Interrupt{gic(11, u(1, 2), "GICv3", 27, "Level", "a", "b")},
		},
		{
			name:  "counts glued to the colon",
			input: hdr + "11:4294967295 2768808080  GICv3 27 Level a\nIPI0:2768808080 1 Rescheduling interrupts\n",
			irqs:  []Interrupt{gic(11, u(4294967295, 2768808080), "GICv3", 27, "Level", "a")},
			named: []namedRow{{"IPI0", u(2768808080, 1), "Rescheduling interrupts"}},
		},
		{
			name:  "Err with a trailing space and no value",
			input: hdr + "Err: \n",
			named: []namedRow{{"Err", nil, ""}},
		},
		{
			name:  "20-digit counts and hwirq",
			input: hdr + " 1: 18446744073709551615 00000000000000000000000000042 GICv3 18446744073709551615 Edge x\n",
			irqs:  []Interrupt{gic(1, u(math.MaxUint64, 42), "GICv3", math.MaxUint64, "Edge", "x")},
		},
		{
			name:  "chip named - with no hwirq",
			input: hdr + " 1: 0 0        -     Edge      x\n",
			irqs:  []Interrupt{{IRQ: 1, Counts: u(0, 0), Chip: "-", Trigger: "Edge", Actions: []string{"x"}}},
		},
		{
			name:  "chip only, nothing else",
			input: hdr + " 1: 0 0     None\n 2: 0 0\n",
			irqs: []Interrupt{
				{IRQ: 1, Counts: u(0, 0), Chip: "None"},
				{IRQ: 2, Counts: u(0, 0)},
			},
		},
		{
			name:  "no trigger and no handler: chip hwirq actions",
			input: hdr + " 1: 0 0  IO-APIC  7  parport0, foo bar\n 2: 0 0  XT-PIC  cascade\n",
			irqs: []Interrupt{
				{IRQ: 1, Counts: u(0, 0), Chip: "IO-APIC", HWIRQ: 7, HasHWIRQ: true, Actions: []string{"parport0", "foo bar"}},
				{IRQ: 2, Counts: u(0, 0), Chip: "XT-PIC", Actions: []string{"cascade"}},
			},
		},
		{
			name:  "handler after the trigger and action starting with a dash",
			input: hdr + " 1: 0 0  GICv3  27 Level   -fasteoi  a\n 2: 0 0  GICv3  28 Level     - b\n",
			irqs: []Interrupt{
				{IRQ: 1, Counts: u(0, 0), Chip: "GICv3", HWIRQ: 27, HasHWIRQ: true, Trigger: "Level", Handler: "fasteoi", Actions: []string{"a"}},
				gic(2, u(0, 0), "GICv3", 28, "Level", "- b"),
			},
		},
		{
			name:  "Level as an action name on x86",
			input: hdr + " 1: 0 0  IR-IO-APIC    1-edge      Level, Edge\n",
			irqs:  []Interrupt{x86(1, u(0, 0), "IR-IO-APIC", 1, "edge", "Level", "Edge")},
		},
		{
			name:  "IRQs out of order but unique",
			input: hdr + " 5: 0 0 GICv3 1 Level a\n 3: 0 0 GICv3 2 Level b\n 4: 0 0 GICv3 3 Level c\n",
			irqs: []Interrupt{
				gic(5, u(0, 0), "GICv3", 1, "Level", "a"),
				gic(3, u(0, 0), "GICv3", 2, "Level", "b"),
				gic(4, u(0, 0), "GICv3", 3, "Level", "c"),
			},
		},
		{
			// A chip without a name prints as blanks: the number before
			// the trigger is its hwirq, not a count too many.
			name:  "chip with an empty name and a hwirq",
			input: hdr + " 1:          0          0             5 Level     x\n",
			irqs:  []Interrupt{gic(1, u(0, 0), "", 5, "Level", "x")},
		},
		{
			name: "chips and descriptions that start with digits but are not numbers",
			input: hdr + " 1: 0 0  3com-pic 7 Level a\n 2: 0 0  8-edge x\n 3: 0 0  0x1f 2 Edge b\n" +
				"IPI0: 1 2  2nd stage interrupts\nPMN:  1 2  Posted-interrupt notification event\n",
			irqs: []Interrupt{
				gic(1, u(0, 0), "3com-pic", 7, "Level", "a"),
				{IRQ: 2, Counts: u(0, 0), Chip: "8-edge", Actions: []string{"x"}},
				gic(3, u(0, 0), "0x1f", 2, "Edge", "b"),
			},
			named: []namedRow{{"IPI0", u(1, 2), "2nd stage interrupts"}, {"PMN", u(1, 2), "Posted-interrupt notification event"}},
		},
		{
			name:  "named row description starting with a number",
			input: hdr + "TAU:  1 2  32-bit Thermal Assist\nXYZ:  1 32-bit\n",
			named: []namedRow{{"TAU", u(1, 2), "32-bit Thermal Assist"}, {"XYZ", u(1), "32-bit"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInterrupts([]byte(tt.input), true)
			if err != nil {
				t.Fatal(err)
			}
			checkInterruptsInvariants(t, in)
			if len(in.IRQs) != len(tt.irqs) || len(in.named) != len(tt.named) {
				t.Fatalf("got %d IRQs and %d named rows, want %d and %d:\n%+v", len(in.IRQs), len(in.named), len(tt.irqs), len(tt.named), in)
			}
			for i, want := range tt.irqs {
				if d := diffInterrupt(in.IRQs[i], want); d != "" {
					t.Errorf("row %d: %s", i, d)
				}
			}
			for i, want := range tt.named {
				if d := diffNamed(in.named[i], want); d != "" {
					t.Errorf("named row %d: %s", i, d)
				}
			}
		})
	}
}

func TestParseInterruptsErrors(t *testing.T) {
	const hdr = "           CPU0       CPU1\n"
	long := hdr + " 1: 0 0\n 1: 0 0 GICv3 1 Level " + strings.Repeat("x", 5000) + "\n"
	tests := []struct {
		name  string
		input string
		want  string // in the message, after the line number
	}{
		{"empty", "", "no CPU header line"},
		{"blank only", "  \n\n\t\n", "no CPU header line"},
		{"no header", " 11: 1 2 GICv3 27 Level a\n", `line 1 " 11: 1 2 GICv3 27 Level a": header column "11:" is not CPU<n>`},
		{"header token not CPUn", "CPU0 CPUx\n", `header column "CPUx" is not CPU<n>`},
		{"header CPU without number", "CPU0 CPU\n", `header column "CPU" is not CPU<n>`},
		{"header repeats a CPU", "CPU0 CPU0\n", "CPU numbers must ascend"},
		{"header descends", "CPU1 CPU0\n", "CPU numbers must ascend"},
		{"header CPU too large", "CPU99999999999\n", "is not CPU<n>"},
		{"too few counts", hdr + " 1: 5 GICv3 27 Level a\n", `line 2 " 1: 5 GICv3 27 Level a": has 1 counts, want 2 (one per header CPU)`},
		{"too few counts at end of line", hdr + " 1: 5\n", "has 1 counts, want 2"},
		// A CPU that came online after the header was printed: the row has
		// more counts than the header has CPUs.
		{"one count too many", hdr + " 25:          0          1          7  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
			`line 2 " 25:          0          1          7  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1": has more than 2 counts (next "7"), want 2 (one per header CPU)`},
		{"two counts too many", hdr + " 25:          0          1          7          9  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
			`has more than 2 counts (next "7"), want 2 (one per header CPU)`},
		{"one count too many, x86", hdr + " 127:          0          0          5  IR-PCI-MSI 327680-edge      xhci_hcd\n", "has more than 2 counts"},
		{"one count too many, GICv3", hdr + " 11:        638        513        556     GICv3  27 Level     arch_timer\n", "has more than 2 counts"},
		{"one count too many, nothing after", hdr + " 11:        638        513        556\n", "has more than 2 counts"},
		{"one count too many, no hwirq", hdr + " 13:          0          0          3   xen-dyn     Edge    -event     xenbus\n", "has more than 2 counts"},
		{"two counts too many before a trigger", hdr + " 11:        638        513        556   27 Level     arch_timer\n", "has more than 2 counts"},
		{"named row with one count too many", hdr + "IPI0:        36         46         17       Rescheduling interrupts\n",
			`line 2 "IPI0:        36         46         17       Rescheduling interrupts": has more than 2 counts (next "17"), want 2 (one per header CPU)`},
		{"named row with one count too many, nothing after", hdr + " LOC:    8019100    2732118    7530896\n", "has more than 2 counts"},
		{"named x86 row with one count too many", hdr + " NMI:         92         28        100   Non-maskable interrupts\n", "has more than 2 counts"},
		{"count not a number", hdr + " 1: 5 6x GICv3 27 Level a\n", `count "6x" is not a number`},
		{"count overflow", hdr + " 1: 18446744073709551616 0 GICv3 27 Level a\n", `count "18446744073709551616" overflows uint64`},
		{"named count overflow", hdr + "IPI0: 99999999999999999999 0 x\n", "overflows uint64"},
		{"hwirq overflow", hdr + " 1: 0 0 GICv3 18446744073709551616 Level a\n", "hwirq out of range"},
		{"x86 hwirq overflow", hdr + " 1: 0 0 IO-APIC 18446744073709551616-edge a\n", "hwirq out of range"},
		{"fallback hwirq overflow", hdr + " 1: 0 0 IO-APIC 18446744073709551616 a\n", "hwirq out of range"},
		{"IRQ number overflow", hdr + " 99999999999: 0 0 GICv3 1 Level a\n", "IRQ number out of range"},
		{"duplicate IRQ in order", hdr + " 1: 0 0 a 1 Level x\n 1: 0 0 a 1 Level x\n", "line 3 \" 1: 0 0 a 1 Level x\": duplicate IRQ 1"},
		{"duplicate IRQ out of order", hdr + " 5: 0 0 a 1 Level x\n 3: 0 0 a 1 Level x\n 7: 0 0 a 1 Level x\n 5: 0 0 a 1 Level x\n", "line 5 \" 5: 0 0 a 1 Level x\": duplicate IRQ 5"},
		{"no label", hdr + "garbage line\n", `line 2 "garbage line": no label ending in ':'`},
		{"empty label", hdr + " : 0 0\n", "empty label before ':'"},
		{"long line is cut", long, `xxx"…(5022 bytes): duplicate IRQ 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInterrupts([]byte(tt.input), true)
			if err == nil {
				t.Fatalf("no error; parsed %+v", in)
			}
			if !errors.Is(err, ErrFileParse) {
				t.Errorf("error %v does not wrap ErrFileParse", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestInterruptsCountOn(t *testing.T) {
	in, err := parseInterrupts(readInterruptsFixture(t, "31-synthetic-offline-cpus.txt"), true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		irqIndex, cpu int
		want          uint64
		ok            bool
	}{
		{0, 0, 638, true},
		{0, 2, 556, true}, // the second column is CPU2, not CPU1
		{1, 2, 12, true},
		{0, 1, 0, false}, // CPU1 is offline: not a column
		{0, 3, 0, false},
		{0, -1, 0, false},
		{-1, 0, 0, false},
		{len(in.IRQs), 0, 0, false},
	}
	for _, tt := range tests {
		got, ok := in.CountOn(tt.irqIndex, tt.cpu)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CountOn(%d, %d) = %d, %v; want %d, %v", tt.irqIndex, tt.cpu, got, ok, tt.want, tt.ok)
		}
	}
	// A hand-built value with a short Counts slice must not panic.
	short := Interrupts{CPUs: []int{0, 1}, IRQs: []Interrupt{{Counts: u(1)}}}
	if _, ok := short.CountOn(0, 1); ok {
		t.Error("CountOn past the end of Counts reported ok")
	}
}

func TestInterruptTotal(t *testing.T) {
	for _, tt := range []struct {
		counts []uint64
		want   uint64
	}{
		{nil, 0},
		{u(1, 2, 3), 6},
		{u(math.MaxUint64-1, 1), math.MaxUint64},
		{u(math.MaxUint64, 1), math.MaxUint64}, // saturates
	} {
		if got := (Interrupt{Counts: tt.counts}).Total(); got != tt.want {
			t.Errorf("Total(%v) = %d, want %d", tt.counts, got, tt.want)
		}
	}
}

func TestFSInterrupts(t *testing.T) {
	data := readInterruptsFixture(t, "20-qemu-arm64-6.1-4cpu.txt")
	dir := writeInterruptsDir(t, data)
	fs, err := NewFS(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := fs.Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	if len(in.IRQs) != 15 || in.IRQs[0].IRQ != 11 {
		t.Errorf("parsed %d IRQs, want 15, the first being IRQ 11", len(in.IRQs))
	}
	// The snapshot's read copies no named row, yet checks them.
	if in.named != nil {
		t.Errorf("FS.Interrupts kept %d named rows", len(in.named))
	}
	badIPI := append(slices.Clip(data), "IPI9: 99999999999999999999 0 0 0 x\n"...)
	if err := os.WriteFile(filepath.Join(dir, "interrupts"), badIPI, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Interrupts(); !errors.Is(err, ErrFileParse) || !strings.Contains(err.Error(), "overflows uint64") {
		t.Errorf("bad named row: error %v, want ErrFileParse for the overflow", err)
	}

	empty := t.TempDir()
	fs, err = NewFS(empty, empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Interrupts(); !errors.Is(err, ErrFileRead) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want ErrFileRead wrapping ErrNotExist", err)
	}

	if err := os.WriteFile(filepath.Join(empty, "interrupts"), []byte("bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Interrupts(); !errors.Is(err, ErrFileParse) {
		t.Errorf("bad file: error %v, want ErrFileParse", err)
	}
}

// TestFSInterruptsKeepsNoBuffer checks that a parsed value shares no memory
// with the read buffer FS.Interrupts recycles.
func TestFSInterruptsKeepsNoBuffer(t *testing.T) {
	first := readInterruptsFixture(t, "38-synthetic-odd-names.txt")
	dir := writeInterruptsDir(t, first)
	fs, err := NewFS(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite every byte the buffer held with another file of the same
	// length, and read it through the same pool.
	other := []byte(strings.Repeat("x", len(first)))
	copy(other, "CPU0 CPU1 CPU2 CPU3\n")
	for i := 20; i < len(other); i += 2 {
		other[i] = '\n'
	}
	if err := os.WriteFile(filepath.Join(dir, "interrupts"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = fs.Interrupts()
	}
	want, err := parseInterrupts(first, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffInterrupts(got, want); d != "" {
		t.Errorf("value changed after later reads: %s", d)
	}
}

// TestFSInterruptsLarge reads a file past procfs's 1 MiB limit.
func TestFSInterruptsLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and parses an 11.7 MB file")
	}
	want := generateInterruptsTable(256, 4096)
	data := formatInterrupts(want)
	if len(data) < 10<<20 {
		t.Fatalf("generated table is only %d bytes", len(data))
	}
	dir := writeInterruptsDir(t, data)
	fs, err := NewFS(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	want.named = nil // FS.Interrupts keeps no named row
	if d := diffInterrupts(got, want); d != "" {
		t.Error(d)
	}
}

// TestParseInterruptsGenerated checks the parser against the table the
// benchmark input is made from.
func TestParseInterruptsGenerated(t *testing.T) {
	want := generateInterruptsTable(64, 1024)
	got, err := parseInterrupts(formatInterrupts(want), true)
	if err != nil {
		t.Fatal(err)
	}
	checkInterruptsInvariants(t, got)
	if d := diffInterrupts(got, want); d != "" {
		t.Error(d)
	}
}

// TestParseInterruptsMatchesProcfs checks that every count agrees with
// prometheus/procfs where procfs can read the file.
func TestParseInterruptsMatchesProcfs(t *testing.T) {
	files := []string{"01-rockpi4-rk3399-6cpu.txt", "07-raspberrypi4-bcm2711-gicv2-4cpu.txt",
		"12-x86-intel-desktop-20cpu.txt", "20-qemu-arm64-6.1-4cpu.txt", "31-synthetic-offline-cpus.txt",
		"39-synthetic-arm64-6.17-gicv5-4cpu.txt", "generated-64x1024"}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var data []byte
			if name == "generated-64x1024" {
				data = generateInterrupts(64, 1024)
			} else {
				data = readInterruptsFixture(t, name)
			}
			ours, err := parseInterrupts(data, true)
			if err != nil {
				t.Fatal(err)
			}
			pfs, err := procfs.NewFS(writeInterruptsDir(t, data))
			if err != nil {
				t.Fatal(err)
			}
			proc, err := pfs.Proc(1)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := proc.Interrupts()
			if err != nil {
				t.Fatal(err)
			}
			if len(theirs) != len(ours.IRQs)+len(ours.named) {
				t.Errorf("procfs has %d rows, we have %d", len(theirs), len(ours.IRQs)+len(ours.named))
			}
			check := func(label string, counts []uint64) {
				row, ok := theirs[label]
				if !ok {
					t.Errorf("procfs has no row %q", label)
					return
				}
				for i, c := range counts {
					if i >= len(row.Values) || row.Values[i] != strconv.FormatUint(c, 10) {
						t.Errorf("row %s column %d: ours %d, procfs %v", label, i, c, row.Values)
						return
					}
				}
			}
			for _, r := range ours.IRQs {
				check(strconv.Itoa(r.IRQ), r.Counts)
			}
			for _, r := range ours.named {
				check(r.Name, r.Counts)
			}
		})
	}
}

// FuzzParseInterrupts checks that no input panics the parser, that every
// parse that succeeds is consistent, and that writing it back in the
// kernel's format and parsing again gives the same value.
func FuzzParseInterrupts(f *testing.F) {
	entries, err := os.ReadDir(interruptsTestdata)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txt") {
			f.Add(readInterruptsFixture(f, e.Name()))
		}
	}
	f.Add(generateInterrupts(3, 20))
	const hdr = "           CPU0       CPU2\n"
	for _, s := range []string{
		"",
		"\n",
		"CPU0\n",
		"CPU0\n 1:",
		"CPU0\n 1:\n",
		"CPU0\n:\n",
		"CPU0\nErr:\n",
		"CPU0\nErr: \n",
		"CPU0\nErr:          0\n",
		"CPU0 CPU1\nIPI0:2768808080 1 Rescheduling interrupts\n",
		hdr + " 13:          0          0   xen-dyn     Edge    -event     xenbus\n",
		hdr + " 20:          0          0  ITS-PCI-MSIX-0000:00:02.0   0 Edge      virtio2-config\n",
		// GICv5, 6.17: one space before the chip (6.13's show_interrupts).
		hdr + " 35:       1203        977 GICv5-PPI  27 Level     arch_timer\n",
		hdr + " 40:          7          0 ITS-v5-GICv5-IWB-2f000000.interrupt-controller   3 Level     virtio3\n",
		hdr + " 42:          5          0 ITS-v5-PCI-MSIX-0000:00:01.0   1 Edge      virtio1-input\n",
		hdr + "127:          0          0  IR-PCI-MSI 327680-edge      xhci_hcd\n",
		hdr + " 48:          0          0  xen-percpu    -virq      timer0\n",
		hdr + " 17:          0          0     GICv3  35 Level   \n",
		hdr + " 17:          0          0     GICv3  35 Edge\n",
		hdr + " 27:          0          0     GICv2 175 Level     PCIe PME, aerdrv\n",
		hdr + " 43:          9          0     GICv3 165 Level     ahci-ceva[fd0c0000.ahci], mdio-bus:01\n",
		hdr + " 30:      34078          0  BRCM STB PCIe MSI 524288 Edge      xhci_hcd\n",
		hdr + " 41:          0          0  interrupt-controller@7ef00100   4 Level     vc4 hdmi hpd connected\n",
		hdr + " 48:          1          2   ITS-MSI 1342177280 Edge      mlx5_comp0@pci:0000:01:00.0\n",
		hdr + "1000:          7          0   ITS-MSI 524288 Edge      nvme0q0\n",
		hdr + " NMI:         92         28   Non-maskable interrupts\n ERR:          0\n MIS:          0\n",
		hdr + " 1: 18446744073709551616 0 GICv3 27 Level a\n",
		hdr + " 1: 0 0 a\n 1: 0 0 b\n",
		hdr + " 1: 0 0 Level Edge -x -y\n",
		hdr + " 1: 0 0 a 1-\n",
		hdr + " 1: 0 0 a -\n",
		"CPU0 CPU1\r\n 1: 1 2 GICv3 27 Level a\r\n",
		// Rows with more counts than the header has CPUs.
		hdr + " 25:          0          1          7  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
		hdr + " 25:          0          1          7          9  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
		hdr + "127:          0          0          5  IR-PCI-MSI 327680-edge      xhci_hcd\n",
		hdr + " 11:        638        513        556   27 Level     arch_timer\n",
		hdr + " 11:        638        513        556\n",
		hdr + "IPI0:        36         46         17       Rescheduling interrupts\n",
		hdr + " NMI:         92         28        100\n",
		// A chip without a name: the number is its hwirq.
		hdr + "  1:          0          0             5 Level     x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseInterrupts(data, true)
		// FS.Interrupts's parse, which keeps no named row, must accept
		// and reject the same files and give the same numbered rows.
		lean, leanErr := parseInterrupts(data, false)
		if (err == nil) != (leanErr == nil) {
			t.Fatalf("keeping named rows: %v; not keeping them: %v", err, leanErr)
		}
		// The daemon's parse, without counts, too, with the same rows
		// but for their Counts.
		noCounts := interruptsParser{skipCounts: true}
		bare, bareErr := noCounts.parse(data)
		if (err == nil) != (bareErr == nil) {
			t.Fatalf("with counts: %v; without: %v", err, bareErr)
		}
		if err == nil {
			withCounts := lean
			withCounts.IRQs = slices.Clone(lean.IRQs)
			for i := range withCounts.IRQs {
				if bare.IRQs[i].Counts != nil {
					t.Fatalf("row %d kept counts", i)
				}
				withCounts.IRQs[i].Counts = nil
			}
			if d := diffInterrupts(bare, withCounts); d != "" {
				t.Fatalf("leaving counts out changed the rows: %s", d)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrFileParse) {
				t.Fatalf("error %v does not wrap ErrFileParse", err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error message is %d bytes long", len(err.Error()))
			}
			return
		}
		checkInterruptsInvariants(t, in)
		if lean.named != nil {
			t.Fatalf("named rows kept: %v", lean.named)
		}
		full := in
		full.named = nil
		if d := diffInterrupts(lean, full); d != "" {
			t.Fatalf("not keeping named rows changed the rest: %s", d)
		}
		again, err := parseInterrupts(formatInterrupts(in), true)
		if err != nil {
			t.Fatalf("cannot parse our own rendering: %v\n%s", err, formatInterrupts(in))
		}
		if d := diffInterrupts(again, in); d != "" {
			t.Fatalf("rendering and parsing again changed the value: %s\n%s", d, formatInterrupts(in))
		}
	})
}

// checkInterruptsInvariants checks what every successful parse guarantees.
func checkInterruptsInvariants(t *testing.T, in Interrupts) {
	t.Helper()
	if len(in.CPUs) == 0 {
		t.Fatal("no CPUs")
	}
	for i, c := range in.CPUs {
		if c < 0 || (i > 0 && c <= in.CPUs[i-1]) {
			t.Fatalf("CPUs %v are not ascending non-negative numbers", in.CPUs)
		}
	}
	seen := make(map[int]bool)
	for i, r := range in.IRQs {
		if r.IRQ < 0 || seen[r.IRQ] {
			t.Fatalf("IRQ %d negative or repeated", r.IRQ)
		}
		seen[r.IRQ] = true
		if len(r.Counts) != len(in.CPUs) || cap(r.Counts) != len(r.Counts) {
			t.Fatalf("IRQ %d: %d counts (cap %d) for %d CPUs", r.IRQ, len(r.Counts), cap(r.Counts), len(in.CPUs))
		}
		if r.Trigger != "" && r.Trigger != "Level" && r.Trigger != "Edge" {
			t.Fatalf("IRQ %d: trigger %q", r.IRQ, r.Trigger)
		}
		if !r.HasHWIRQ && r.HWIRQ != 0 {
			t.Fatalf("IRQ %d: HWIRQ %d without HasHWIRQ", r.IRQ, r.HWIRQ)
		}
		for _, s := range append([]string{r.Chip, r.Handler}, r.Actions...) {
			if strings.ContainsAny(s, "\n") {
				t.Fatalf("IRQ %d: field %q holds a newline", r.IRQ, s)
			}
		}
		// The parser splits on ' ', '\t' and '\r' only, the bytes the kernel
		// pads with and a CRLF copy adds.
		if r.Chip != strings.Trim(r.Chip, " \t\r") || strings.ContainsAny(r.Handler, " \t\r") {
			t.Fatalf("IRQ %d: chip %q or handler %q has spaces", r.IRQ, r.Chip, r.Handler)
		}
		// A chip name never is a number: a number there is a count past
		// the header's CPUs, which the parser rejects.
		if chip, _, _ := strings.Cut(r.Chip, " "); isDigits([]byte(chip)) {
			t.Fatalf("IRQ %d: chip %q begins with a number", r.IRQ, r.Chip)
		}
		if cap(r.Actions) != len(r.Actions) {
			t.Fatalf("IRQ %d: Actions cap %d, len %d", r.IRQ, cap(r.Actions), len(r.Actions))
		}
		for k, cpu := range in.CPUs {
			if got, ok := in.CountOn(i, cpu); !ok || got != r.Counts[k] {
				t.Fatalf("CountOn(%d, %d) = %d, %v; want %d", i, cpu, got, ok, r.Counts[k])
			}
		}
	}
	for _, r := range in.named {
		if r.Name == "" || strings.ContainsAny(r.Name, ": \t\r\n") || isDigits([]byte(r.Name)) {
			t.Fatalf("named row name %q", r.Name)
		}
		if len(r.Counts) > len(in.CPUs) || cap(r.Counts) != len(r.Counts) {
			t.Fatalf("named row %s: %d counts (cap %d) for %d CPUs", r.Name, len(r.Counts), cap(r.Counts), len(in.CPUs))
		}
		if word, _, _ := strings.Cut(r.Description, " "); len(r.Counts) == len(in.CPUs) && isDigits([]byte(word)) {
			t.Fatalf("named row %s: description %q begins with a count past the header's CPUs", r.Name, r.Description)
		}
		if r.Description != strings.Trim(r.Description, " \t\r") {
			t.Fatalf("named row %s: description %q not trimmed", r.Name, r.Description)
		}
	}
}

// formatInterrupts renders in with the printf formats of kernel/irq/proc.c
// show_interrupts and arm64's arch_show_interrupts.
func formatInterrupts(in Interrupts) []byte {
	prec, maxIRQ := 3, 0
	for _, r := range in.IRQs {
		maxIRQ = max(maxIRQ, r.IRQ)
	}
	for j := 1000; prec < 10 && j <= maxIRQ+1; j *= 10 {
		prec++
	}
	b := fmt.Appendf(nil, "%*s", prec+8, "")
	for _, c := range in.CPUs {
		b = fmt.Appendf(b, "CPU%-8d", c)
	}
	b = append(b, '\n')
	for _, r := range in.IRQs {
		b = fmt.Appendf(b, "%*d: ", prec, r.IRQ)
		for _, c := range r.Counts {
			b = fmt.Appendf(b, "%10d ", c)
		}
		b = fmt.Appendf(b, " %8s", r.Chip)
		if r.HasHWIRQ {
			b = fmt.Appendf(b, " %*d", prec, r.HWIRQ)
		} else {
			b = fmt.Appendf(b, " %*s", prec, "")
		}
		if r.Trigger != "" {
			b = fmt.Appendf(b, " %-8s", r.Trigger)
		}
		if r.Handler != "" {
			b = fmt.Appendf(b, "-%-8s", r.Handler)
		}
		if len(r.Actions) > 0 {
			b = append(b, "  "...)
			b = append(b, strings.Join(r.Actions, ", ")...)
		}
		b = append(b, '\n')
	}
	for _, r := range in.named {
		b = fmt.Appendf(b, "%*s:", prec, r.Name)
		for _, c := range r.Counts {
			b = fmt.Appendf(b, " %10d", c)
		}
		if r.Description != "" {
			b = append(b, "       "...)
			b = append(b, r.Description...)
		}
		b = append(b, '\n')
	}
	return b
}

// diffInterrupts describes the first difference between a and b, or
// returns "". Nil and empty slices are equal.
func diffInterrupts(a, b Interrupts) string {
	if !slices.Equal(a.CPUs, b.CPUs) {
		return fmt.Sprintf("CPUs %v, want %v", a.CPUs, b.CPUs)
	}
	if len(a.IRQs) != len(b.IRQs) || len(a.named) != len(b.named) {
		return fmt.Sprintf("%d IRQs and %d named rows, want %d and %d", len(a.IRQs), len(a.named), len(b.IRQs), len(b.named))
	}
	for i := range a.IRQs {
		if d := diffInterrupt(a.IRQs[i], b.IRQs[i]); d != "" {
			return fmt.Sprintf("row %d: %s", i, d)
		}
	}
	for i := range a.named {
		if d := diffNamed(a.named[i], b.named[i]); d != "" {
			return fmt.Sprintf("named row %d: %s", i, d)
		}
	}
	return ""
}

func diffInterrupt(got, want Interrupt) string {
	if got.IRQ != want.IRQ || !slices.Equal(got.Counts, want.Counts) || got.Chip != want.Chip ||
		got.HWIRQ != want.HWIRQ || got.HasHWIRQ != want.HasHWIRQ || got.Trigger != want.Trigger ||
		got.Handler != want.Handler || !slices.Equal(got.Actions, want.Actions) {
		return fmt.Sprintf("got  %#v\nwant %#v", got, want)
	}
	return ""
}

func diffNamed(got, want namedRow) string {
	if got.Name != want.Name || !slices.Equal(got.Counts, want.Counts) || got.Description != want.Description {
		return fmt.Sprintf("got  %#v\nwant %#v", got, want)
	}
	return ""
}

// TestInterruptsReadAgainAfterHotplug: a /proc/interrupts read while a CPU
// went offline has later rows a count short; the file is read again, and
// only one that stays malformed is an error.
func TestInterruptsReadAgainAfterHotplug(t *testing.T) {
	const header = "           CPU0       CPU1\n"
	torn := header + " 11:          1          2     GICv3  27 Level     arch_timer\n 13:          3     GICv3  33 Level     uart-pl011\n"
	whole := header + " 11:          1          2     GICv3  27 Level     arch_timer\n 13:          3          0     GICv3  33 Level     uart-pl011\n"
	// A CPU came online after the header: the later rows have a count
	// more than the header has CPUs, or two when two did.
	long := header + " 11:          1          2     GICv3  27 Level     arch_timer\n 13:          3          0          4  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n"
	longer := header + " 11:          1          2     GICv3  27 Level     arch_timer\n 13:          3          0          7          9  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n"
	longIPI := whole + "IPI0:        36         46         17       Rescheduling interrupts\n"
	for _, tc := range []struct {
		name    string
		reads   []string
		wantErr string // in the message of the error, "" for none
	}{
		{"torn once", []string{torn, whole}, ""},
		{"always torn", slices.Repeat([]string{torn}, interruptsRereads+1), "/proc/interrupts line 3 \" 13:          3     GICv3  33 Level     uart-pl011\": has 1 counts, want 2"},
		{"long once", []string{long, whole}, ""},
		{"long, then longer, then torn, then whole", []string{long, longer, torn, whole}, ""},
		{"named row long once", []string{longIPI, whole}, ""},
		{"always long", slices.Repeat([]string{long}, interruptsRereads+1), "/proc/interrupts line 3 \" 13:          3          0          4  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\": has more than 2 counts"},
		{"always two too many", slices.Repeat([]string{longer}, interruptsRereads+1), "/proc/interrupts line 3 "},
		{"named row always long", slices.Repeat([]string{longIPI}, interruptsRereads+1), "/proc/interrupts line 4 \"IPI0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := writeTree(t, nil)
			reads := 0
			saved := readInterruptsFile
			t.Cleanup(func() { readInterruptsFile = saved })
			readInterruptsFile = func(string, []byte) ([]byte, error) {
				if reads >= len(tc.reads) {
					t.Fatalf("read %d times, want %d", reads+1, len(tc.reads))
				}
				reads++
				return []byte(tc.reads[reads-1]), nil
			}
			in, err := fs.Interrupts()
			switch {
			case reads != len(tc.reads):
				t.Errorf("read %d times, want %d", reads, len(tc.reads))
			case tc.wantErr != "" && (!errors.Is(err, ErrFileParse) || !strings.Contains(fmt.Sprint(err), tc.wantErr)):
				t.Errorf("err %v, want ErrFileParse with %q", err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || len(in.IRQs) != 2 || !slices.Equal(in.IRQs[1].Counts, u(3, 0)) || in.IRQs[1].Chip != "GICv3"):
				t.Errorf("got %+v, %v", in.IRQs, err)
			}
		})
	}
}

// TestParseInterruptsExtraCounts: a row with more counts than the header
// has CPUs (a CPU came online while the file was printed) is an error
// wrapping ErrFileParse, never a row whose chip name begins with the
// counts too many, in every mode of the parser.
func TestParseInterruptsExtraCounts(t *testing.T) {
	const hdr = "           CPU0       CPU1\n"
	for _, row := range []string{
		" 25:          0          1          7  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
		" 25:          0          1          7          9  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
		" 25:          0          1          7          9         11  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n",
		"IPI0:        36         46         17       Rescheduling interrupts\n",
		"IPI0:        36         46         17         41       Rescheduling interrupts\n",
	} {
		input := []byte(hdr + " 11:          1          2     GICv3  27 Level     arch_timer\n" + row)
		for _, mode := range []struct {
			name string
			p    interruptsParser
		}{
			{"keeping named rows", interruptsParser{keepNamed: true}},
			{"as FS.Interrupts", interruptsParser{}},
			{"without counts", interruptsParser{skipCounts: true}},
		} {
			in, err := mode.p.parse(input)
			if err == nil {
				t.Errorf("%s: %q: no error; parsed %+v and %+v", mode.name, row, in.IRQs, in.named)
				continue
			}
			if !errors.Is(err, ErrFileParse) || !strings.Contains(err.Error(), "/proc/interrupts line 3 ") ||
				!strings.Contains(err.Error(), "has more than 2 counts") {
				t.Errorf("%s: %q: error %v, want ErrFileParse naming line 3 and the counts", mode.name, row, err)
			}
		}
	}
}
