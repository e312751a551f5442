package sysfstest

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

// Version selects the kernel behaviour that differs between releases.
type Version int

const (
	// Kernel61 refuses writes with EIO and creates every smp_affinity and
	// smp_affinity_list 0644 (Debian 6.1.0, measured).
	Kernel61 Version = iota
	// Kernel612 refuses writes with EPERM and creates smp_affinity and
	// smp_affinity_list of managed and per-CPU IRQs 0444 (Debian 6.12.117,
	// measured). It also prints eight IPI rows instead of seven.
	Kernel612
)

func (v Version) String() string {
	if v == Kernel612 {
		return "6.12"
	}
	return "6.1"
}

// refuseErrno is the errno of a write the kernel refuses outright.
func (v Version) refuseErrno() syscall.Errno {
	if v == Kernel612 {
		return syscall.EPERM
	}
	return syscall.EIO
}

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

// Config describes a machine.
type Config struct {
	Kernel Version
	// Possible is nr_cpu_ids: CPUs 0…Possible-1 are possible.
	Possible int
	// Present CPUs are 0…Present-1; zero means Possible.
	Present int
	// Offline holds present CPUs that start offline.
	Offline sysfs.CPUSet
	// NotHotpluggable holds the CPUs without a cpuN/online file. On arm64
	// VMs every CPU, cpu0 included, has one, so the zero value is right
	// there; x86 boxes often lack cpu0/online.
	NotHotpluggable sysfs.CPUSet
	// Isolated (isolcpus=) and NohzFull (nohz_full=).
	Isolated sysfs.CPUSet
	NohzFull sysfs.CPUSet
	// Nodes[i] is the cpulist of NUMA node i. Nil means one node0 with
	// every present CPU; NoNUMA writes no node directory at all.
	//
	// Where Nodes is set (and NoNUMA is not), the kernel's node-local
	// default masks are modelled (irq_setup_affinity): an MSI without an
	// initial Affinity whose Node n has online CPUs gets node n's CPUs as
	// its mask, and the ITS the least-loaded of them as effective CPU. An
	// MSI that FollowsHotplug keeps the driver's mask (virtio-net sets
	// every CPU), and managed IRQs keep theirs. When every CPU of its mask
	// goes offline an MSI leaves the node: its mask becomes the online
	// CPUs, as for any broken affinity, and nothing moves back on online.
	Nodes  []sysfs.CPUSet
	NoNUMA bool
	IRQs   []IRQ
}

// Write is one write the simulator handled.
type Write struct {
	IRQ  int
	CPUs sysfs.CPUSet
	// Online is the online mask when the kernel handled the write (after
	// any hook ran).
	Online sysfs.CPUSet
	// Errno is 0 when the kernel accepted the write.
	Errno syscall.Errno
	Err   error
}

// AnyIRQ makes a hook or fault apply to the next write of any IRQ.
const AnyIRQ = -1

// Always makes FailWrites fail every write.
const Always = -1

type fault struct {
	errno syscall.Errno
	left  int // Always for ever
}

// irqState is an IRQ and what changed since: Affinity, Effective, Hint and
// Counts hold the current state.
type irqState struct {
	IRQ
	removed bool
}

// Sim is the simulated kernel. Its methods are safe for concurrent use, but
// the tree is rewritten in place, so readers racing a change may see a
// half-written file: tests drive it from one goroutine.
type Sim struct {
	mu sync.Mutex
	// writeLoads is the load table of WriteAffinity, kept up to date by
	// it and dropped by every other change of the IRQs.
	writeLoads *loadTable
	root       string
	fs         sysfs.FS
	kernel     Version
	cfg        Config
	present    sysfs.CPUSet
	online     sysfs.CPUSet
	hotplug    sysfs.CPUSet
	irqs       map[int]*irqState
	order      []int
	faults     map[int]*fault
	hooks      map[int][]func(*Sim) error
	pciNode    map[string]int // BDF → numa_node of the PCI devices
	// files and dirs are what writeFile made: the mode and content hash
	// of each file, by path relative to root, and the directories. fmu
	// guards them, as syncAll writes IRQs from several goroutines.
	fmu    sync.Mutex
	files  map[string]fileState
	dirs   map[string]bool
	seed   maphash.Seed
	umask  os.FileMode
	asRoot bool // root opens read-only files for writing
	writes []Write
	denied bool // DenyWrites: a process without root
}

// New builds the tree of cfg in TempDir(t) and fails the test on error.
func New(t testing.TB, cfg Config) *Sim {
	t.Helper()
	s, err := Build(TempDir(t), cfg)
	if err != nil {
		t.Fatalf("sysfstest: %v", err)
	}
	return s
}

// TempDir returns a new directory removed when the test ends: on /dev/shm
// where that is a writable directory, else t.TempDir(). A tree is hundreds
// of small files, and creating them on a disk-backed ext4 took 0.35 s per
// tree on the CI machine against 10 ms on tmpfs.
func TempDir(t testing.TB) string {
	t.Helper()
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "sysfstest-"); err == nil {
			t.Cleanup(func() {
				if err := os.RemoveAll(dir); err != nil {
					t.Errorf("sysfstest: removing %s: %v", dir, err)
				}
			})
			return dir
		}
	}
	return t.TempDir()
}

// Build writes the tree of cfg under root (root/proc and root/sys, created
// if needed) and returns the simulator that owns it.
func Build(root string, cfg Config) (*Sim, error) {
	if cfg.Possible < 1 || cfg.Possible > 4096 {
		return nil, fmt.Errorf("config: Possible = %d, want 1…4096", cfg.Possible)
	}
	if cfg.Present == 0 {
		cfg.Present = cfg.Possible
	}
	if cfg.Present > cfg.Possible {
		return nil, fmt.Errorf("config: Present = %d exceeds Possible = %d", cfg.Present, cfg.Possible)
	}
	s := &Sim{
		root:    root,
		kernel:  cfg.Kernel,
		cfg:     cfg,
		present: upTo(cfg.Present),
		irqs:    map[int]*irqState{},
		faults:  map[int]*fault{},
		hooks:   map[int][]func(*Sim) error{},
	}
	if !cfg.Offline.IsSubsetOf(s.present) {
		return nil, fmt.Errorf("offline CPUs %s are not present (present: %s)", cfg.Offline, s.present)
	}
	s.online = s.present.Difference(cfg.Offline)
	if s.online.IsEmpty() {
		return nil, errors.New("no CPU online")
	}
	s.hotplug = s.present.Difference(cfg.NotHotpluggable)
	if !cfg.NotHotpluggable.Difference(s.hotplug).Intersect(cfg.Offline).IsEmpty() {
		return nil, errors.New("a CPU without cpuN/online cannot start offline")
	}
	specs := slices.Clone(cfg.IRQs)
	slices.SortFunc(specs, func(a, b IRQ) int { return a.IRQ - b.IRQ })
	for _, spec := range specs {
		if _, dup := s.irqs[spec.IRQ]; dup {
			return nil, fmt.Errorf("IRQ %d listed twice", spec.IRQ)
		}
		st, err := s.newState(spec)
		if err != nil {
			return nil, err
		}
		s.irqs[spec.IRQ] = st
		s.order = append(s.order, spec.IRQ)
	}
	var err error
	if s.pciNode, err = pciNodes(s.order, s.irqs); err != nil {
		return nil, err
	}
	if len(cfg.Nodes) == 0 || cfg.NoNUMA {
		explicit := false
		for _, st := range s.irqs {
			explicit = explicit || st.HasDeviceNode
		}
		if !explicit {
			s.pciNode = nil // no PCI device files: the trees of VM4 stay as captured
		}
	}
	// Initial placement in IRQ order, as drivers probe.
	loads := s.loads()
	for _, n := range s.order {
		loads.placeNew(s.irqs[n], s.online)
	}
	if s.fs, err = s.mkdirs(); err != nil {
		return nil, err
	}
	if err := s.syncPCI(); err != nil {
		return nil, err
	}
	if err := s.syncAll(); err != nil {
		return nil, err
	}
	return s, nil
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
// only the IRQ's own (HasDeviceNode is not modelled here).
func (s *Sim) AddIRQ(spec IRQ) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.irqs[spec.IRQ]; ok && !old.removed {
		return fmt.Errorf("IRQ %d exists", spec.IRQ)
	}
	st, err := s.newState(spec)
	if err != nil {
		return err
	}
	if _, reused := s.irqs[spec.IRQ]; !reused {
		s.order = append(s.order, spec.IRQ)
		slices.Sort(s.order)
	}
	s.irqs[spec.IRQ] = st
	s.writeLoads = nil
	s.loads().placeNew(st, s.online)
	if err := s.syncIRQ(st); err != nil {
		return err
	}
	return s.syncInterrupts()
}

func upTo(n int) sysfs.CPUSet {
	if n <= 0 {
		return sysfs.CPUSet{}
	}
	set, err := sysfs.ParseCPUList("0-" + strconv.Itoa(n-1))
	if err != nil {
		panic(err) // n ≤ 4096, checked by Build
	}
	return set
}

// nodeCPUs is the cpulist of node n where Config.Nodes models NUMA, else
// empty (no node-local masks).
func (s *Sim) nodeCPUs(n int) sysfs.CPUSet {
	if s.cfg.NoNUMA || n < 0 || n >= len(s.cfg.Nodes) {
		return sysfs.CPUSet{}
	}
	return s.cfg.Nodes[n]
}

// pciNodes gives the numa_node of each PCI device that the chip names of
// irqs (in order) name: the DeviceNode of its IRQs that set one (they must
// agree), else the Node of its lowest-numbered IRQ.
func pciNodes(order []int, irqs map[int]*irqState) (map[string]int, error) {
	nodes := map[string]int{}
	explicit := map[string]int{} // BDF → IRQ that set its node
	for _, n := range order {
		st := irqs[n]
		bdf, ok := sysfs.ChipPCIAddress(st.Chip)
		if !ok {
			continue
		}
		if first, seen := explicit[bdf]; st.HasDeviceNode && seen && nodes[bdf] != st.DeviceNode {
			return nil, fmt.Errorf("IRQ %d: PCI device %s on node %d, but IRQ %d puts it on node %d",
				n, bdf, st.DeviceNode, first, nodes[bdf])
		}
		switch _, seen := nodes[bdf]; {
		case st.HasDeviceNode:
			if _, set := explicit[bdf]; !set {
				explicit[bdf] = n
				nodes[bdf] = st.DeviceNode
			}
		case !seen:
			nodes[bdf] = st.Node
		}
	}
	return nodes, nil
}

// Root is the directory holding proc/ and sys/.
func (s *Sim) Root() string { return s.root }

// ProcDir is the tree's /proc (for --proc).
func (s *Sim) ProcDir() string { return filepath.Join(s.root, "proc") }

// SysDir is the tree's /sys (for --sys).
func (s *Sim) SysDir() string { return filepath.Join(s.root, "sys") }

// FS is a sysfs.FS reading the tree.
func (s *Sim) FS() sysfs.FS { return s.fs }

// Version is the simulated kernel version.
func (s *Sim) Version() Version { return s.kernel }

// Online returns the CPUs online now.
func (s *Sim) Online() sysfs.CPUSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// IRQs returns the numbers of the IRQs that exist, ascending.
func (s *Sim) IRQs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, n := range s.order {
		if !s.irqs[n].removed {
			out = append(out, n)
		}
	}
	return out
}

// Followers returns the IRQs that exist and FollowsHotplug (whose driver
// rewrites their masks on every CPU offline and online), in order.
func (s *Sim) Followers() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.FollowsHotplug {
			out = append(out, n)
		}
	}
	return out
}

// Kind returns the kind of irq, or 0 when it does not exist.
func (s *Sim) Kind(irq int) Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.irqs[irq]; st != nil && !st.removed {
		return st.Kind
	}
	return 0
}

// State returns the affinity mask and effective CPUs of irq; ok is false
// when it does not exist.
func (s *Sim) State(irq int) (affinity, effective sysfs.CPUSet, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.irqs[irq]
	if st == nil || st.removed {
		return sysfs.CPUSet{}, sysfs.CPUSet{}, false
	}
	return st.Affinity, st.Effective, true
}

// Writes returns every write handled so far, in order.
func (s *Sim) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// FailWrites makes the next times writes of irq (AnyIRQ: of any IRQ) fail
// with errno before the kernel looks at them; times may be Always.
func (s *Sim) FailWrites(irq int, errno syscall.Errno, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[irq] = &fault{errno: errno, left: times}
}

// BeforeWrite runs fn once, at the next write of irq (AnyIRQ: of any IRQ),
// before the kernel handles that write. fn may call any method of s.
func (s *Sim) BeforeWrite(irq int, fn func(*Sim) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[irq] = append(s.hooks[irq], fn)
}

// OfflineAtWrite takes cpu offline at the moment irq is next written.
func (s *Sim) OfflineAtWrite(irq, cpu int) {
	s.BeforeWrite(irq, func(s *Sim) error { return s.SetCPUOnline(cpu, false) })
}

// RemoveAtWrite frees irq at the moment it is next written.
func (s *Sim) RemoveAtWrite(irq int) {
	s.BeforeWrite(irq, func(s *Sim) error { return s.RemoveIRQ(irq) })
}

// DenyWrites makes the simulator play a process without root from now on:
// the tree's files are root's, so opening smp_affinity_list or cpuN/online
// for writing fails with EACCES before the kernel sees anything.
// WriteAffinity then gives sysfs.ErrPermission (and logs the write with
// Errno EACCES, without running hooks or faults), SetCPUOnline too, and
// CheckWriteAccess says what sysfs.FS.CheckWriteAccess says to non-root.
// Reads still work, as /proc and /sys are world-readable. Use it to test
// that a non-root run learns nothing about the IRQs from its failures.
func (s *Sim) DenyWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = true
}

// CheckWriteAccess is sysfs.FS.CheckWriteAccess for the simulated
// process: nil, or after DenyWrites the error (wrapping
// sysfs.ErrPermission) that the real one gives to a non-root process,
// naming the smp_affinity_list of the lowest IRQ whose file has a write
// bit, or else the online file of the lowest hotpluggable CPU.
func (s *Sim) CheckWriteAccess() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.denied {
		return nil
	}
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && s.affinityMode(st)&0o222 != 0 {
			return sysfs.WriteAccessError(s.fs.AffinityListPath(n), syscall.EACCES)
		}
	}
	if cpu := s.hotplug.First(); cpu >= 0 {
		return sysfs.WriteAccessError(s.fs.CPUOnlinePath(cpu), syscall.EACCES)
	}
	return nil
}

// WriteAffinity writes cpus as /proc/irq/N/smp_affinity_list does on the
// kernel. Errors are sysfs.WriteError's: they wrap sysfs.ErrWrite, the
// class sysfs.ClassifyErrno gives and the errno (in an *os.PathError), as
// sysfs.FS.WriteAffinity's do.
func (s *Sim) WriteAffinity(irq int, cpus sysfs.CPUSet) error {
	if cpus.IsEmpty() {
		return fmt.Errorf("%w: IRQ %d: refusing to write an empty CPU list", sysfs.ErrWrite, irq)
	}
	if denied, err := s.denyWrite(irq, cpus); denied {
		return err
	}
	if err := s.runHooks(irq); err != nil {
		return fmt.Errorf("sysfstest: hook before writing IRQ %d: %w", irq, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errno, op, ioErr := s.write(irq, cpus)
	if ioErr != nil {
		return ioErr
	}
	return s.logWrite(irq, cpus, errno, op)
}

// denyWrite fails, after DenyWrites, the write of an IRQ that exists (of
// one that does not, open says ENOENT first) with EACCES at open.
func (s *Sim) denyWrite(irq int, cpus sysfs.CPUSet) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.irqs[irq]; !s.denied || st == nil || st.removed {
		return false, nil
	}
	return true, s.logWrite(irq, cpus, syscall.EACCES, "open")
}

// logWrite records a write that the system call op answered with errno
// (0: accepted) and returns its error. s.mu is held.
func (s *Sim) logWrite(irq int, cpus sysfs.CPUSet, errno syscall.Errno, op string) error {
	rec := Write{IRQ: irq, CPUs: cpus, Online: s.online, Errno: errno}
	if errno != 0 {
		rec.Err = sysfs.WriteError(irq, cpus, &os.PathError{Op: op, Path: s.fs.AffinityListPath(irq), Err: errno})
	}
	s.writes = append(s.writes, rec)
	return rec.Err
}

func (s *Sim) runHooks(irq int) error {
	s.mu.Lock()
	var fns []func(*Sim) error
	for _, key := range []int{irq, AnyIRQ} {
		if len(s.hooks[key]) > 0 {
			fns = append(fns, s.hooks[key][0])
			s.hooks[key] = s.hooks[key][1:]
		}
	}
	s.mu.Unlock()
	for _, fn := range fns {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// write is the kernel's write_irq_affinity. It returns the errno and the
// system call that failed, or an error of the simulator itself.
func (s *Sim) write(irq int, cpus sysfs.CPUSet) (syscall.Errno, string, error) {
	st := s.irqs[irq]
	if st == nil || st.removed {
		return syscall.ENOENT, "open", nil
	}
	for _, key := range []int{irq, AnyIRQ} {
		if f := s.faults[key]; f != nil && f.left != 0 {
			if f.left > 0 {
				f.left--
			}
			return f.errno, "write", nil
		}
	}
	if !st.Kind.Movable() {
		// irq_can_set_affinity_usr: per-CPU (IRQD_NO_BALANCING), managed,
		// and on the measured kernels descriptors without an action.
		return s.kernel.refuseErrno(), "write", nil
	}
	mask := cpus.Intersect(upTo(s.cfg.Possible))
	avail := mask.Intersect(s.online)
	if avail.IsEmpty() {
		return syscall.EINVAL, "write", nil
	}
	st.Affinity = mask
	// The table is kept between writes: rebuilt per write it made a
	// balancer's writes on a 4096-IRQ machine quadratic, the simulator's
	// cost and not the kernel's (its_select_cpu looks at the CPUs).
	if s.writeLoads == nil {
		s.writeLoads = s.loads()
	}
	s.writeLoads.place(st, s.writeLoads.pick(st, avail))
	return 0, "", s.syncIRQ(st)
}

// loadTable counts, per CPU, the existing MSIs (unmanaged and managed
// apart) whose effective CPUs hold it: what the ITS weighs when it picks.
// Building it once per operation and updating it as IRQs move keeps a
// placement of thousands of IRQs linear.
type loadTable struct {
	msi, managed []int
}

func (s *Sim) loads() *loadTable {
	l := &loadTable{msi: make([]int, s.cfg.Possible), managed: make([]int, s.cfg.Possible)}
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed {
			l.add(st, 1)
		}
	}
	return l
}

func (l *loadTable) of(k Kind) []int {
	switch k {
	case KindMSI:
		return l.msi
	case KindManaged:
		return l.managed
	}
	return nil
}

// add adds delta to the load of st's effective CPUs.
func (l *loadTable) add(st *irqState, delta int) {
	load := l.of(st.Kind)
	if load == nil {
		return
	}
	for cpu := st.Effective.First(); cpu >= 0 && cpu < len(load); cpu = st.Effective.Next(cpu) {
		load[cpu] += delta
	}
}

// placeNew places a descriptor as its driver's probe does: per-CPU IRQs
// nowhere, one with its effective CPUs given where they are, a managed one
// on the first CPU of its mask, the others where the chip picks among
// the online CPUs of their mask (all online CPUs when it has none).
func (l *loadTable) placeNew(st *irqState, online sysfs.CPUSet) {
	switch {
	case st.Kind == KindPerCPU:
		l.place(st, sysfs.CPUSet{})
	case !st.Effective.IsEmpty():
	case st.Kind == KindManaged:
		l.place(st, sysfs.NewCPUSet(st.Affinity.First()))
	default:
		avail := st.Affinity.Intersect(online)
		if avail.IsEmpty() {
			avail = online
		}
		l.place(st, l.pick(st, avail))
	}
}

// place sets st's effective CPUs to eff, keeping the table right.
func (l *loadTable) place(st *irqState, eff sysfs.CPUSet) {
	l.add(st, -1)
	st.Effective = eff
	l.add(st, 1)
}

// pick is the chip's choice of one CPU among avail (online, non-empty): the
// GIC takes the first (cpumask_any_and), the ITS the least loaded
// (its_select_cpu: fewest LPIs of the same managed-ness targeting it, the
// IRQ itself not counted), ties going to the lowest CPU.
func (l *loadTable) pick(st *irqState, avail sysfs.CPUSet) sysfs.CPUSet {
	load := l.of(st.Kind)
	if load == nil {
		return sysfs.NewCPUSet(avail.First())
	}
	best, bestLoad := -1, 0
	for cpu := avail.First(); cpu >= 0; cpu = avail.Next(cpu) {
		n := 0
		if cpu < len(load) {
			n = load[cpu]
		}
		if st.Effective.Contains(cpu) {
			n-- // the IRQ itself
		}
		if best < 0 || n < bestLoad {
			best, bestLoad = cpu, n
		}
	}
	return sysfs.NewCPUSet(best)
}

// ReadEffective reads effective_affinity_list from the tree, as the
// applier does on the kernel.
func (s *Sim) ReadEffective(irq int) (sysfs.CPUSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.ReadEffective(irq)
}

// OnlineCPUs reads /sys/devices/system/cpu/online from the tree.
func (s *Sim) OnlineCPUs() (sysfs.CPUSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.OnlineCPUs()
}

// SetCPUOnline does what writing 0 or 1 to cpuN/online does.
//
// Offline (kernel/irq/cpuhotplug.c, irq_migrate_all_off_this_cpu, in IRQ
// order): every started, movable IRQ effective on cpu moves to an online CPU
// of its mask, chosen by its chip; when its mask has no other online CPU the
// mask is overwritten with the online mask (the admin's pin is lost). A
// managed IRQ whose mask has no other online CPU is shut down in place: it
// keeps its affinity and effective CPU. Per-CPU and action-less IRQs are
// left alone. Online moves nothing back. After either, IRQs with
// FollowsHotplug get the online mask as hint and affinity, as virtio-net's
// own callback does. Errors are sysfs.CPUOnlineError's: ENOENT for a CPU
// without cpuN/online, EACCES (sysfs.ErrPermission) after DenyWrites,
// EBUSY for the last online CPU.
func (s *Sim) SetCPUOnline(cpu int, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.fs.CPUOnlinePath(cpu)
	switch {
	case !s.present.Contains(cpu), !s.hotplug.Contains(cpu):
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT})
	case s.denied:
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "open", Path: path, Err: syscall.EACCES})
	case online == s.online.Contains(cpu):
		return nil // the kernel accepts the write and does nothing
	case !online && s.online.Len() == 1:
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "write", Path: path, Err: syscall.EBUSY})
	}
	s.writeLoads = nil
	if online {
		s.online = s.online.With(cpu)
	} else {
		s.online = s.online.Without(cpu)
		loads := s.loads()
		for _, n := range s.order {
			st := s.irqs[n]
			if st.removed || st.Kind == KindPerCPU || st.Kind == KindNoAction || !st.Effective.Contains(cpu) {
				continue
			}
			avail := st.Affinity.Intersect(s.online)
			if avail.IsEmpty() {
				if st.Kind == KindManaged {
					continue // irq_shutdown_and_deactivate: stays as it was
				}
				st.Affinity = s.online
				avail = s.online
			}
			loads.place(st, loads.pick(st, avail))
		}
	}
	loads := s.loads()
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.FollowsHotplug {
			st.Hint, st.Affinity = s.online, s.online
			loads.place(st, loads.pick(st, s.online))
		}
	}
	return s.syncAll()
}

// RemoveIRQ frees irq: its /proc/irq/N and /sys/kernel/irq/N go away and
// /proc/interrupts no longer lists it.
func (s *Sim) RemoveIRQ(irq int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.irqs[irq]
	if st == nil || st.removed {
		return fmt.Errorf("IRQ %d does not exist", irq)
	}
	st.removed = true
	s.writeLoads = nil
	for _, rel := range []string{filepath.Join("proc", "irq", strconv.Itoa(irq)), filepath.Join("sys", "kernel", "irq", strconv.Itoa(irq))} {
		if err := os.RemoveAll(filepath.Join(s.root, rel)); err != nil {
			return err
		}
		s.forget(rel)
	}
	return s.syncInterrupts()
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

// ReadOnlyFiles lists, relative to Root and sorted, the files the simulated
// kernel creates without write permission (smp_affinity and
// smp_affinity_list of managed and per-CPU IRQs on 6.12). Git does not keep
// such modes; the e2e trees record them in a MODES file.
func (s *Sim) ReadOnlyFiles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.order {
		st := s.irqs[n]
		if st.removed || s.affinityMode(st) != 0o444 {
			continue
		}
		for _, name := range []string{"smp_affinity", "smp_affinity_list"} {
			out = append(out, filepath.ToSlash(filepath.Join("proc", "irq", fmt.Sprint(n), name)))
		}
	}
	slices.Sort(out)
	return out
}
