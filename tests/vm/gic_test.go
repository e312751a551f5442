//go:build vm

package vmtest

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func findAction(rows []irqRow, action string) (irqRow, bool) {
	for _, r := range rows {
		if r.Actions == action {
			return r, true
		}
	}
	return irqRow{}, false
}

func TestInterruptsParse(t *testing.T) {
	mustRoot(t)
	p := readProcInterrupts(t)
	t.Logf("kernel %s, /proc/interrupts:\n%s", os.Getenv("IRQSHIFT_VM_KERNEL"), p.text)
	rows := p.Rows(t)
	if len(rows) < 5 {
		t.Fatalf("only %d numbered rows", len(rows))
	}
	if w := wantGIC(); w != "" {
		if g := gicVersion(rows); g != w {
			t.Fatalf("booted with gic-version=%s but arch_timer's chip says GICv%s", w, g)
		}
	}
}

func TestGICArchTimerIsPerCPU(t *testing.T) {
	mustRoot(t)
	rows := readInterrupts(t)
	r, ok := findAction(rows, "arch_timer")
	if !ok {
		t.Fatal("no arch_timer row in /proc/interrupts")
	}
	t.Logf("arch_timer: IRQ %d chip %q hwirq %d %s", r.IRQ, r.Chip, r.HWIRQ, r.Trigger)
	if !gicChip(r.Chip) {
		t.Errorf("arch_timer chip %q, want GICv3/GICv2/GIC-N", r.Chip)
	}
	switch wantGIC() {
	case "3":
		if r.Chip != "GICv3" {
			t.Errorf("gic-version=3: arch_timer chip %q, want GICv3", r.Chip)
		}
	case "2":
		if r.Chip == "GICv3" {
			t.Errorf("gic-version=2: arch_timer chip is GICv3")
		}
	}
	if r.HWIRQ != 27 || r.Trigger != "Level" {
		t.Errorf("arch_timer hwirq %d %s, want 27 Level (PPI)", r.HWIRQ, r.Trigger)
	}
	if !isPerCPU(r) {
		t.Errorf("arch_timer not classed per-CPU")
	}
	if e := effective(t, r.IRQ); e != "" {
		t.Errorf("arch_timer effective_affinity_list = %q, want empty (per-CPU)", e)
	}
	// /sys/kernel/irq/N agrees with /proc/interrupts.
	sk := "/sys/kernel/irq/" + strconv.Itoa(r.IRQ) + "/"
	if h := readTrim(t, sk+"hwirq"); h != "27" {
		t.Errorf("%shwirq = %q, want 27", sk, h)
	}
	if a := readTrim(t, sk+"actions"); a != "arch_timer" {
		t.Errorf("%sactions = %q", sk, a)
	}
	if ty := readTrim(t, sk+"type"); ty != "level" {
		t.Errorf("%stype = %q, want level", sk, ty)
	}
	if c := strings.Split(readTrim(t, sk+"per_cpu_count"), ","); len(c) < len(onlineCPUs(t)) {
		t.Errorf("%sper_cpu_count has %d entries", sk, len(c))
	}
	checkRefused(t, r.IRQ, "arch_timer", "2")
}

// checkRefused writes list to the IRQ's smp_affinity_list and asserts the kernel refuses it
// (EIO on 6.1, EPERM on 6.12 where the file is also 0444) and that nothing changed.
func checkRefused(t *testing.T, irq int, what, list string) {
	t.Helper()
	path := irqFile(irq, "smp_affinity_list")
	mode := fileMode(t, path)
	before := affinity(t, irq)
	err := writeAffinity(irq, list)
	t.Logf("%s (IRQ %d): write %q -> %v; smp_affinity_list mode %04o", what, irq, list, err, mode)
	switch {
	case err == nil:
		t.Errorf("%s (IRQ %d): write of %q accepted, want EIO or EPERM", what, irq, list)
	case !refused(err):
		t.Errorf("%s (IRQ %d): write of %q: %v, want EIO or EPERM", what, irq, list, err)
	case errors.Is(err, syscall.EPERM) && mode != 0o444:
		t.Errorf("%s (IRQ %d): EPERM but mode %04o, want 0444 (the 6.12 behaviour)", what, irq, mode)
	case errors.Is(err, syscall.EIO) && mode == 0o444:
		t.Errorf("%s (IRQ %d): EIO with mode 0444: new combination", what, irq)
	}
	if after := affinity(t, irq); after != before {
		t.Errorf("%s (IRQ %d): refused write still changed smp_affinity_list %q -> %q", what, irq, before, after)
	}
}

func TestGICITSRowsForVirtio(t *testing.T) {
	mustRoot(t)
	rows := readInterrupts(t)
	var its, virtioMSI []irqRow
	for _, r := range rows {
		if isITS(r) {
			its = append(its, r)
		}
		if virtioDevOf(r.Actions) != "" && !gicChip(r.Chip) {
			virtioMSI = append(virtioMSI, r)
		}
	}
	for _, r := range virtioMSI {
		t.Logf("MSI IRQ %d: chip %q hwirq %d %s %s", r.IRQ, r.Chip, r.HWIRQ, r.Trigger, r.Actions)
	}
	if len(virtioMSI) == 0 {
		t.Fatal("no MSI rows for virtio PCI devices")
	}
	switch gicVersion(rows) {
	case "3":
		if len(its) == 0 {
			t.Fatal("GICv3 but no ITS-MSI / ITS-PCI-MSIX-* rows")
		}
		for _, r := range virtioMSI {
			if !isITS(r) {
				t.Errorf("GICv3: virtio MSI IRQ %d has chip %q, want ITS-*", r.IRQ, r.Chip)
			}
			if r.Chip != "ITS-MSI" && !strings.HasPrefix(r.Chip, "ITS-PCI-MSIX-") {
				t.Errorf("IRQ %d: unexpected ITS chip name %q", r.IRQ, r.Chip)
			}
		}
	case "2":
		if len(its) != 0 {
			t.Errorf("GICv2 has no ITS but %d ITS rows", len(its))
		}
	}
}

// blkQueues returns the virtio-blk request queue IRQs ("virtioN-req.M").
func blkQueues(rows []irqRow) []irqRow {
	var q []irqRow
	for _, r := range rows {
		dev := virtioDevOf(r.Actions)
		if dev == "" || !strings.HasPrefix(r.Actions, dev+"-req.") {
			continue
		}
		if drv, _ := virtioDriver(dev); drv == "virtio_blk" {
			q = append(q, r)
		}
	}
	return q
}

func TestManagedVirtioBlkQueuesRefuseWrites(t *testing.T) {
	mustRoot(t)
	rows := readInterrupts(t)
	q := blkQueues(rows)
	if n := len(onlineCPUs(t)); len(q) != n {
		t.Fatalf("%d virtio-blk queue IRQs, want one per online CPU (%d)", len(q), n)
	}
	seen := map[string]bool{}
	for _, r := range q {
		aff, eff := affinity(t, r.IRQ), effective(t, r.IRQ)
		t.Logf("%s: IRQ %d affinity %s effective %s", r.Actions, r.IRQ, aff, eff)
		cpus, err := parseCPUList(aff)
		if err != nil || len(cpus) != 1 {
			t.Errorf("%s: managed queue affinity %q, want a single CPU", r.Actions, aff)
		}
		seen[aff] = true
		if eff != aff {
			t.Errorf("%s: effective %q != affinity %q", r.Actions, eff, aff)
		}
		other := "0"
		if aff == "0" {
			other = "1"
		}
		checkRefused(t, r.IRQ, r.Actions, other)
		checkRefused(t, r.IRQ, r.Actions, aff) // even rewriting the same CPU is refused
	}
	if len(seen) != len(q) {
		t.Errorf("managed queues share CPUs: %v", seen)
	}
}

// rngMMIO returns the virtio-rng-device (virtio-mmio) IRQ: a wired GIC SPI.
func rngMMIO(t *testing.T, rows []irqRow) irqRow {
	t.Helper()
	for _, r := range rows {
		dev := virtioDevOf(r.Actions)
		if dev == "" || r.Actions != dev {
			continue
		}
		if drv, mmio := virtioDriver(dev); drv == "virtio_rng" && mmio {
			return r
		}
	}
	t.Fatal("no virtio-rng-device (virtio-mmio) IRQ in /proc/interrupts")
	return irqRow{}
}

func TestSPIAcceptsSingleCPU(t *testing.T) {
	mustRoot(t)
	rows := readInterrupts(t)
	r := rngMMIO(t, rows)
	t.Logf("virtio-rng-device: IRQ %d chip %q hwirq %d %s %s", r.IRQ, r.Chip, r.HWIRQ, r.Trigger, r.Actions)
	if !isSPI(r) || r.HWIRQ < 32 || r.HWIRQ >= 1020 {
		t.Fatalf("virtio-rng-device IRQ %d: chip %q hwirq %d, want a GIC SPI (32..1019)", r.IRQ, r.Chip, r.HWIRQ)
	}
	orig := affinity(t, r.IRQ)
	t.Cleanup(func() {
		if err := writeAffinity(r.IRQ, orig); err != nil {
			t.Errorf("restore IRQ %d to %s: %v", r.IRQ, orig, err)
		}
	})
	mode := fileMode(t, irqFile(r.IRQ, "smp_affinity_list"))
	if mode != 0o644 {
		t.Errorf("movable IRQ %d: smp_affinity_list mode %04o, want 0644", r.IRQ, mode)
	}
	for _, c := range onlineCPUs(t) {
		s := strconv.Itoa(c)
		if err := writeAffinity(r.IRQ, s); err != nil {
			t.Fatalf("IRQ %d: write %s: %v", r.IRQ, s, err)
		}
		if a, e := affinity(t, r.IRQ), effective(t, r.IRQ); a != s || e != s {
			t.Errorf("IRQ %d after writing %s: affinity %q effective %q, want both %s", r.IRQ, s, a, e, s)
		}
	}
	// A multi-CPU mask: the GIC delivers an SPI to exactly one CPU of it.
	if err := writeAffinity(r.IRQ, "1-3"); err != nil {
		t.Fatalf("IRQ %d: write 1-3: %v", r.IRQ, err)
	}
	a, e := affinity(t, r.IRQ), effective(t, r.IRQ)
	ec, _ := parseCPUList(e)
	t.Logf("IRQ %d after writing 1-3: affinity %q effective %q", r.IRQ, a, e)
	if a != "1-3" || len(ec) != 1 || ec[0] < 1 || ec[0] > 3 {
		t.Errorf("IRQ %d after writing 1-3: affinity %q effective %q, want 1-3 and one CPU of it", r.IRQ, a, e)
	}
}

func TestWriteOfflineOnlyCPUsIsEINVAL(t *testing.T) {
	mustRoot(t)
	rows := readInterrupts(t)
	r := rngMMIO(t, rows)
	const cpu = 3
	if !cpuIsOnline(t, cpu) {
		t.Skipf("cpu%d not online", cpu)
	}
	orig := affinity(t, r.IRQ)
	ensureOnlineAtEnd(t, cpu)
	t.Cleanup(func() {
		if err := writeAffinity(r.IRQ, orig); err != nil {
			t.Errorf("restore IRQ %d to %s: %v", r.IRQ, orig, err)
		}
	})
	if err := setCPUOnline(cpu, false); err != nil {
		t.Fatalf("offline cpu%d: %v", cpu, err)
	}
	before := affinity(t, r.IRQ)
	err := writeAffinity(r.IRQ, strconv.Itoa(cpu))
	t.Logf("IRQ %d: write %d (offline) -> %v", r.IRQ, cpu, err)
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IRQ %d: write of offline-only cpu%d: %v, want EINVAL", r.IRQ, cpu, err)
	}
	if after := affinity(t, r.IRQ); after != before {
		t.Errorf("IRQ %d: rejected write changed affinity %q -> %q", r.IRQ, before, after)
	}
	// A mask with one online CPU in it is accepted.
	if err := writeAffinity(r.IRQ, "1,3"); err != nil {
		t.Errorf("IRQ %d: write 1,3 with cpu3 offline: %v", r.IRQ, err)
	} else if e := effective(t, r.IRQ); e != "1" {
		t.Errorf("IRQ %d: wrote 1,3 with cpu3 offline: effective %q, want 1", r.IRQ, e)
	}
	if err := setCPUOnline(cpu, true); err != nil {
		t.Fatalf("online cpu%d: %v", cpu, err)
	}
}
