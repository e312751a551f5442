package sysfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

// generateInterrupts returns a realistic arm64 /proc/interrupts with cpus
// online CPUs and irqs numbered rows: per-CPU PPIs, GICv3 SPIs, ITS-MSI
// queues, IPI0..IPI6 and Err. The same arguments give the same bytes.
func generateInterrupts(cpus, irqs int) []byte {
	return formatInterrupts(generateInterruptsTable(cpus, irqs))
}

// generateInterruptsTable is the parsed form of generateInterrupts.
func generateInterruptsTable(cpus, irqs int) Interrupts {
	rng := rand.New(rand.NewPCG(uint64(cpus), uint64(irqs)))
	in := Interrupts{CPUs: make([]int, cpus)}
	for i := range in.CPUs {
		in.CPUs[i] = i
	}
	// A count as a live machine shows it: most CPUs never saw the IRQ,
	// the CPU it is routed to saw many.
	counts := func(perCPU bool) []uint64 {
		c := make([]uint64, cpus)
		owner := rng.IntN(cpus)
		for i := range c {
			switch {
			case perCPU:
				c[i] = rng.Uint64N(5_000_000_000)
			case i == owner:
				c[i] = rng.Uint64N(1 << uint(rng.IntN(33)))
			case rng.IntN(8) == 0:
				c[i] = rng.Uint64N(1000)
			}
		}
		return c
	}
	ppis := []struct {
		hwirq uint64
		name  string
	}{{25, "vgic"}, {26, "kvm guest ptimer"}, {27, "kvm guest vtimer"}, {30, "arch_timer"}, {23, "arm-pmu"}}
	spiNames := []string{"uart-pl011", "ff0a0000.i2c", "ipmi_si", "arm-smmu-v3-evtq", "arm-smmu-v3-gerror",
		"ahci-ceva[fd0c0000.ahci]", "PCIe PME, aerdrv", "gpio-keys", "mmc0", "ehci_hcd:usb1"}
	irq, spi, lpi := 9, uint64(32), uint64(8192)
	for n := 0; n < irqs; n++ {
		row := Interrupt{IRQ: irq, Chip: "GICv3", HasHWIRQ: true}
		switch {
		case n < len(ppis):
			row.Counts = counts(true)
			row.HWIRQ, row.Trigger = ppis[n].hwirq, "Level"
			row.Actions = []string{ppis[n].name}
		case n%10 == 0:
			row.Counts = counts(false)
			row.HWIRQ, row.Trigger = spi, "Level"
			row.Actions = strings.Split(spiNames[int(spi)%len(spiNames)], ", ")
			spi++
		default:
			row.Counts = counts(false)
			row.Chip, row.HWIRQ, row.Trigger = "ITS-MSI", lpi, "Edge"
			dev, q := n/64, n%64
			switch dev % 3 {
			case 0:
				row.Actions = []string{fmt.Sprintf("nvme%dq%d", dev, q)}
			case 1:
				row.Actions = []string{fmt.Sprintf("mlx5_comp%d@pci:0000:%02x:00.0", q, dev)}
			default:
				row.Actions = []string{fmt.Sprintf("eth%d-TxRx-%d", dev, q)}
			}
			lpi++
		}
		in.IRQs = append(in.IRQs, row)
		irq += 1 + rng.IntN(2)
	}
	ipis := []string{"Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
		"CPU stop (for crash dump) interrupts", "Timer broadcast interrupts", "IRQ work interrupts",
		"CPU wake-up interrupts"}
	for i, d := range ipis {
		in.named = append(in.named, namedRow{Name: fmt.Sprintf("IPI%d", i), Counts: counts(i < 2), Description: d})
	}
	in.named = append(in.named, namedRow{Name: "Err", Counts: []uint64{0}})
	return in
}

// writeInterruptsDir writes data as dir/interrupts and makes dir/1, so the
// directory serves both as our proc root and as a procfs mount point whose
// Proc(1) exists (procfs reads <mount>/interrupts from a Proc).
func writeInterruptsDir(tb testing.TB, data []byte) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "interrupts"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "1"), 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BenchmarkParseInterrupts compares our parser with prometheus/procfs.
//
//	go test ./sysfs -run XXX -bench ParseInterrupts -benchmem
func BenchmarkParseInterrupts(b *testing.B) {
	small := generateInterrupts(64, 1024)
	if len(small) >= 1<<20 {
		b.Fatalf("64x1024 table is %d bytes; procfs reads at most 1 MiB", len(small))
	}
	dir := writeInterruptsDir(b, small)

	b.Run("ours-64x1024", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(small)))
		for b.Loop() {
			if _, err := parseInterrupts(small, false); err != nil {
				b.Fatal(err)
			}
		}
	})

	// Reads the file on every iteration, as procfs does.
	b.Run("ours-file-64x1024", func(b *testing.B) {
		fs, err := NewFS(dir, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(small)))
		for b.Loop() {
			if _, err := fs.Interrupts(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("procfs-64x1024", func(b *testing.B) {
		pfs, err := procfs.NewFS(dir)
		if err != nil {
			b.Fatal(err)
		}
		proc, err := pfs.Proc(1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(small)))
		for b.Loop() {
			if _, err := proc.Interrupts(); err != nil {
				b.Fatal(err)
			}
		}
	})

	// No procfs counterpart: procfs v0.23.0 reads at most 1 MiB of the
	// file (internal/parsers.ReadFileNoStat) and then panics with slice
	// bounds out of range on the cut last line; this table is 11.7 MB.
	big := generateInterrupts(256, 4096)
	b.Run("ours-256x4096", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(big)))
		for b.Loop() {
			if _, err := parseInterrupts(big, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
