package sysfstest

// IRQ descriptors: their kinds, the IRQ spec and its constructors, and adding, freeing and firing
// IRQs at run time.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/irqshift/irqshift/sysfs"
)

// Kind is how the kernel treats an IRQ's affinity.
type Kind int

// The kinds.
const (
	// KindPerCPU is a GIC SGI, PPI or EPPI (or an IPI): banked per CPU,
	// effective_affinity_list empty, writes refused.
	KindPerCPU Kind = iota + 1
	// KindSPI is a wired GIC SPI: movable; the GIC delivers to the first
	// online CPU of its mask.
	KindSPI
	// KindMSI is an ITS MSI (LPI): movable; the ITS delivers to the
	// least-loaded online CPU of its mask.
	KindMSI
	// KindManaged is a managed MSI bound to its CPUs by the kernel
	// (multi-queue devices): writes refused, shut down with its CPU.
	KindManaged
	// KindNoAction is a descriptor without an action (no driver): writes
	// refused; not started, so CPU hotplug leaves it alone.
	KindNoAction
)

func (k Kind) String() string {
	switch k {
	case KindPerCPU:
		return "per-cpu"
	case KindSPI:
		return "spi"
	case KindMSI:
		return "msi"
	case KindManaged:
		return "managed"
	case KindNoAction:
		return "no-action"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Movable reports whether the kernel accepts affinity writes for the kind.
func (k Kind) Movable() bool { return k == KindSPI || k == KindMSI }

// IRQ describes one IRQ descriptor. Build one with PerCPU, SPI, MSI,
// Managed or NoAction and adjust it with the With… methods.
type IRQ struct {
	IRQ  int
	Kind Kind
	// Chip is the irqchip name as /proc/interrupts prints it.
	Chip string
	// HWIRQ is the hardware IRQ number; NoHWIRQ prints none (no domain).
	HWIRQ   uint64
	NoHWIRQ bool
	// Trigger is "Level" or "Edge".
	Trigger string
	Actions []string
	// Affinity is the initial smp_affinity_list; empty means every
	// possible CPU (the kernel's default), except for KindManaged, which
	// needs one.
	Affinity sysfs.CPUSet
	// Effective is the initial effective_affinity_list; empty means what
	// the chip picks from Affinity (per-CPU IRQs: always empty).
	Effective sysfs.CPUSet
	// Counts holds interrupts per CPU, including offline CPUs.
	Counts map[int]uint64
	// Node is /proc/irq/N/node (-1 for wired GIC interrupts): the node of
	// the IRQ's device, as the kernel keeps it in the descriptor. With
	// Config.Nodes set, an MSI of node N gets node N's CPUs as its default
	// mask (see Config.Nodes).
	Node int
	// DeviceNode is the numa_node of the IRQ's PCI device,
	// <sys>/bus/pci/devices/<BDF>/numa_node, for the IRQs whose Chip names
	// a per-device PCI MSI domain (sysfs.ChipPCIAddress:
	// "ITS-PCI-MSIX-0000:00:02.0", kernel 6.12). It is used only where
	// HasDeviceNode is set (WithDeviceNode); otherwise the device's file
	// says the Node of its lowest-numbered IRQ. The kernel's descriptors
	// take their node from the device, so the two differ only in tests of
	// readers that must look past a /proc/irq/N/node of -1. The device
	// files are written where Config.Nodes is set or an IRQ sets
	// DeviceNode, so that the trees of VM4 stay those of the capture,
	// which has no /sys/bus.
	DeviceNode    int
	HasDeviceNode bool
	// Hint is /proc/irq/N/affinity_hint.
	Hint sysfs.CPUSet
	// Hidden IRQs (IRQ_HIDDEN, the arm64 IPIs) have /proc/irq/N and
	// /sys/kernel/irq/N but never a /proc/interrupts row. Other IRQs get a
	// row when they have an action or a non-zero count, as
	// show_interrupts does.
	Hidden bool
	// FollowsHotplug models a driver with its own CPU hotplug callback
	// (virtio-net): after every offline or online it sets the hint and the
	// affinity of this IRQ to the online mask.
	FollowsHotplug bool
	// Device is the device the IRQ belongs to: a PCI address
	// ("0000:01:00.0") under <sys>/devices/pci<domain>:00, or any other
	// name for a platform device under <sys>/devices/platform; each with
	// its <sys>/bus/<bus>/devices symlink (see syncDevice). An MSI is
	// listed in the device's msi_irqs, a wired IRQ of a PCI device is its
	// irq file (INTx). Where the tree writes PCI device files (Config.Nodes
	// or a DeviceNode set), an IRQ whose Chip names a PCI device
	// (sysfs.ChipPCIAddress) belongs to it by default; elsewhere only
	// where set, so that the trees of VM4 keep no /sys/bus.
	Device string
	// Driver is the driver bound to Device (its driver symlink); "" leaves
	// the device without one unless another of its IRQs names it. IRQs of
	// one device must not name different drivers.
	Driver string
}

// PerCPU describes a per-CPU interrupt (GIC SGI/PPI).
func PerCPU(irq int, chip string, hwirq uint64, trigger string, actions ...string) IRQ {
	return IRQ{IRQ: irq, Kind: KindPerCPU, Chip: chip, HWIRQ: hwirq, Trigger: trigger, Actions: actions, Node: -1}
}

// SPI describes a wired GICv3 SPI.
func SPI(irq int, hwirq uint64, trigger string, actions ...string) IRQ {
	return IRQ{IRQ: irq, Kind: KindSPI, Chip: "GICv3", HWIRQ: hwirq, Trigger: trigger, Actions: actions, Node: -1}
}

// MSI describes an edge-triggered ITS MSI.
func MSI(irq int, chip string, hwirq uint64, actions ...string) IRQ {
	return IRQ{IRQ: irq, Kind: KindMSI, Chip: chip, HWIRQ: hwirq, Trigger: "Edge", Actions: actions, Node: 0}
}

// Managed describes a managed ITS MSI bound to cpu (one queue of a
// multi-queue device).
func Managed(irq int, chip string, hwirq uint64, cpu int, actions ...string) IRQ {
	return IRQ{IRQ: irq, Kind: KindManaged, Chip: chip, HWIRQ: hwirq, Trigger: "Edge", Actions: actions,
		Node: 0, Affinity: sysfs.NewCPUSet(cpu)}
}

// NoAction describes a descriptor that no driver handles. Give it a count
// (WithCounts) to have it listed in /proc/interrupts.
func NoAction(irq int, chip string, hwirq uint64, trigger string) IRQ {
	return IRQ{IRQ: irq, Kind: KindNoAction, Chip: chip, HWIRQ: hwirq, Trigger: trigger, Node: -1}
}

// WithAffinity returns q with the initial mask cpus.
func (q IRQ) WithAffinity(cpus ...int) IRQ { q.Affinity = sysfs.NewCPUSet(cpus...); return q }

// WithEffective returns q with the initial effective CPUs.
func (q IRQ) WithEffective(cpus ...int) IRQ { q.Effective = sysfs.NewCPUSet(cpus...); return q }

// WithCounts returns q with counts[i] interrupts on CPU i.
func (q IRQ) WithCounts(counts ...uint64) IRQ {
	q.Counts = make(map[int]uint64, len(counts))
	for cpu, n := range counts {
		q.Counts[cpu] = n
	}
	return q
}

// WithNode returns q with /proc/irq/N/node set to node.
func (q IRQ) WithNode(node int) IRQ { q.Node = node; return q }

// WithDeviceNode returns q with its PCI device's numa_node set to node
// (see IRQ.DeviceNode); /proc/irq/N/node stays Node.
func (q IRQ) WithDeviceNode(node int) IRQ { q.DeviceNode, q.HasDeviceNode = node, true; return q }

// WithHint returns q with the affinity hint cpus.
func (q IRQ) WithHint(cpus ...int) IRQ { q.Hint = sysfs.NewCPUSet(cpus...); return q }

// Hide returns q hidden from /proc/interrupts (IRQ_HIDDEN).
func (q IRQ) Hide() IRQ { q.Hidden = true; return q }

// FollowingHotplug returns q with FollowsHotplug set.
func (q IRQ) FollowingHotplug() IRQ { q.FollowsHotplug = true; return q }

// WithDevice returns q belonging to the device name (a PCI address or a
// platform device's name) with driver bound ("" for none).
func (q IRQ) WithDevice(name, driver string) IRQ { q.Device, q.Driver = name, driver; return q }

// irqState is an IRQ and what changed since: Affinity, Effective, Hint and
// Counts hold the current state.
type irqState struct {
	IRQ
	removed bool
}

// newState checks spec and makes its descriptor, not yet placed.
func (s *Sim) newState(spec IRQ) (*irqState, error) {
	possible := upTo(s.cfg.Possible)
	if spec.IRQ <= 0 {
		return nil, fmt.Errorf("IRQ number %d, want > 0", spec.IRQ)
	}
	if spec.Kind < KindPerCPU || spec.Kind > KindNoAction {
		return nil, fmt.Errorf("IRQ %d: no Kind", spec.IRQ)
	}
	st := &irqState{IRQ: spec}
	st.Actions = slices.Clone(spec.Actions)
	st.Counts = map[int]uint64{}
	for cpu, n := range spec.Counts {
		if !possible.Contains(cpu) {
			return nil, fmt.Errorf("IRQ %d: count for impossible CPU %d", spec.IRQ, cpu)
		}
		st.Counts[cpu] = n
	}
	if st.Affinity.IsEmpty() {
		if spec.Kind == KindManaged {
			return nil, fmt.Errorf("IRQ %d: a managed IRQ needs its CPUs", spec.IRQ)
		}
		st.Affinity = possible
	}
	st.Affinity = st.Affinity.Intersect(possible)
	if st.Affinity.IsEmpty() {
		return nil, fmt.Errorf("IRQ %d: affinity outside the possible CPUs", spec.IRQ)
	}
	if spec.Affinity.IsEmpty() && spec.Kind == KindMSI && !spec.FollowsHotplug {
		if local := s.nodeCPUs(spec.Node).Intersect(possible); !local.Intersect(s.online).IsEmpty() {
			st.Affinity = local
		}
	}
	return st, nil
}

// AddIRQ allocates a new descriptor at run time, as a driver loaded after
// boot does: it gets /proc/irq/N, /sys/kernel/irq/N and (with an action)
// a /proc/interrupts row, and is placed as at boot. The number must be
// free (a removed IRQ's number may be reused). A PCI MSI's device node is
// only the IRQ's own (HasDeviceNode is not modelled here). An IRQ of a
// device (IRQ.Device) joins its msi_irqs, or its irq file if wired; to
// bind a driver with all its IRQs at once, use BindDevice.
func (s *Sim) AddIRQ(spec IRQ) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.addIRQ(spec)
	if err != nil {
		return err
	}
	if err := s.syncDeviceOf(st); err != nil {
		return err
	}
	return s.syncInterrupts()
}

// addIRQ is AddIRQ but for the device's files and /proc/interrupts, with
// s.mu held.
func (s *Sim) addIRQ(spec IRQ) (*irqState, error) {
	if old, ok := s.irqs[spec.IRQ]; ok && !old.removed {
		return nil, fmt.Errorf("IRQ %d exists", spec.IRQ)
	}
	st, err := s.newState(spec)
	if err != nil {
		return nil, err
	}
	s.defaultDevice(st)
	if err := s.attach(st); err != nil {
		return nil, err
	}
	if _, reused := s.irqs[spec.IRQ]; !reused {
		s.order = append(s.order, spec.IRQ)
		slices.Sort(s.order)
	}
	s.irqs[spec.IRQ] = st
	s.writeLoads = nil
	s.loads().placeNew(st, s.online)
	return st, s.syncIRQ(st)
}

// RemoveIRQ frees irq: its /proc/irq/N and /sys/kernel/irq/N go away and
// /proc/interrupts no longer lists it (nor its device's msi_irqs).
func (s *Sim) RemoveIRQ(irq int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.irqs[irq]
	if st == nil || st.removed {
		return fmt.Errorf("IRQ %d does not exist", irq)
	}
	if err := s.freeIRQ(st); err != nil {
		return err
	}
	if err := s.syncDeviceOf(st); err != nil {
		return err
	}
	return s.syncInterrupts()
}

// freeIRQ is RemoveIRQ but for the device's files and /proc/interrupts,
// with s.mu held.
func (s *Sim) freeIRQ(st *irqState) error {
	st.removed = true
	s.writeLoads = nil
	irq := st.IRQ.IRQ
	for _, rel := range []string{filepath.Join("proc", "irq", strconv.Itoa(irq)), filepath.Join("sys", "kernel", "irq", strconv.Itoa(irq))} {
		if err := os.RemoveAll(filepath.Join(s.root, rel)); err != nil {
			return err
		}
		s.forget(rel)
	}
	return nil
}

// AddCounts delivers n interrupts of irq: on its effective CPU, or on every
// online CPU for a per-CPU IRQ. A shut-down IRQ (effective CPU offline)
// cannot fire.
func (s *Sim) AddCounts(irq int, n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.irqs[irq]
	if st == nil || st.removed {
		return fmt.Errorf("IRQ %d does not exist", irq)
	}
	if st.Kind == KindPerCPU {
		for _, cpu := range s.online.CPUs() {
			st.Counts[cpu] += n
		}
	} else {
		cpu := st.Effective.First()
		if !s.online.Contains(cpu) {
			return fmt.Errorf("IRQ %d is shut down (effective CPU %s is offline)", irq, st.Effective)
		}
		st.Counts[cpu] += n
	}
	if err := s.syncIRQ(st); err != nil {
		return err
	}
	return s.syncInterrupts()
}
