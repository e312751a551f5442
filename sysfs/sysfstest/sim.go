package sysfstest

// The simulated kernel: the machine (Config), the Sim, building it, and what it says of its state.
// The IRQ descriptors are in sim_irq.go, affinity writes in sim_write.go, the chips' choice of CPU
// in sim_place.go, CPU hotplug in sim_hotplug.go, and the tree's files in files.go.

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
	// devices are the devices of IRQ.Device, by name (sim_device.go).
	devices map[string]*device
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
	// rates are the IRQs given a rate (SetRate), fired by Advance.
	rates map[int]*rate
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
	if err := s.attachDevices(); err != nil {
		return nil, err
	}
	// Initial placement in IRQ order, as drivers probe.
	loads := s.loads()
	for _, n := range s.order {
		loads.placeNew(s.irqs[n], s.online)
	}
	if s.fs, err = s.mkdirs(); err != nil {
		return nil, err
	}
	// The devices first: numa_node is written through their bus's symlinks.
	if err := s.syncDevices(); err != nil {
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

// ReadEffective reads effective_affinity_list from the tree, as the
// applier does on the kernel.
func (s *Sim) ReadEffective(irq int) (sysfs.CPUSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.ReadEffective(irq)
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
