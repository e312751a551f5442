package sysfstest

// VM4 is the 4-CPU arm64 QEMU VM of shared/KERNEL-FACTS.md (-M
// virt,gic-version=3 -smp 4, virtio-net, virtio-blk with four queues,
// virtio-rng over PCI and over mmio), just after boot:
//
//   - per-CPU: arch_timer (PPI 27) and arm-pmu (PPI 23), listed; the IPIs
//     (hidden) and three PPIs without an action (not listed);
//   - 3 wired GICv3 SPIs: uart-pl011, rtc-pl031, virtio3 (virtio-mmio);
//   - 6 ITS MSIs: the config vectors of the three PCI devices, virtio-rng's
//     input and virtio-net's two queues (which follow hotplug);
//   - 4 managed virtio-blk queues, one per CPU.
//
// Kernel61 uses the IRQ numbers, chip names ("ITS-MSI", global hwirqs) and
// counts printed in KERNEL-FACTS.md; Kernel612 those of the capture in
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
