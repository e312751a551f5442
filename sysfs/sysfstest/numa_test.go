package sysfstest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// numa8Local are NUMA8's unmanaged PCI MSIs that take node 1's default
// mask: the config vectors, virtio-rng's input and the four extra rngs.
var numa8Local = []int{20, 21, 23, 28, 31, 32, 33, 34}

// TestNUMA8 is the DT-booted 6.12 VM with its PCI bridge on node 1
// (docs/KERNELS.md, "NUMA: a device's node and the kernel's default
// masks", shown by TestNUMAVMLocality in tests/vm/numa_test.go): node-local
// default masks 4-7, least-loaded within them, virtio-net on 0-7, SPIs on
// node -1 and CPU0.
func TestNUMA8(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			s := sysfstest.New(t, sysfstest.NUMA8(v))
			snap := snapshot(t, s)
			for cpu := range 8 {
				if want := cpu / 4; snap.CPUs.Node[cpu] != want {
					t.Errorf("CPU %d on node %d, want %d", cpu, snap.CPUs.Node[cpu], want)
				}
			}
			perCPU := map[int]int{}
			for _, irq := range numa8Local {
				aff := snap.Affinity[irq]
				if s.Kind(irq) != sysfstest.KindMSI || !aff.Affinity.Equal(cpus("4-7")) ||
					aff.Effective.Len() != 1 || !aff.Effective.IsSubsetOf(cpus("4-7")) {
					t.Errorf("IRQ %d (%s): mask %s effective %s, want 4-7 and one CPU of them", irq, s.Kind(irq), aff.Affinity, aff.Effective)
				}
				perCPU[aff.Effective.First()]++
			}
			if want := map[int]int{4: 2, 5: 2, 6: 2, 7: 2}; !mapsEqual(perCPU, want) {
				t.Errorf("node-1 MSIs per CPU = %v, want %v (least loaded)", perCPU, want)
			}
			for irq, want := range map[int]string{29: "0", 30: "1"} {
				aff := snap.Affinity[irq]
				if !aff.Affinity.Equal(cpus("0-7")) || aff.Effective.String() != want {
					t.Errorf("virtio-net IRQ %d: mask %s effective %s, want 0-7 and %s", irq, aff.Affinity, aff.Effective, want)
				}
				if _, hint := procIRQ(t, s.ProcDir(), irq); !hint.Equal(cpus("0-7")) {
					t.Errorf("virtio-net IRQ %d: hint %s, want 0-7", irq, hint)
				}
			}
			for irq, want := range map[int]string{24: "0-1", 25: "2-3", 26: "4-5", 27: "6-7"} {
				if got := snap.Affinity[irq].Affinity.String(); got != want || s.Kind(irq) != sysfstest.KindManaged {
					t.Errorf("managed IRQ %d: mask %s, want %s", irq, got, want)
				}
			}
			spis := []int{13, 16, 22}
			if v == sysfstest.Kernel612 {
				spis = []int{13, 18, 22}
			}
			for _, irq := range spis {
				if node, ok := snap.IRQNodes[irq]; ok || s.Kind(irq) != sysfstest.KindSPI {
					t.Errorf("SPI %d (%s): node %d, want none", irq, s.Kind(irq), node)
				}
				if e := snap.Affinity[irq].Effective; e.String() != "0" {
					t.Errorf("SPI %d on %s, want CPU0", irq, e)
				}
			}
			for irq, aff := range snap.Affinity {
				k := s.Kind(irq)
				if k != sysfstest.KindMSI && k != sysfstest.KindManaged {
					continue
				}
				if node, ok := snap.IRQNodes[irq]; !ok || node != 1 {
					t.Errorf("PCI IRQ %d (%s, %s): node %d, %v; want 1", irq, k, aff.Affinity, node, ok)
				}
			}
			pci, _ := filepath.Glob(filepath.Join(s.SysDir(), "bus", "pci", "devices", "*", "numa_node"))
			if want := map[sysfstest.Version]int{sysfstest.Kernel61: 0, sysfstest.Kernel612: 7}[v]; len(pci) != want {
				t.Errorf("%d PCI devices with numa_node, want %d: %v", len(pci), want, pci)
			}
			for _, path := range pci {
				if data, err := os.ReadFile(path); err != nil || string(data) != "1\n" {
					t.Errorf("%s = %q, %v; want 1", path, data, err)
				}
			}
		})
	}
}

// TestNUMA8NodeOffline: with all of node 1 offline its MSIs break their
// affinity like any other (mask = the online CPUs) and do not come back.
func TestNUMA8NodeOffline(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			s := sysfstest.New(t, sysfstest.NUMA8(v))
			for cpu := 4; cpu < 8; cpu++ {
				if err := s.SetCPUOnline(cpu, false); err != nil {
					t.Fatal(err)
				}
			}
			snap := snapshot(t, s)
			for _, irq := range numa8Local {
				aff := snap.Affinity[irq]
				if !aff.Affinity.Equal(cpus("0-3")) || aff.Effective.Len() != 1 || !aff.Effective.IsSubsetOf(cpus("0-3")) {
					t.Errorf("IRQ %d: mask %s effective %s, want 0-3 and one CPU of them", irq, aff.Affinity, aff.Effective)
				}
				if snap.IRQNodes[irq] != 1 {
					t.Errorf("IRQ %d: node %d, want still 1 (the device did not move)", irq, snap.IRQNodes[irq])
				}
			}
			// Managed queues of node 1's CPUs moved within their masks
			// (4-5, 6-7) and were shut down in place with the last.
			for irq, want := range map[int]string{26: "5", 27: "7"} {
				if _, eff, _ := s.State(irq); eff.String() != want {
					t.Errorf("managed IRQ %d effective %s, want %s (shut down)", irq, eff, want)
				}
			}
			for cpu := 4; cpu < 8; cpu++ {
				if err := s.SetCPUOnline(cpu, true); err != nil {
					t.Fatal(err)
				}
			}
			for _, irq := range numa8Local {
				if aff, eff, _ := s.State(irq); !aff.Equal(cpus("0-3")) || !eff.IsSubsetOf(cpus("0-3")) {
					t.Errorf("IRQ %d after online: mask %s effective %s, want still on 0-3", irq, aff, eff)
				}
			}
			// Offlining part of node 1 only moves within the mask.
			s = sysfstest.New(t, sysfstest.NUMA8(v))
			before := placements(s, numa8Local...)
			if err := s.SetCPUOnline(4, false); err != nil {
				t.Fatal(err)
			}
			for _, irq := range numa8Local {
				aff, eff, _ := s.State(irq)
				if !aff.Equal(cpus("4-7")) || !eff.IsSubsetOf(cpus("5-7")) {
					t.Errorf("IRQ %d after CPU4 offline: mask %s effective %s, want 4-7 on 5-7", irq, aff, eff)
				}
				if b := before[irq]; b.effective != "4" && eff.String() != b.effective {
					t.Errorf("IRQ %d moved from %s to %s, though not on CPU4", irq, b.effective, eff)
				}
			}
		})
	}
}

// TestDeviceNodeFallback: /proc/irq/N/node -1 but the PCI device on node 1
// (the 6.12 DT case of a reader looking past -1): the snapshot finds 1.
func TestDeviceNodeFallback(t *testing.T) {
	const chip = "ITS-PCI-MSIX-0000:00:02.0"
	cfg := sysfstest.Config{Kernel: sysfstest.Kernel612, Possible: 8, Nodes: []sysfs.CPUSet{cpus("0-3"), cpus("4-7")},
		IRQs: []sysfstest.IRQ{
			sysfstest.SPI(13, 33, "Level", "uart-pl011"),
			sysfstest.MSI(20, chip, 0, "virtio1-config").WithNode(-1).WithDeviceNode(1),
			sysfstest.MSI(21, chip, 1, "virtio1-input").WithNode(-1),
			sysfstest.MSI(22, "ITS-PCI-MSIX-0000:00:03.0", 0, "x").WithNode(0),
			sysfstest.MSI(23, "ITS-MSI", 16384, "y").WithNode(-1),
			sysfstest.MSI(24, "ITS-PCI-MSIX-0000:00:04.0", 0, "z").WithNode(1).WithAffinity(0),
		}}
	s := sysfstest.New(t, cfg)
	if got := readTree(t, s, "proc/irq/20/node"); got != "-1\n" {
		t.Errorf("/proc/irq/20/node = %q, want -1", got)
	}
	for bdf, want := range map[string]string{"0000:00:02.0": "1\n", "0000:00:03.0": "0\n", "0000:00:04.0": "1\n"} {
		if got := readTree(t, s, "sys/bus/pci/devices/"+bdf+"/numa_node"); got != want {
			t.Errorf("%s numa_node = %q, want %q", bdf, got, want)
		}
	}
	snap := snapshot(t, s)
	if want := map[int]int{20: 1, 21: 1, 22: 0, 24: 1}; !mapsEqual(snap.IRQNodes, want) {
		t.Errorf("IRQNodes = %v, want %v", snap.IRQNodes, want)
	}
	// The kernel's default mask follows the descriptor's node: -1 keeps
	// every CPU; node 0 gives 0-3; an explicit mask stays.
	for irq, want := range map[int]string{13: "0-7", 20: "0-7", 21: "0-7", 22: "0-3", 23: "0-7", 24: "0"} {
		if aff, _, _ := s.State(irq); aff.String() != want {
			t.Errorf("IRQ %d mask %s, want %s", irq, aff, want)
		}
	}

	// Two IRQs of one device that disagree on its node are a config error.
	bad := cfg
	bad.IRQs = append(bad.IRQs[:len(bad.IRQs):len(bad.IRQs)], sysfstest.MSI(25, chip, 2, "w").WithDeviceNode(0))
	if _, err := sysfstest.Build(sysfstest.TempDir(t), bad); err == nil || !strings.Contains(err.Error(), "0000:00:02.0") {
		t.Errorf("conflicting device nodes: %v", err)
	}
	// Without Nodes and DeviceNode no PCI device is written (VM4's trees
	// stay as captured).
	vm := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	if _, err := os.Stat(filepath.Join(vm.SysDir(), "bus")); !os.IsNotExist(err) {
		t.Errorf("VM4 has /sys/bus: %v", err)
	}
}

// TestNodeLocalNeedsOnlineCPUs: an MSI of a node whose CPUs are all offline
// at boot keeps the default mask (the kernel's node mask must intersect
// the online CPUs).
func TestNodeLocalNeedsOnlineCPUs(t *testing.T) {
	s := sysfstest.New(t, sysfstest.Config{Possible: 8, Offline: cpus("4-7"),
		Nodes: []sysfs.CPUSet{cpus("0-3"), cpus("4-7")},
		IRQs:  []sysfstest.IRQ{sysfstest.MSI(20, "ITS-MSI", 8192, "a").WithNode(1)}})
	if aff, eff, _ := s.State(20); !aff.Equal(cpus("0-7")) || !eff.IsSubsetOf(cpus("0-3")) {
		t.Errorf("mask %s effective %s, want 0-7 on 0-3", aff, eff)
	}
}

// TestBig: the benchmark machine is what it claims: MSIs masked to their
// device's node, least-loaded there, nodes in the snapshot.
func TestBig(t *testing.T) {
	const ncpu, nodes, nirq = 64, 4, 1024
	s := sysfstest.New(t, sysfstest.Big(ncpu, nodes, nirq))
	snap := snapshot(t, s)
	if len(snap.Affinity) != nirq || len(snap.Interrupts.IRQs) != nirq || len(snap.Vanished) != 0 {
		t.Fatalf("%d rows, %d affinities, want %d", len(snap.Interrupts.IRQs), len(snap.Affinity), nirq)
	}
	if len(snap.CPUs.Node) != ncpu || snap.CPUs.Node[ncpu-1] != nodes-1 || snap.CPUs.Node[16] != 1 {
		t.Errorf("CPU nodes %v", snap.CPUs.Node)
	}
	kinds := map[sysfstest.Kind]int{}
	load := map[int]int{}
	for _, row := range snap.Interrupts.IRQs {
		irq, k := row.IRQ, s.Kind(row.IRQ)
		kinds[k]++
		aff := snap.Affinity[irq]
		node, ok := snap.IRQNodes[irq]
		switch k {
		case sysfstest.KindMSI:
			local := sysfs.CPUSet{}
			for cpu := node * ncpu / nodes; cpu < (node+1)*ncpu/nodes; cpu++ {
				local = local.With(cpu)
			}
			if !ok || !aff.Affinity.Equal(local) || !aff.Effective.IsSubsetOf(local) || aff.Effective.Len() != 1 {
				t.Fatalf("MSI %d (%s): node %d, %v, mask %s effective %s", irq, row.Chip, node, ok, aff.Affinity, aff.Effective)
			}
			load[aff.Effective.First()]++
		case sysfstest.KindManaged:
			if !ok || aff.Affinity.Len() != 1 || !aff.ReadOnly {
				t.Errorf("managed %d: node %v, mask %s, read-only %v", irq, ok, aff.Affinity, aff.ReadOnly)
			}
		case sysfstest.KindSPI:
			if ok || aff.Effective.String() != "0" {
				t.Errorf("SPI %d: node %d, %v, effective %s", irq, node, ok, aff.Effective)
			}
		}
	}
	if kinds[sysfstest.KindSPI] != nirq/16 || kinds[sysfstest.KindManaged] == 0 || kinds[sysfstest.KindPerCPU] != 2 {
		t.Errorf("kinds %v", kinds)
	}
	for node := range nodes {
		lo, hi := nirq, 0
		for cpu := node * ncpu / nodes; cpu < (node+1)*ncpu/nodes; cpu++ {
			lo, hi = min(lo, load[cpu]), max(hi, load[cpu])
		}
		if hi-lo > 1 || hi == 0 {
			t.Errorf("node %d: MSIs per CPU from %d to %d, want least-loaded placement within the node", node, lo, hi)
		}
	}
	if err := s.SetCPUOnline(5, false); err != nil {
		t.Fatal(err)
	}
	for _, irq := range s.IRQs() {
		if s.Kind(irq) == sysfstest.KindMSI {
			if _, eff, _ := s.State(irq); eff.Contains(5) {
				t.Errorf("MSI %d still on offline CPU 5", irq)
			}
		}
	}
}

// BenchmarkBuildBig measures building the largest tree benchmarks use.
func BenchmarkBuildBig(b *testing.B) {
	for _, size := range []struct{ cpus, nodes, irqs int }{{64, 2, 1024}, {256, 4, 4096}} {
		b.Run(fmt.Sprintf("%dx%d", size.cpus, size.irqs), func(b *testing.B) {
			cfg := sysfstest.Big(size.cpus, size.nodes, size.irqs)
			for b.Loop() {
				dir, err := os.MkdirTemp(filepath.Dir(sysfstest.TempDir(b)), "big-")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sysfstest.Build(dir, cfg); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
