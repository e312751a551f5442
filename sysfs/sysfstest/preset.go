package sysfstest

import (
	"fmt"
	"strconv"

	"github.com/irqshift/irqshift/sysfs"
)

// VM4 is the 4-CPU arm64 QEMU VM that make test boots (tests/vm/run.sh's
// default: -M virt,gic-version=3 -smp 4, virtio-net, virtio-blk with four
// queues, virtio-rng over PCI and over mmio), just after boot:
//
//   - per-CPU: arch_timer (PPI 27) and arm-pmu (PPI 23), listed; the IPIs
//     (hidden) and three PPIs without an action (not listed);
//   - 3 wired GICv3 SPIs: uart-pl011, rtc-pl031, virtio3 (virtio-mmio);
//   - 6 ITS MSIs: the config vectors of the three PCI devices, virtio-rng's
//     input and virtio-net's two queues (which follow hotplug);
//   - 4 managed virtio-blk queues, one per CPU.
//
// Kernel61 uses the IRQ numbers, chip names ("ITS-MSI", global hwirqs) and
// counts of the 6.1 VM's /proc/interrupts (the capture in
// sysfs/testdata/proc-interrupts/20-qemu-arm64-6.1-4cpu.txt); Kernel612 those
// of the capture in
// tests/testdata/vm-gicv3-4cpu ("ITS-PCI-MSIX-<bdf>" chips with the MSI-X
// index as hwirq, rtc and pmu at 18 and 19, eight IPIs). With the ITS's
// least-loaded rule the MSIs land 2/2/1/1 and the SPIs all on CPU0: 5/2/1/1
// movable IRQs per CPU, as measured.
func VM4(v Version) Config {
	cfg := Config{Kernel: v, Possible: 4}
	var irqs []IRQ
	ipis := len(ipiNames[v])
	for i := range ipis {
		irqs = append(irqs, PerCPU(1+i, "GICv3", uint64(i), "Edge", "IPI").Hide())
	}
	// PPIs nobody requested: in /proc/irq, not in /proc/interrupts.
	irqs = append(irqs,
		PerCPU(9, "GICv3", 29, "Edge"),
		PerCPU(10, "GICv3", 30, "Edge"),
		PerCPU(12, "GICv3", 26, "Edge"),
	)
	if v == Kernel612 {
		const net, rng, blk = "ITS-PCI-MSIX-0000:00:01.0", "ITS-PCI-MSIX-0000:00:02.0", "ITS-PCI-MSIX-0000:00:03.0"
		irqs = append(irqs,
			PerCPU(11, "GICv3", 27, "Level", "arch_timer").WithCounts(555, 461, 582, 485),
			SPI(13, 33, "Level", "uart-pl011"),
			SPI(18, 34, "Level", "rtc-pl031"),
			PerCPU(19, "GICv3", 23, "Level", "arm-pmu"),
			MSI(20, rng, 0, "virtio1-config").WithNode(-1),
			MSI(21, rng, 1, "virtio1-input").WithNode(-1).WithCounts(0, 2, 0, 0),
			SPI(22, 79, "Edge", "virtio3").WithCounts(1, 0, 0, 0),
			MSI(23, blk, 0, "virtio2-config"),
			Managed(24, blk, 1, 0, "virtio2-req.0"),
			Managed(25, blk, 2, 1, "virtio2-req.1"),
			Managed(26, blk, 3, 2, "virtio2-req.2").WithCounts(0, 0, 1, 0),
			Managed(27, blk, 4, 3, "virtio2-req.3"),
			MSI(28, net, 0, "virtio0-config").WithNode(-1),
			MSI(29, net, 1, "virtio0-input.0").WithNode(-1).WithHint(0, 1, 2, 3).FollowingHotplug(),
			MSI(30, net, 2, "virtio0-output.0").WithNode(-1).WithHint(0, 1, 2, 3).FollowingHotplug(),
		)
	} else {
		const its = "ITS-MSI"
		irqs = append(irqs,
			PerCPU(11, "GICv3", 27, "Level", "arch_timer").WithCounts(638, 513, 556, 605),
			SPI(13, 33, "Level", "uart-pl011"),
			PerCPU(14, "GICv3", 23, "Level", "arm-pmu"),
			SPI(16, 34, "Level", "rtc-pl031"),
			MSI(20, its, 32768, "virtio1-config").WithNode(-1),
			MSI(21, its, 32769, "virtio1-input").WithNode(-1).WithCounts(0, 5, 0, 0),
			SPI(22, 79, "Edge", "virtio3").WithCounts(1, 0, 0, 0),
			MSI(23, its, 49152, "virtio2-config"),
			Managed(24, its, 49153, 0, "virtio2-req.0").WithCounts(1, 0, 0, 0),
			Managed(25, its, 49154, 1, "virtio2-req.1").WithCounts(0, 6, 0, 0),
			Managed(26, its, 49155, 2, "virtio2-req.2"),
			Managed(27, its, 49156, 3, "virtio2-req.3"),
			MSI(28, its, 16384, "virtio0-config").WithNode(-1),
			MSI(29, its, 16385, "virtio0-input.0").WithNode(-1).WithCounts(3, 0, 0, 0).WithHint(0, 1, 2, 3).FollowingHotplug(),
			MSI(30, its, 16386, "virtio0-output.0").WithNode(-1).WithCounts(0, 6, 0, 0).WithHint(0, 1, 2, 3).FollowingHotplug(),
		)
	}
	cfg.IRQs = irqs
	return cfg
}

// NUMA8 is VM4's machine grown to 8 CPUs on two NUMA nodes, 0-3 and 4-7,
// with its PCI host bridge on node 1: the DT-booted 6.12 NUMA VM of
// tests/vm/README.md ("NUMA"; run.sh --pci-node 1 adds numa-node-id = <1>
// to pcie@10000000; docs/KERNELS.md, "NUMA: a device's node and the
// kernel's default masks"), just after boot.
//
//   - VM4's devices and IRQ numbers; every PCI MSI (the config vectors,
//     virtio-rng's input, virtio-net's queues and the managed virtio-blk
//     queues) has /proc/irq/N/node 1, and on Kernel612 its device's
//     /sys/bus/pci/devices/<BDF>/numa_node says 1 too;
//   - four more virtio-rng devices (virtio4…virtio7, PCI 0000:00:04.0 to
//     07.0) with one input MSI each on node 1, IRQs 31-34;
//   - the kernel's node-local default masks: every unmanaged PCI MSI is
//     masked 4-7, delivered least-loaded within 4-7 (two per CPU), except
//     virtio-net's two queues, which its driver sets to 0-7 (hint 0-7)
//     and which land on CPUs 0 and 1;
//   - virtio-blk with four queues (num-queues=4) spread over the nodes by
//     the kernel: managed masks 0-1, 2-3, 4-5 and 6-7;
//   - the wired SPIs (uart, rtc, virtio-mmio) keep node -1 and CPU0.
//
// Counts are zero but for arch_timer's. Kernel61 has the same machine
// with 6.1's "ITS-MSI" chips, which name no PCI device.
func NUMA8(v Version) Config {
	base := VM4(v)
	cfg := Config{Kernel: v, Possible: 8, Nodes: []sysfs.CPUSet{upTo(4), upTo(8).Difference(upTo(4))}}
	all := upTo(8)
	for _, q := range base.IRQs {
		if q.Kind == KindMSI || q.Kind == KindManaged {
			q.Node, q.Counts = 1, nil
		}
		if q.Kind == KindManaged {
			first := 2 * q.Affinity.First() // queue i of 4 over 8 CPUs
			q.Affinity = sysfs.NewCPUSet(first, first+1)
		}
		if q.FollowsHotplug {
			q.Hint = all
		}
		cfg.IRQs = append(cfg.IRQs, q)
	}
	for i := range 4 {
		slot := 4 + i
		name := fmt.Sprintf("virtio%d-input", slot)
		q := MSI(31+i, "ITS-MSI", uint64(16384*slot+1), name)
		if v == Kernel612 {
			q = MSI(31+i, fmt.Sprintf("ITS-PCI-MSIX-0000:00:%02x.0", slot), 1, name)
		}
		cfg.IRQs = append(cfg.IRQs, q.WithNode(1))
	}
	return cfg
}

// Big is a large arm64 server on Kernel612 for benchmarks: cpus CPUs
// (Possible, all online) in nodes NUMA nodes of consecutive CPUs (node i
// holds CPUs i*cpus/nodes to (i+1)*cpus/nodes-1), and irqs IRQs listed in
// /proc/interrupts (with an action; the eight IPIs are hidden besides):
//
//   - IRQ 11 arch_timer and 12 arm-pmu, per-CPU;
//   - irqs/16 wired GICv3 SPIs from IRQ 13 ("spiN", hwirq 32…, node -1),
//     delivered to CPU0 as the GIC does;
//   - the rest ITS MSIs of PCI devices of 32 vectors each ("devD-qV",
//     chip "ITS-PCI-MSIX-<BDF>" with BDF 0000:01:00.0, 0000:02:00.0, …,
//     hwirq = the vector), right after the SPIs. Device D is on node
//     D % nodes (/proc/irq/N/node and numa_node both), so its MSIs take
//     that node's CPUs as their default mask, least-loaded within them;
//     in every eighth round of devices over the nodes (devices 7*nodes to
//     8*nodes-1, …) the vectors are managed instead, one per CPU of the
//     whole machine in turn. Each device is in /sys (IRQ.Device: its
//     msi_irqs lists its vectors) with its driver bound: "nvme" for the
//     devices of managed vectors, "mlx5_core" for the others.
//
// It panics unless 1 ≤ nodes ≤ cpus ≤ 4096 and 2 ≤ irqs. Build of
// Big(256, 4, 4096) takes well under a second on tmpfs.
func Big(cpus, nodes, irqs int) Config {
	if nodes < 1 || nodes > cpus || cpus > 4096 || irqs < 2 {
		panic(fmt.Sprintf("sysfstest.Big(%d, %d, %d): want 1 ≤ nodes ≤ cpus ≤ 4096 and irqs ≥ 2", cpus, nodes, irqs))
	}
	cfg := Config{Kernel: Kernel612, Possible: cpus}
	for i := range nodes {
		cfg.Nodes = append(cfg.Nodes, upTo((i+1)*cpus/nodes).Difference(upTo(i*cpus/nodes)))
	}
	out := make([]IRQ, 0, irqs+len(ipiNames[Kernel612])+3)
	for i := range ipiNames[Kernel612] {
		out = append(out, PerCPU(1+i, "GICv3", uint64(i), "Edge", "IPI").Hide())
	}
	out = append(out,
		PerCPU(9, "GICv3", 29, "Edge"),
		PerCPU(10, "GICv3", 30, "Edge"),
		PerCPU(11, "GICv3", 27, "Level", "arch_timer"),
		PerCPU(12, "GICv3", 23, "Level", "arm-pmu"),
	)
	nspi := min(irqs/16, 1020-32)
	for i := range nspi {
		out = append(out, SPI(13+i, uint64(32+i), "Level", "spi"+strconv.Itoa(i)))
	}
	const vectors = 32
	managedCPU := 0
	for i := range irqs - 2 - nspi {
		dev, vec := i/vectors, i%vectors
		bdf := fmt.Sprintf("%04x:%02x:00.0", (dev+1)/256, (dev+1)%256)
		chip, name := "ITS-PCI-MSIX-"+bdf, "dev"+strconv.Itoa(dev)+"-q"+strconv.Itoa(vec)
		var q IRQ
		if (dev/nodes)%8 == 7 {
			q = Managed(13+nspi+i, chip, uint64(vec), managedCPU, name).WithDevice(bdf, "nvme")
			managedCPU = (managedCPU + 1) % cpus
		} else {
			q = MSI(13+nspi+i, chip, uint64(vec), name).WithDevice(bdf, "mlx5_core")
		}
		out = append(out, q.WithNode(dev%nodes))
	}
	cfg.IRQs = out
	return cfg
}

// GICv5VM4 is VM4's machine on a GICv5 (kernel 6.17 or later), as the
// kernel sources build it (drivers/irqchip/irq-gic-v5*.c,
// arch/arm64/kernel/smp.c); its /proc/interrupts is the fixture
// sysfs/testdata/proc-interrupts/39-synthetic-arm64-6.17-gicv5-4cpu.txt.
// Kernel612 stands for 6.17: the same EPERM for refused writes, 0444
// masks of per-CPU and managed IRQs, and the eight IPI rows.
//
//   - IRQs 1-32: the IPIs, per-CPU LPIs of chip "GICv5-IPI" (the GICv5
//     has no SGIs): eight per possible CPU, IRQ 1+8*cpu+ipi with hwirq
//     8*cpu+ipi, action "IPI", mask that CPU, hidden (IRQ_HIDDEN). The
//     kernel shows that CPU as effective; the simulator's per-CPU IRQs
//     have none, which nothing reads here, as they are never listed.
//   - per-CPU PPIs of chip "GICv5-PPI" (hwirq = PPI number, 0-127):
//     arch_timer (PPI 27, IRQ 35) and arm-pmu (PPI 23, IRQ 37) listed;
//     the other timer PPIs (29, 30, 26 as IRQs 33, 34, 36) without an
//     action;
//   - wired SPIs of chip "GICv5-SPI", hwirq = the SPI ID from 0:
//     uart-pl011 (5, IRQ 38), rtc-pl031 (6, IRQ 39);
//   - an IWB wire: virtio3 (virtio-mmio) on wire 3, IRQ 40, chip
//     "ITS-v5-GICv5-IWB-2f000000.interrupt-controller" (the IWB's
//     per-device MSI domain: the ITS's prefix, the template's name, the
//     platform device);
//   - ITS MSIs of chips "ITS-v5-PCI-MSIX-<BDF>", hwirq = the MSI-X index:
//     virtio-rng 0000:00:01.0 (IRQs 41-42), virtio-blk 0000:00:02.0
//     (config 43, four managed queues 44-47 on CPUs 0-3), virtio-net
//     0000:00:03.0 (config 48, queues 49-50 following hotplug).
//
// Every GICv5 SPI and LPI goes to the first online CPU of its mask
// (gicv5_iri_irq_set_affinity: cpumask_any_and), not to the least
// loaded as a GICv3 ITS does, so the IWB and ITS interrupts are built as
// KindSPI with their own chips and triggers: just after boot all nine
// movable IRQs are on CPU0.
func GICv5VM4() Config {
	const ipisPerCPU = 8 // MAX_IPI, GICV5_IPIS_PER_CPU
	cfg := Config{Kernel: Kernel612, Possible: 4}
	var irqs []IRQ
	for cpu := range cfg.Possible {
		for ipi := range ipisPerCPU {
			n := cpu*ipisPerCPU + ipi
			irqs = append(irqs, PerCPU(1+n, "GICv5-IPI", uint64(n), "Edge", "IPI").WithAffinity(cpu).Hide())
		}
	}
	// lpi describes an LPI-backed interrupt (IWB wire or ITS MSI): movable,
	// delivered as a GICv5 SPI is.
	lpi := func(irq int, chip string, hwirq uint64, trigger string, actions ...string) IRQ {
		q := SPI(irq, hwirq, trigger, actions...)
		q.Chip = chip
		return q
	}
	spi := func(irq int, hwirq uint64, actions ...string) IRQ {
		return lpi(irq, "GICv5-SPI", hwirq, "Level", actions...)
	}
	const iwb = "ITS-v5-GICv5-IWB-2f000000.interrupt-controller"
	const rng, blk, net = "ITS-v5-PCI-MSIX-0000:00:01.0", "ITS-v5-PCI-MSIX-0000:00:02.0", "ITS-v5-PCI-MSIX-0000:00:03.0"
	irqs = append(irqs,
		PerCPU(33, "GICv5-PPI", 29, "Level"),
		PerCPU(34, "GICv5-PPI", 30, "Level"),
		PerCPU(35, "GICv5-PPI", 27, "Level", "arch_timer").WithCounts(1203, 977, 1011, 1160),
		PerCPU(36, "GICv5-PPI", 26, "Level"),
		PerCPU(37, "GICv5-PPI", 23, "Level", "arm-pmu"),
		spi(38, 5, "uart-pl011").WithCounts(42, 0, 0, 0),
		spi(39, 6, "rtc-pl031"),
		lpi(40, iwb, 3, "Level", "virtio3").WithCounts(7, 0, 0, 0),
		lpi(41, rng, 0, "Edge", "virtio1-config"),
		lpi(42, rng, 1, "Edge", "virtio1-input").WithCounts(5, 0, 0, 0),
		lpi(43, blk, 0, "Edge", "virtio2-config").WithNode(0),
		Managed(44, blk, 1, 0, "virtio2-req.0").WithCounts(11, 0, 0, 0),
		Managed(45, blk, 2, 1, "virtio2-req.1").WithCounts(0, 9, 0, 0),
		Managed(46, blk, 3, 2, "virtio2-req.2").WithCounts(0, 0, 4, 0),
		Managed(47, blk, 4, 3, "virtio2-req.3").WithCounts(0, 0, 0, 6),
		lpi(48, net, 0, "Edge", "virtio0-config"),
		lpi(49, net, 1, "Edge", "virtio0-input.0").WithCounts(3, 0, 0, 0).WithHint(0, 1, 2, 3).FollowingHotplug(),
		lpi(50, net, 2, "Edge", "virtio0-output.0").WithCounts(6, 0, 0, 0).WithHint(0, 1, 2, 3).FollowingHotplug(),
	)
	cfg.IRQs = irqs
	return cfg
}

// VM4Busy is VM4 with three virtio-serial ports' MSI-X IRQs, 40 to 42
// ("virtio4-virtqueues" … on PCI 0000:00:04.0 to 06.0, node unknown), where
// the kernel's ITS put them in the VM (tests/vm run.sh --busy 3): 40 and 41
// on CPU1, 42 on CPU3, with the kernel's mask 0-3. Give them rates with
// SetRate to make them busy.
func VM4Busy(v Version) Config {
	cfg := VM4(v)
	for i, cpu := range []int{1, 1, 3} {
		n := strconv.Itoa(4 + i)
		cfg.IRQs = append(cfg.IRQs, MSI(40+i, "ITS-PCI-MSIX-0000:00:0"+n+".0", 1, "virtio"+n+"-virtqueues").
			WithNode(-1).WithAffinity(0, 1, 2, 3).WithEffective(cpu))
	}
	return cfg
}
