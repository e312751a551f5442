//go:build vm

package vmtest

// The GICv5 VM (suite.sh gicv5: run.sh -g 5 --qemu-chroot, QEMU 11.1's experimental
// `-M virt,gic-version=x-5` from trixie-backports in a chroot): the real /bin/irqshift on a
// GICv5 kernel, checked against the kernel's own files. QEMU's GICv5 has no ITS, so there are no
// MSIs: the PCI devices (virtio-net, virtio-rng, virtio-blk) use INTx, which are GICv5 SPIs, as
// is virtio-rng-device's virtio-mmio line. The GICv5 has no SGIs either: each CPU's IPIs are LPIs
// of chip GICv5-IPI, bound to their CPU and hidden from /proc/interrupts, present in /proc/irq
// and /sys/kernel/irq. The tests skip unless the guest's interrupt controller is a GICv5.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// kernelIRQ is /proc/irq/N joined with /sys/kernel/irq/N: every IRQ the kernel has, including
// those /proc/interrupts hides.
type kernelIRQ struct {
	IRQ       int
	Chip      string // /sys/kernel/irq/N/chip_name
	HWIRQ     int64  // -1 when the file is empty
	Type      string // edge, level
	Actions   string // /sys/kernel/irq/N/actions ("IPI", "virtio1", "" for none)
	Affinity  string
	Effective string
	Mode      os.FileMode // of smp_affinity_list
	Listed    bool        // a numbered row of /proc/interrupts
}

func (k kernelIRQ) String() string {
	return fmt.Sprintf("IRQ %d (%s hwirq %d %s, actions %q, affinity %s, effective %q, mode %04o, in /proc/interrupts %v)",
		k.IRQ, k.Chip, k.HWIRQ, k.Type, k.Actions, k.Affinity, k.Effective, k.Mode, k.Listed)
}

func (k kernelIRQ) perCPUChip() bool { return k.Chip == "GICv5-PPI" || k.Chip == "GICv5-IPI" }

// kernelIRQs reads every /proc/irq/N that has a /sys/kernel/irq/N, sorted by number.
func kernelIRQs(t *testing.T) []kernelIRQ {
	t.Helper()
	listed := map[int]bool{}
	for _, r := range readInterrupts(t) {
		listed[r.IRQ] = true
	}
	dirs, err := filepath.Glob("/sys/kernel/irq/[0-9]*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no /sys/kernel/irq/N (%v)", err)
	}
	var out []kernelIRQ
	for _, d := range dirs {
		n, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if _, err := os.Stat(irqFile(n, "smp_affinity_list")); err != nil {
			continue // no /proc/irq/N (never in this VM)
		}
		k := kernelIRQ{IRQ: n, HWIRQ: -1, Listed: listed[n]}
		k.Chip = readTrim(t, filepath.Join(d, "chip_name"))
		if h, err := strconv.ParseInt(readTrim(t, filepath.Join(d, "hwirq")), 10, 64); err == nil {
			k.HWIRQ = h
		}
		k.Type = readTrim(t, filepath.Join(d, "type"))
		k.Actions = readTrim(t, filepath.Join(d, "actions"))
		k.Affinity, k.Effective = affinity(t, n), effective(t, n)
		k.Mode = fileMode(t, irqFile(n, "smp_affinity_list"))
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IRQ < out[j].IRQ })
	return out
}

// needGICv5 skips unless the guest's interrupt controller is a GICv5 (a /sys/kernel/irq/N/chip_name
// starting with "GICv5-"), fails when that disagrees with how run.sh booted it (irqshift.gic=),
// and needs /bin/irqshift and 4 CPUs. It returns the kernel's IRQs.
func needGICv5(t *testing.T) []kernelIRQ {
	t.Helper()
	mustRoot(t)
	irqs := kernelIRQs(t)
	var chips []string
	seen := map[string]bool{}
	for _, k := range irqs {
		if strings.HasPrefix(k.Chip, "GICv5-") && !seen[k.Chip] {
			seen[k.Chip] = true
			chips = append(chips, k.Chip)
		}
	}
	switch {
	case wantGIC() == "5" && len(chips) == 0:
		t.Fatalf("booted with gic-version=x-5 (irqshift.gic=5) but no /sys/kernel/irq/*/chip_name starts with GICv5-")
	case len(chips) == 0:
		t.Skipf("not a GICv5 guest (irqshift.gic=%q, no GICv5-* chip in /sys/kernel/irq): run.sh -g 5 --qemu-chroot DIR", wantGIC())
	case wantGIC() != "" && wantGIC() != "5":
		t.Fatalf("booted with irqshift.gic=%s but the kernel's chips are %v", wantGIC(), chips)
	}
	needIrqshift(t, 4)
	return irqs
}

func byChip(irqs []kernelIRQ, chip string) []kernelIRQ {
	var out []kernelIRQ
	for _, k := range irqs {
		if k.Chip == chip {
			out = append(out, k)
		}
	}
	return out
}

// gicv5SPIs returns the GICv5 SPIs a driver handles: what irqshift must find movable.
func gicv5SPIs(irqs []kernelIRQ) []int {
	var out []int
	for _, k := range irqs {
		if k.Chip == "GICv5-SPI" && k.Actions != "" {
			out = append(out, k.IRQ)
		}
	}
	return out
}

// perCPUFiles is smp_affinity_list and effective_affinity_list of every GICv5 PPI and IPI (the
// hidden IPIs included), as the kernel shows them.
func perCPUFiles(t *testing.T) map[int]string {
	t.Helper()
	m := map[int]string{}
	for _, k := range kernelIRQs(t) {
		if k.perCPUChip() {
			m[k.IRQ] = fmt.Sprintf("affinity %q effective %q", k.Affinity, k.Effective)
		}
	}
	if len(m) == 0 {
		t.Fatal("no GICv5-PPI or GICv5-IPI IRQ in /sys/kernel/irq")
	}
	return m
}

// untouchedPerCPU asserts that the per-CPU IRQs' files are as in before, and that no irqshift
// document names one of them in a move or a result.
func untouchedPerCPU(t *testing.T, what string, before map[int]string, docs ...applyDoc) {
	t.Helper()
	after := perCPUFiles(t)
	for irq, b := range before {
		if a := after[irq]; a != b {
			t.Errorf("%s: per-CPU IRQ %d changed: %s -> %s", what, irq, b, a)
		}
	}
	for _, d := range docs {
		for _, m := range d.Moves {
			if _, ok := before[m.IRQ]; ok {
				t.Errorf("%s: irqshift planned a move of per-CPU IRQ %d: %+v", what, m.IRQ, m)
			}
		}
		for _, r := range d.Results {
			if _, ok := before[r.IRQ]; ok {
				t.Errorf("%s: irqshift wrote per-CPU IRQ %d: %+v", what, r.IRQ, r)
			}
		}
	}
}

// checkMovedExactly asserts that every result of d is a move whose effective CPU, in the JSON and
// in the kernel's effective_affinity_list, is the single CPU written.
func checkMovedExactly(t *testing.T, what string, d applyDoc) {
	t.Helper()
	checkResults(t, d)
	for _, r := range d.Results {
		if r.Status != "moved" && r.Status != "narrowed" {
			t.Errorf("%s: IRQ %d status %q (%s), want moved", what, r.IRQ, r.Status, r.Reason)
			continue
		}
		if e := effCPUs(t, r.IRQ); !sameCPUs(e, r.To) || !sameCPUs(r.Effective, r.To) {
			t.Errorf("%s: IRQ %d written %v, effective %v in the JSON and %v in effective_affinity_list", what, r.IRQ, r.To, r.Effective, e)
		}
	}
}

// spiSpread asserts that the movable IRQs' effective CPUs, read from the kernel, differ in count
// by at most one over cpus, and that each has a single-CPU mask equal to its effective CPU.
func spiSpread(t *testing.T, what string, movable, cpus []int) map[int]int {
	t.Helper()
	for _, irq := range movable {
		if a, e := affCPUs(t, irq), effCPUs(t, irq); len(a) != 1 || !sameCPUs(a, e) {
			t.Errorf("%s: IRQ %d smp_affinity_list %v effective %v, want the same single CPU", what, irq, a, e)
		}
	}
	n := perCPU(t, movable, cpus)
	d, text := spread(n)
	t.Logf("%s: %d movable IRQs per effective CPU: %s", what, len(movable), text)
	if d > 1 {
		t.Errorf("%s: counts %s differ by %d, want at most 1", what, text, d)
	}
	return n
}

func hwirqText(h *uint64) string {
	if h == nil {
		return "null"
	}
	return strconv.FormatUint(*h, 10)
}

// TestGICv5KernelModel pins down what the rest relies on, from the kernel's files: the PPIs
// (arch_timer 27, arm-pmu 23) and the IPIs are per-CPU and refuse writes with EPERM (0444), the
// IPIs are hidden from /proc/interrupts, each CPU has as many as there are IPIn rows, bound to
// it; every SPI a driver handles accepts writes (0644) and goes to the lowest online CPU of its
// mask; every PCI device interrupts through an INTx SPI (no MSIs without an ITS).
func TestGICv5KernelModel(t *testing.T) {
	irqs := needGICv5(t)
	restoreAtEnd(t)
	for _, k := range irqs {
		t.Logf("%s", k)
	}
	rows := readInterrupts(t)
	for action, hw := range map[string]int64{"arch_timer": 27, "arm-pmu": 23} {
		r, ok := findAction(rows, action)
		if !ok {
			t.Errorf("no %s row in /proc/interrupts", action)
			continue
		}
		if r.Chip != "GICv5-PPI" || r.HWIRQ != hw || r.Trigger != "Level" {
			t.Errorf("%s: chip %q hwirq %d %s, want GICv5-PPI %d Level", action, r.Chip, r.HWIRQ, r.Trigger, hw)
		}
	}
	if g := gicVersion(rows); g != "5" {
		t.Errorf("gicVersion of /proc/interrupts = %q, want 5", g)
	}

	ppis := byChip(irqs, "GICv5-PPI")
	if len(ppis) == 0 {
		t.Fatal("no GICv5-PPI IRQ")
	}
	for _, k := range ppis {
		if k.Effective != "" || k.Mode != 0o444 {
			t.Errorf("PPI %s: want an empty effective affinity and mode 0444", k)
		}
		if k.Listed != (k.Actions != "") {
			t.Errorf("PPI %s: in /proc/interrupts exactly when it has an action, want", k)
		}
		checkRefused(t, k.IRQ, fmt.Sprintf("PPI %d %s", k.HWIRQ, k.Actions), "1")
	}

	ipis := byChip(irqs, "GICv5-IPI")
	possible := cpuList(t, "/sys/devices/system/cpu/possible")
	perCPUIPIs := map[int]int{}
	for _, k := range ipis {
		a, _ := parseCPUList(k.Affinity)
		if k.Actions != "IPI" || k.Listed || k.Mode != 0o444 || len(a) != 1 || k.Effective != k.Affinity {
			t.Errorf("IPI %s: want action IPI, hidden from /proc/interrupts, mode 0444, one CPU in affinity and effective", k)
			continue
		}
		perCPUIPIs[a[0]]++
		other := (a[0] + 1) % len(possible)
		checkRefused(t, k.IRQ, fmt.Sprintf("IPI of CPU%d", a[0]), strconv.Itoa(other))
	}
	ipiRows := readProcInterrupts(t).IPIRows()
	t.Logf("%d GICv5-IPI IRQs, per CPU %v; /proc/interrupts has %d IPIn rows", len(ipis), perCPUIPIs, ipiRows)
	for _, c := range possible {
		if perCPUIPIs[c] == 0 || perCPUIPIs[c] != ipiRows {
			t.Errorf("CPU%d has %d GICv5-IPI IRQs, want one per IPIn row of /proc/interrupts (%d)", c, perCPUIPIs[c], ipiRows)
		}
	}

	spis := gicv5SPIs(irqs)
	kernel := map[int]kernelIRQ{}
	for _, k := range irqs {
		kernel[k.IRQ] = k
	}
	for _, irq := range spis {
		k := kernel[irq]
		e, _ := parseCPUList(k.Effective)
		if !k.Listed || k.Mode != 0o644 || len(e) != 1 {
			t.Errorf("SPI %s: want a row in /proc/interrupts, mode 0644, one effective CPU", k)
		}
	}
	// The lowest online CPU of the mask, whatever the load: probe it on the virtio-mmio rng.
	probe := rngMMIO(t, rows)
	if kernel[probe.IRQ].Chip != "GICv5-SPI" {
		t.Errorf("virtio-rng-device IRQ %d: chip %q, want GICv5-SPI", probe.IRQ, kernel[probe.IRQ].Chip)
	}
	for _, mask := range []string{"1-3", "2-3", "0,3", "3", "1,3"} {
		if err := writeAffinity(probe.IRQ, mask); err != nil {
			t.Fatalf("IRQ %d: write %s: %v", probe.IRQ, mask, err)
		}
		c, _ := parseCPUList(mask)
		if a, e := affinity(t, probe.IRQ), effective(t, probe.IRQ); a != mask || e != strconv.Itoa(c[0]) {
			t.Errorf("IRQ %d after writing %s: affinity %q effective %q, want %s and CPU%d", probe.IRQ, mask, a, e, mask, c[0])
		}
	}

	// PCI: INTx only, each an SPI with the device's virtio action.
	devs, _ := filepath.Glob("/sys/bus/pci/devices/*")
	pciSeen := 0
	for _, d := range devs {
		drv, err := os.Readlink(filepath.Join(d, "driver"))
		if err != nil {
			continue // the host bridge
		}
		pciSeen++
		if msi, _ := filepath.Glob(filepath.Join(d, "msi_irqs", "*")); len(msi) > 0 {
			t.Errorf("PCI %s (%s): MSIs %v, but QEMU's GICv5 has no ITS", filepath.Base(d), filepath.Base(drv), msi)
		}
		n, err := strconv.Atoi(readTrim(t, filepath.Join(d, "irq")))
		k, ok := kernel[n]
		virtio, _ := filepath.Glob(filepath.Join(d, "virtio*"))
		t.Logf("PCI %s (%s, %v): irq %d: %s", filepath.Base(d), filepath.Base(drv), virtio, n, k)
		if err != nil || !ok || k.Chip != "GICv5-SPI" || k.Type != "level" || k.Actions == "" {
			t.Errorf("PCI %s: irq %d: %s, want a level GICv5 SPI (INTx) with an action", filepath.Base(d), n, k)
			continue
		}
		for _, v := range virtio {
			if !strings.Contains(","+k.Actions+",", ","+filepath.Base(v)+",") {
				t.Errorf("PCI %s: INTx IRQ %d actions %q, want %s among them", filepath.Base(d), n, k.Actions, filepath.Base(v))
			}
		}
	}
	if pciSeen < 3 {
		t.Errorf("%d PCI devices with a driver, want 3 (virtio-net, virtio-rng, virtio-blk)", pciSeen)
	}
}

// TestGICv5ListClasses: `irqshift list --json` has exactly the numbered rows of /proc/interrupts;
// every GICv5-PPI and GICv5-IPI it shows is per-cpu and not movable (the IPIs, hidden from
// /proc/interrupts, are not shown at all); the movable IRQs are exactly the GICv5 SPIs with an
// action; `irqshift pin` refuses an IPI and a PPI (exit 2) and changes no file.
func TestGICv5ListClasses(t *testing.T) {
	irqs := needGICv5(t)
	restoreAtEnd(t)
	doc, movable := listMovable(t)
	rows := readInterrupts(t)
	if g, w := len(doc.IRQs), len(rows); g != w {
		t.Errorf("irqshift lists %d IRQs, /proc/interrupts has %d numbered rows", g, w)
	}
	listed := map[int]listIRQ{}
	for _, q := range doc.IRQs {
		listed[q.IRQ] = q
	}
	for _, r := range rows {
		if _, ok := listed[r.IRQ]; !ok {
			t.Errorf("IRQ %d (%s %s) of /proc/interrupts not in irqshift's list", r.IRQ, r.Chip, r.Actions)
		}
	}
	hiddenListed := 0
	for _, k := range irqs {
		q, ok := listed[k.IRQ]
		switch {
		case k.Chip == "GICv5-IPI" && ok:
			hiddenListed++
			fallthrough
		case k.perCPUChip() && ok:
			if q.Class != "per-cpu" || q.Movable || (k.Chip == "GICv5-PPI" && len(q.Effective) != 0) {
				t.Errorf("%s: irqshift says class %q movable %v effective %v (%s), want per-cpu", k, q.Class, q.Movable, q.Effective, q.Reason)
			}
			if q.Chip != k.Chip || q.HWIRQ == nil || int64(*q.HWIRQ) != k.HWIRQ {
				t.Errorf("%s: irqshift says chip %q hwirq %s", k, q.Chip, hwirqText(q.HWIRQ))
			}
		case k.Chip == "GICv5-PPI" && k.Actions != "":
			t.Errorf("%s: a PPI with an action, not in irqshift's list", k)
		case k.Chip == "GICv5-SPI" && k.Actions != "":
			if !ok || q.Class != "movable" || !q.Movable || q.Chip != "GICv5-SPI" || q.HWIRQ == nil || int64(*q.HWIRQ) != k.HWIRQ ||
				q.Trigger != map[string]string{"level": "Level", "edge": "Edge"}[k.Type] {
				t.Errorf("%s: irqshift says (listed %v) class %q movable %v (%s) chip %q hwirq %s trigger %q, want a movable GICv5-SPI with its hwirq and trigger",
					k, ok, q.Class, q.Movable, q.Reason, q.Chip, hwirqText(q.HWIRQ), q.Trigger)
			}
		}
	}
	// list's rows are /proc/interrupts' numbered rows (README, "JSON"), so the hidden IPIs are
	// not among them; that they are never written is checked by every test below.
	t.Logf("irqshift lists %d of the %d hidden GICv5 IPIs", hiddenListed, len(byChip(irqs, "GICv5-IPI")))
	if hiddenListed != 0 {
		t.Errorf("irqshift lists %d GICv5 IPIs, which /proc/interrupts hides", hiddenListed)
	}
	if got, want := formatCPUList(movable), formatCPUList(gicv5SPIs(irqs)); got != want {
		t.Errorf("irqshift's movable IRQs %s, want exactly the GICv5 SPIs with an action %s", got, want)
	}
	if len(movable) < 5 {
		t.Errorf("only %d movable IRQs (uart, rtc, 3 PCI INTx, virtio-mmio expected)", len(movable))
	}

	// pin refuses what cannot move, and writes nothing.
	ipi := byChip(irqs, "GICv5-IPI")
	timer, _ := findAction(rows, "arch_timer")
	if len(ipi) == 0 {
		t.Fatal("no GICv5-IPI")
	}
	before := fileSnapshot(t)
	pcBefore := perCPUFiles(t)
	for _, c := range []struct {
		irq  int
		want string
	}{{ipi[len(ipi)-1].IRQ, "not in /proc/interrupts"}, {timer.IRQ, "per-CPU"}} {
		r := irqshift(t, "pin", strconv.Itoa(c.irq), "0")
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("pin %d 0: exit %d stderr %q, want exit 2 saying %q", c.irq, r.Code, r.Stderr, c.want)
		}
	}
	if d := diffSnapshots(before, fileSnapshot(t)); len(d) > 0 {
		t.Errorf("refused pins changed files: %v", d)
	}
	untouchedPerCPU(t, "refused pins", pcBefore)
}

// TestGICv5Rebalance: from the boot masks (every SPI on CPU0, the GICv5's lowest CPU of 0-3) and
// from every movable IRQ pinned to CPU3 (--include-pinned), `irqshift rebalance` leaves each
// movable IRQ on one CPU, effective where it was written, counts per CPU differing by at most
// one, a second rebalance planning nothing, and every per-CPU IRQ's files as they were.
func TestGICv5Rebalance(t *testing.T) {
	irqs := needGICv5(t)
	movable := gicv5SPIs(irqs)
	for _, sc := range []struct {
		name string
		pin  string
	}{{"from_the_boot_masks", ""}, {"from_every_movable_IRQ_pinned_to_CPU3", "3"}} {
		t.Run(sc.name, func(t *testing.T) {
			restoreAtEnd(t)
			online := onlineCPUs(t)
			var flags []string
			if sc.pin != "" {
				pin(t, movable, sc.pin)
				flags = []string{"--include-pinned"}
			}
			start := perCPU(t, movable, online)
			_, text := spread(start)
			t.Logf("before: %s", text)
			if sc.pin == "" && start[0] != len(movable) {
				t.Logf("the boot masks did not leave every SPI on CPU0 (%s): an earlier test's restore", text)
			}
			pc := perCPUFiles(t)
			r := irqshift(t, append(flags, "rebalance", "--json")...)
			mustExit(t, r, 0)
			var d applyDoc
			decodeJSON(t, r, &d)
			if len(d.Results) == 0 {
				t.Fatalf("rebalance moved nothing from %s:\n%s", text, r.Stdout)
			}
			checkMovedExactly(t, "rebalance", d)
			spiSpread(t, "after rebalance", movable, online)
			dry := irqshift(t, append(flags, "rebalance", "--dry-run", "--json")...)
			mustExit(t, dry, 0)
			var plan applyDoc
			decodeJSON(t, dry, &plan)
			if len(plan.Moves) != 0 {
				t.Errorf("a second rebalance --dry-run plans %d moves: %+v", len(plan.Moves), plan.Moves)
			}
			untouchedPerCPU(t, "rebalance", pc, d, plan)
		})
	}
}

// TestGICv5DrainUndrain: after a rebalance, `irqshift drain 1` moves every movable IRQ effective on
// CPU1 to the others (none left there, counts over 0,2,3 differing by at most one), list shows
// CPU1 drained and a rebalance keeps it empty; `irqshift undrain 1` gives it its share again.
func TestGICv5DrainUndrain(t *testing.T) {
	irqs := needGICv5(t)
	const cpu = 1
	restoreAtEnd(t)
	movable := gicv5SPIs(irqs)
	online := onlineCPUs(t)
	others := without(online, cpu)
	pc := perCPUFiles(t)
	var docs []applyDoc
	run := func(args ...string) applyDoc {
		t.Helper()
		r := irqshift(t, append(args, "--json")...)
		mustExit(t, r, 0)
		var d applyDoc
		decodeJSON(t, r, &d)
		checkMovedExactly(t, strings.Join(args, " "), d)
		docs = append(docs, d)
		return d
	}
	run("rebalance")
	onCPU := map[int]bool{}
	for _, irq := range movable {
		if contains(effCPUs(t, irq), cpu) {
			onCPU[irq] = true
		}
	}
	if len(onCPU) == 0 {
		t.Fatalf("after rebalance no movable IRQ is on CPU%d: nothing to drain", cpu)
	}

	d := run("drain", strconv.Itoa(cpu))
	for irq := range onCPU {
		if res, ok := d.result(irq); !ok || res.Status != "moved" || contains(res.To, cpu) {
			t.Errorf("drain %d: IRQ %d was on CPU%d: result %+v (found %v), want moved off it", cpu, irq, cpu, res, ok)
		}
	}
	for _, r := range d.Results {
		if !onCPU[r.IRQ] {
			t.Errorf("drain %d: moved IRQ %d, which was not on CPU%d", cpu, r.IRQ, cpu)
		}
	}
	spiSpread(t, fmt.Sprintf("after drain %d", cpu), movable, others)
	if left := perCPU(t, movable, []int{cpu})[cpu]; left != 0 {
		t.Errorf("after drain %d: %d movable IRQs still effective on CPU%d", cpu, left, cpu)
	}
	doc, _ := listMovable(t)
	if !sameCPUs(doc.CPUs.Drained, []int{cpu}) || contains(doc.CPUs.Allowed, cpu) {
		t.Errorf("list after drain %d: drained %v allowed %v", cpu, doc.CPUs.Drained, doc.CPUs.Allowed)
	}
	// The drain holds: every movable IRQ masked to 1-3 by hand (too broad to be an admin pin),
	// which the GICv5 delivers to CPU1, the lowest CPU of the mask; a rebalance takes them all
	// off CPU1 again.
	pin(t, movable, "1-3")
	if got := perCPU(t, movable, []int{cpu})[cpu]; got != len(movable) {
		t.Fatalf("masked to 1-3, %d of the %d movable IRQs are effective on CPU%d, want all (the lowest CPU of the mask)", got, len(movable), cpu)
	}
	run("rebalance")
	if left := perCPU(t, movable, []int{cpu})[cpu]; left != 0 {
		t.Errorf("rebalance with CPU%d drained left %d movable IRQs on it", cpu, left)
	}
	spiSpread(t, fmt.Sprintf("rebalance with CPU%d drained", cpu), movable, others)

	u := run("undrain", strconv.Itoa(cpu))
	if got := perCPU(t, movable, []int{cpu})[cpu]; got == 0 {
		t.Errorf("undrain %d: no movable IRQ came back to CPU%d (results %+v)", cpu, cpu, u.Results)
	}
	spiSpread(t, fmt.Sprintf("after undrain %d", cpu), movable, online)
	doc, _ = listMovable(t)
	if len(doc.CPUs.Drained) != 0 || !sameCPUs(doc.CPUs.Allowed, online) {
		t.Errorf("list after undrain %d: drained %v allowed %v", cpu, doc.CPUs.Drained, doc.CPUs.Allowed)
	}
	untouchedPerCPU(t, "drain/undrain", pc, docs...)
}

// TestGICv5OfflineOnline: after a rebalance, `irqshift offline 2` leaves no movable IRQ behind
// (left_behind []), CPU2 goes offline, no movable IRQ is effective on it and the others' counts
// differ by at most one; `irqshift online 2` brings it back and gives it its share. Neither
// command touches a per-CPU IRQ; how the kernel shows CPU2's own IPIs and the PPIs while CPU2 is
// offline is logged, and after online they are as before.
func TestGICv5OfflineOnline(t *testing.T) {
	irqs := needGICv5(t)
	const cpu = 2
	restoreAtEnd(t)
	ensureOnlineAtEnd(t, cpu)
	movable := gicv5SPIs(irqs)
	online := onlineCPUs(t)
	others := without(online, cpu)
	pc := perCPUFiles(t)
	mustExit(t, irqshift(t, "rebalance"), 0)
	if perCPU(t, movable, []int{cpu})[cpu] == 0 {
		t.Fatalf("after rebalance no movable IRQ is on CPU%d", cpu)
	}

	r := irqshift(t, "offline", strconv.Itoa(cpu), "--json")
	mustExit(t, r, 0)
	var off applyDoc
	decodeJSON(t, r, &off)
	checkMovedExactly(t, "offline", off)
	checkOfflined(t, off, cpu, others)
	spiSpread(t, fmt.Sprintf("after offline %d", cpu), movable, others)
	if left := perCPU(t, movable, []int{cpu})[cpu]; left != 0 {
		t.Errorf("after offline %d: %d movable IRQs effective on it", cpu, left)
	}
	for _, k := range kernelIRQs(t) {
		if a, _ := parseCPUList(k.Affinity); k.Chip == "GICv5-IPI" && contains(a, cpu) || k.Chip == "GICv5-PPI" && k.Actions != "" {
			t.Logf("while CPU%d is offline: %s", cpu, k)
		}
	}

	r = irqshift(t, "online", strconv.Itoa(cpu), "--json")
	mustExit(t, r, 0)
	var on applyDoc
	decodeJSON(t, r, &on)
	checkMovedExactly(t, "online", on)
	if v := cpuOnlineFile(t, cpu); v != "1" {
		t.Fatalf("after irqshift online %d: cpu%d/online = %q", cpu, cpu, v)
	}
	if perCPU(t, movable, []int{cpu})[cpu] == 0 {
		t.Errorf("after online %d: no movable IRQ effective on CPU%d", cpu, cpu)
	}
	spiSpread(t, fmt.Sprintf("after online %d", cpu), movable, online)
	untouchedPerCPU(t, "offline/online", pc, off, on)
}

// TestGICv5VerifyFollowsRNG: for both RNGs (virtio-rng-pci, a level INTx SPI, and virtio-rng-device,
// an edge virtio-mmio SPI), under /dev/hwrng load, `irqshift verify` (eBPF) counts the busy
// IRQ's interrupts only on the CPU it was moved to: twice by `irqshift pin`, then by `irqshift
// drain` of that CPU with --verify, whose target irqshift chooses.
func TestGICv5VerifyFollowsRNG(t *testing.T) {
	irqs := needGICv5(t)
	kernel := map[int]kernelIRQ{}
	for _, k := range irqs {
		kernel[k.IRQ] = k
	}
	types := map[string]bool{}
	for _, name := range rngNames(t) {
		t.Run(name, func(t *testing.T) {
			restoreAtEnd(t)
			row := busyRNG(t, name)
			k := kernel[row.IRQ]
			if k.Chip != "GICv5-SPI" {
				t.Fatalf("%s: busy IRQ %s, want a GICv5-SPI", name, k)
			}
			types[k.Type] = true
			from := effCPUs(t, row.IRQ)
			if len(from) != 1 {
				t.Fatalf("IRQ %d effective %v, want one CPU", row.IRQ, from)
			}
			t.Logf("%s: busy IRQ %d (%s, %s hwirq %d %s), effective CPU%d", name, row.IRQ, row.Actions, k.Chip, k.HWIRQ, k.Type, from[0])
			load := startHwrngLoad(t, row.IRQ)
			cpus := onlineCPUs(t)
			cur := from[0]
			for i := 1; i <= 2; i++ {
				to := cpus[(indexOf(cpus, from[0])+i)%len(cpus)]
				load.around(t, func() {
					mustExit(t, irqshift(t, "pin", strconv.Itoa(row.IRQ), strconv.Itoa(to), "--json"), 0)
				})
				if e := effCPUs(t, row.IRQ); !sameCPUs(e, []int{to}) {
					t.Fatalf("irqshift pin %d %d: effective_affinity_list %v", row.IRQ, to, e)
				}
				r, doc := verifyIRQJSON(t, row.IRQ, "500ms")
				mustExit(t, r, 0)
				checkFollows(t, fmt.Sprintf("after pin %d %d", row.IRQ, to), doc, row.IRQ, to)
				cur = to
			}
			// The busy IRQ is pinned to cur: drain moves it anyway (a drain beats a pin).
			var r cliRun
			load.around(t, func() { r = irqshift(t, "drain", strconv.Itoa(cur), "--verify", "--json") })
			mustExit(t, r, 0)
			var d applyVerifyDoc
			decodeJSON(t, r, &d)
			checkMovedExactly(t, "drain --verify", d.applyDoc)
			res, ok := d.result(row.IRQ)
			if !ok || res.Status != "moved" || len(res.To) != 1 || res.To[0] == cur {
				t.Fatalf("drain %d: busy IRQ %d result %+v (found %v), want moved off CPU%d", cur, row.IRQ, res, ok, cur)
			}
			if d.Verify == nil {
				t.Fatalf("drain --verify: no verify member in %s", r.Stdout)
			}
			checkFollows(t, fmt.Sprintf("drain %d --verify", cur), *d.Verify, row.IRQ, res.To[0])
			for _, c := range d.Verify.IRQs {
				if c.Verdict == "misrouted" || c.Verdict == "on-offline-cpu" {
					t.Errorf("drain --verify: IRQ %d (%v): verdict %s (expected %v, fired %v)", c.IRQ, c.Actions, c.Verdict, c.Expected, c.Fired)
				}
			}
			t.Logf("%s: %d bytes read from /dev/hwrng meanwhile", name, load.bytes.Load())
		})
	}
	if !types["level"] || !types["edge"] {
		t.Errorf("covered SPI trigger types %v, want level (PCI INTx) and edge (virtio-mmio)", types)
	}
}
