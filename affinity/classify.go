package affinity

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
)

// Class says whether irqshift may move an IRQ, and if not, why.
type Class string

// The classes, in the order Classify tests them.
const (
	// ClassPerCPU: an IRQ that exists once per CPU (GIC SGI/PPI/EPPI,
	// partitioned PPIs, GICv5 PPIs and IPIs); it cannot move.
	ClassPerCPU Class = "per-cpu"
	// ClassNoAction: no driver handles it; the kernel refuses writes.
	ClassNoAction Class = "no-action"
	// ClassManaged: the kernel manages its affinity (multi-queue devices
	// such as virtio-blk and NVMe) and shuts it down with its CPU.
	ClassManaged Class = "managed"
	// ClassBanned: the user asked irqshift to leave it alone.
	ClassBanned Class = "banned"
	// ClassIgnored: a device rule says irqshift must never touch it
	// (ignore = true).
	ClassIgnored Class = "ignored"
	// ClassMovable: irqshift may move it.
	ClassMovable Class = "movable"
)

// IRQ is one numbered row of /proc/interrupts with its /proc/irq state and
// classification.
type IRQ struct {
	IRQ      int
	Chip     string
	HWIRQ    uint64
	HasHWIRQ bool
	Trigger  string
	Handler  string
	Actions  []string
	// Counts[i] is the count on CPU CPUs[i]; CPUs is the /proc/interrupts
	// header (online CPUs only), shared by every IRQ of a snapshot.
	Counts    []uint64
	CPUs      []int
	Total     uint64
	Affinity  sysfs.CPUSet
	Effective sysfs.CPUSet
	// HasEffective is false where the kernel lacks effective_affinity_list.
	HasEffective bool
	ReadOnly     bool
	// Node is the NUMA node of the IRQ's device, -1 when unknown. The
	// planner keeps the IRQ on that node's CPUs (Planner.Home).
	Node   int
	Class  Class
	Reason string
	// Rate is the IRQ's interrupts per second where it was measured
	// (Engine.SetRates, from two snapshots' counts), else 0.
	Rate float64
	// Device and Driver are the device the IRQ belongs to and its bound
	// driver, as /sys shows them ("" when unknown or none).
	Device, Driver string
	// Rule names the device rule that matched the IRQ (the first in the
	// rules directory's order), "" for none.
	Rule string
}

// Movable reports whether irqshift may write this IRQ's affinity.
func (irq IRQ) Movable() bool { return irq.Class == ClassMovable }

// CountOn returns the interrupt count on cpu; 0 for a CPU that was offline
// when /proc/interrupts was read.
func (irq IRQ) CountOn(cpu int) uint64 {
	for i, c := range irq.CPUs {
		if c == cpu && i < len(irq.Counts) {
			return irq.Counts[i]
		}
	}
	return 0
}

// Where returns the CPUs the IRQ is delivered to: its effective affinity
// where the kernel tells it, else its affinity mask.
func (irq IRQ) Where() sysfs.CPUSet {
	if irq.HasEffective && !irq.Effective.IsEmpty() {
		return irq.Effective
	}
	return irq.Affinity
}

// Memory is what the kernel has taught us about IRQs by refusing writes.
// The kernel gives no file that says "managed" on 6.1: a refused write of
// an IRQ that is neither per-CPU nor action-less is how we learn it. Keys
// are Key(irq) so that a number reused by another device is not confused.
type Memory map[string]string

// Key names an IRQ by number, chip and actions.
func Key(irq IRQ) string {
	// Built by hand, not with fmt: the planner and the pin learning look
	// up every IRQ of every snapshot by it.
	n := 24 + len(irq.Chip)
	for _, a := range irq.Actions {
		n += len(a) + 1
	}
	b := make([]byte, 0, n)
	b = strconv.AppendInt(b, int64(irq.IRQ), 10)
	b = append(append(append(b, '/'), irq.Chip...), '/')
	for i, a := range irq.Actions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, a...)
	}
	return string(b)
}

// Learn records that the kernel refused to move irq, with the reason.
func (m Memory) Learn(irq IRQ, reason string) {
	m[Key(irq)] = reason
}

// Policy is the user's say in classification.
type Policy struct {
	// BannedIRQs are never touched.
	BannedIRQs map[int]bool
}

// gicChip reports whether chip is one of the GIC's own irqchip names
// (`GIC(v[0-9]+)?(-[0-9]+)?`): GICv2, GICv3, GIC-0 and partitioned-PPI
// domains such as GICv3-23. Hand-written, not a regexp: Classify runs it
// for every IRQ of every snapshot, and the regexp was a tenth of a quick
// settle on a 4096-IRQ machine.
//
// The GICv5's chips ("GICv5-PPI", "GICv5-SPI", ...) must not match: this
// name is what makes perCPUHWIRQ's GICv2/v3 INTID ranges apply, and a
// GICv5 domain numbers its hwirqs from 0 within each interrupt type, so
// a GICv5 SPI or LPI with hwirq 5 is an ordinary movable interrupt, not
// an SGI.
func gicChip(chip string) bool {
	_, _, ok := splitGICChip(chip)
	return ok
}

// partitionedPPIChip reports whether chip is a per-partition PPI domain
// that irq-partition-percpu.c creates (`GICv[0-9]+-[0-9]+`, "GICv3-23"):
// every IRQ in it is per-CPU. GICv2 on 6.1 and 6.12 is named "GIC-0",
// which is not a partition.
func partitionedPPIChip(chip string) bool {
	version, part, ok := splitGICChip(chip)
	return ok && version && part
}

// splitGICChip parses `GIC(v[0-9]+)?(-[0-9]+)?`: whether chip has the
// version part and the partition part, and whether it matches at all.
func splitGICChip(chip string) (version, part, ok bool) {
	rest, found := strings.CutPrefix(chip, "GIC")
	if !found {
		return false, false, false
	}
	if r, found := strings.CutPrefix(rest, "v"); found {
		n := leadingDigits(r)
		if n == 0 {
			return false, false, false
		}
		version, rest = true, r[n:]
	}
	if r, found := strings.CutPrefix(rest, "-"); found {
		n := leadingDigits(r)
		if n == 0 {
			return false, false, false
		}
		part, rest = true, r[n:]
	}
	return version, part, rest == ""
}

// leadingDigits counts the ASCII digits at the start of s.
func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// gicv5PerCPUChip reports whether chip is one of the GICv5 irqchips all
// of whose interrupts are per CPU, whatever their hwirq (kernel 6.17 and
// later, drivers/irqchip/irq-gic-v5.c):
//
//   - "GICv5-PPI", the PPI domain: PPIs 0–127 (the type bits are not in
//     the hwirq), set up with irq_set_percpu_devid and a chip without
//     irq_set_affinity. No GICv5 PPI can move.
//   - "GICv5-IPI", the IPI domain stacked on the LPI domain: the GICv5
//     has no SGIs, so each CPU gets its own LPI per IPI (hwirq = the
//     index in that domain, CPU × IPIs per CPU + IPI). See classify for
//     why the chip name is what marks them.
//
// The other GICv5 interrupts follow the usual rules: "GICv5-SPI" (wired,
// hwirq = SPI ID), "GICv5-LPI", the ITS's per-device MSI domains
// ("ITS-v5-PCI-MSIX-0000:00:02.0", hwirq = MSI index) and the IWB's
// wired-to-MSI domains (template chip "GICv5-IWB", printed as
// "ITS-v5-GICv5-IWB-<device>", hwirq = wire) all reach
// gicv5_lpi_irq_set_affinity or gicv5_spi_irq_set_affinity and move.
func gicv5PerCPUChip(chip string) bool {
	return chip == "GICv5-PPI" || chip == "GICv5-IPI"
}

// perCPUHWIRQ reports whether a GIC interrupt ID is banked per CPU: SGIs
// 0–15, PPIs 16–31 and extended PPIs 1056–1119 (GICv3.1).
func perCPUHWIRQ(hwirq uint64) bool {
	return hwirq < 32 || (hwirq >= 1056 && hwirq <= 1119)
}

// Classify joins a snapshot's files into IRQs, sorted by number, and
// classifies each.
func Classify(snap *sysfs.Snapshot, memory Memory, policy Policy) []IRQ {
	out := make([]IRQ, 0, len(snap.Interrupts.IRQs))
	for _, row := range snap.Interrupts.IRQs {
		irq, ok := joinIRQ(row, snap)
		if !ok {
			continue // vanished
		}
		irq.Class, irq.Reason = classify(irq, memory, policy)
		out = append(out, irq)
	}
	return sortedByNumber(out)
}

// classifyRefreshed is Classify of an incremental snapshot (sysfs.FS.Refresh)
// made from the snapshot that prev, sorted by number, is the
// classification of: an IRQ it did not read again is prev's, only
// classified again (what the kernel refused may have grown); the others
// are joined anew. On a 4096-IRQ machine this was a third of a quick
// settle.
func classifyRefreshed(prev []IRQ, snap *sysfs.Snapshot, memory Memory, policy Policy) []IRQ {
	fresh := make(map[int]bool, len(snap.Reread)+len(snap.Appeared))
	for _, irq := range snap.Reread {
		fresh[irq] = true
	}
	for _, irq := range snap.Appeared {
		fresh[irq] = true
	}
	out := make([]IRQ, 0, len(snap.Interrupts.IRQs))
	j := 0
	for _, row := range snap.Interrupts.IRQs {
		for j < len(prev) && prev[j].IRQ < row.IRQ {
			j++
		}
		var irq IRQ
		if j < len(prev) && prev[j].IRQ == row.IRQ && !fresh[row.IRQ] {
			irq = prev[j]
		} else {
			var ok bool
			if irq, ok = joinIRQ(row, snap); !ok {
				continue
			}
		}
		irq.Class, irq.Reason = classify(irq, memory, policy)
		out = append(out, irq)
	}
	return sortedByNumber(out)
}

// joinIRQ joins a row of /proc/interrupts with its /proc/irq files and
// node; false when its files are gone.
func joinIRQ(row sysfs.Interrupt, snap *sysfs.Snapshot) (IRQ, bool) {
	aff, ok := snap.Affinity[row.IRQ]
	if !ok {
		return IRQ{}, false
	}
	irq := IRQ{
		IRQ:          row.IRQ,
		Chip:         row.Chip,
		HWIRQ:        row.HWIRQ,
		HasHWIRQ:     row.HasHWIRQ,
		Trigger:      row.Trigger,
		Handler:      row.Handler,
		Actions:      row.Actions,
		Counts:       row.Counts,
		CPUs:         snap.Interrupts.CPUs,
		Total:        row.Total(),
		Affinity:     aff.Affinity,
		Effective:    aff.Effective,
		HasEffective: aff.HasEffective,
		ReadOnly:     aff.ReadOnly,
		Node:         -1,
	}
	if node, ok := snap.IRQNodes[row.IRQ]; ok && node >= 0 {
		irq.Node = node
	}
	if irq.Actions == nil {
		irq.Actions = []string{}
	}
	if k, ok := snap.Kernel[row.IRQ]; ok && !irq.HasHWIRQ && k.HasHWIRQ {
		irq.HWIRQ, irq.HasHWIRQ = k.HWIRQ, true
	}
	return irq, true
}

func sortedByNumber(irqs []IRQ) []IRQ {
	byNumber := func(a, b IRQ) int { return a.IRQ - b.IRQ }
	if !slices.IsSortedFunc(irqs, byNumber) {
		slices.SortFunc(irqs, byNumber)
	}
	return irqs
}

func classify(irq IRQ, memory Memory, policy Policy) (Class, string) {
	switch {
	case gicv5PerCPUChip(irq.Chip):
		// First, before the rules that read the files: a GICv5 IPI has
		// an effective CPU (irq_force_affinity binds it to its CPU) and
		// a read-only mask, so the effective-affinity rule below misses
		// it and the read-only rule would call it managed. The kernel
		// gives no other mark: IRQ_PER_CPU | IRQ_NO_BALANCING are not
		// exported outside debugfs, and IRQ_HIDDEN only keeps it out of
		// /proc/interrupts. /proc/irq/N and /sys/kernel/irq/N
		// (chip_name "GICv5-IPI", actions "IPI") still describe it,
		// and a row built from those (Refresh's IRQs that appeared)
		// must not make it movable. A GICv5 PPI's empty effective
		// mask would catch it below; the chip says so with the reason.
		return ClassPerCPU, gicv5Reason(irq)
	case partitionedPPIChip(irq.Chip):
		return ClassPerCPU, fmt.Sprintf("per-CPU: partitioned PPI domain %s", irq.Chip)
	case gicChip(irq.Chip) && irq.HasHWIRQ && perCPUHWIRQ(irq.HWIRQ):
		return ClassPerCPU, fmt.Sprintf("per-CPU: GIC %s %d", gicKind(irq.HWIRQ), irq.HWIRQ)
	case irq.HasEffective && irq.Effective.IsEmpty():
		return ClassPerCPU, "per-CPU: empty effective affinity"
	case len(irq.Actions) == 0:
		return ClassNoAction, "no action: no driver handles it"
	case irq.ReadOnly:
		return ClassManaged, "managed: smp_affinity_list is read-only"
	}
	if len(memory) > 0 {
		if reason, ok := memory[Key(irq)]; ok {
			return ClassManaged, reason
		}
	}
	if policy.BannedIRQs[irq.IRQ] {
		return ClassBanned, "banned by the user"
	}
	return ClassMovable, ""
}

// gicv5Reason says why a GICv5 PPI or IPI is per-CPU.
func gicv5Reason(irq IRQ) string {
	if irq.Chip == "GICv5-IPI" {
		return "per-CPU: GICv5 IPI, an LPI the kernel binds to one CPU"
	}
	if irq.HasHWIRQ {
		return fmt.Sprintf("per-CPU: GICv5 PPI %d", irq.HWIRQ)
	}
	return "per-CPU: GICv5 PPI"
}

func gicKind(hwirq uint64) string {
	switch {
	case hwirq < 16:
		return "SGI"
	case hwirq < 32:
		return "PPI"
	}
	return "EPPI"
}
