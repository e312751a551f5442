package affinity

import "github.com/irqshift/irqshift/sysfs"

// hotplugRereads is the policy of the quick path (Engine.LoadChanged):
// which IRQs of the last snapshot a CPU hotplug event can have changed,
// whose /proc/irq/N files sysfs.FS.Refresh must therefore read again.
// prev is the classification of that snapshot, sorted by number; before
// are its online CPUs, online those read now, changed the CPUs the event
// names. A CPU whose online state differs between before and online
// counts as changed even when changed does not name it. The IRQs to read
// again, sorted by number, are:
//
//   - an IRQ effective on a changed CPU (its mask, where the kernel has no
//     effective_affinity_list): the kernel migrated it away on offline; a
//     managed IRQ is shut down or started with its CPU;
//   - an IRQ whose mask has no CPU that stayed online: the kernel
//     overwrote it with the online mask;
//   - the IRQs of also (sorted): those irqshift wrote since the snapshot,
//     and those a driver's own hotplug callback rewrites (virtio-net),
//     learned from full snapshots.
//
// A per-CPU IRQ (ClassPerCPU) is never read again, not even when also
// names it: the kernel does not migrate it on hotplug (migrate_one_irq
// skips per-CPU descriptors, and an offline CPU's GICv5 IPIs keep their
// affinity, docs/KERNELS.md) and refuses every write to it. The class,
// not the files, decides: besides an empty effective affinity, classify
// knows per-CPU IRQs by their chip and interrupt ID (a GICv5 PPI or IPI,
// a GIC SGI or PPI, a partitioned PPI domain), and a GICv5 IPI shows an
// effective CPU. Every IRQ of another class is read again by the rules
// above, whatever it is (managed, action-less, banned, movable).
func hotplugRereads(prev []IRQ, before, online, changed sysfs.CPUSet, also []int) []int {
	moved := changed.Union(online.Difference(before)).Union(before.Difference(online))
	stayed := online.Difference(moved)
	var out []int
	next := 0 // into also: every number before it is below the IRQ's
	for i := range prev {
		irq := &prev[i] // not copied: an IRQ is ~250 bytes, a machine has thousands
		for next < len(also) && also[next] < irq.IRQ {
			next++
		}
		if irq.Class == ClassPerCPU {
			continue
		}
		// Where is the effective affinity, or the mask without one: an
		// IRQ that is not per-CPU has no empty effective affinity.
		if irq.Where().Intersects(moved) || !irq.Affinity.Intersects(stayed) ||
			(next < len(also) && also[next] == irq.IRQ) {
			out = append(out, irq.IRQ)
		}
	}
	return out
}
