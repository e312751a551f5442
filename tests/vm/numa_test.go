//go:build vm

package vmtest

// NUMA-local placement (`--numa local`, irqshift's default) on a VM with two NUMA nodes whose PCI
// devices all sit on one of them: tests/vm/run.sh -c 8 --numa 2 --pci-node 1 --extra-rng 4
// (`make vm-test-numa`; suite.sh's configuration "6.12 GICv3 8 vCPUs 2 nodes PCI on node 1").
// Each movable IRQ of a device on node K must stay on node K's CPUs while node K has an allowed
// online CPU, spread within them (at most one apart, counting only node K's IRQs), and spill onto
// the other CPUs when node K has none left. IRQs of no node (-1: GIC SPIs, virtio-mmio) may go
// anywhere allowed. Every check reads the kernel's own files (effective_affinity_list); irqshift's
// `list --json` only says which node it gives each IRQ, and that is checked against the kernel's
// /proc/irq/N/node and /sys/bus/pci/devices/*/numa_node too.
//
// On any other VM (one node, or PCI devices on no node) the tests skip, saying why.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// numaListDoc is the part of `irqshift list --json` about NUMA (README "JSON"): cpus.nodes and
// each IRQ's node. Node is a pointer so that an irqshift without the field is told apart from
// node 0.
type numaListDoc struct {
	CPUs struct {
		Nodes map[string][]int `json:"nodes"`
	} `json:"cpus"`
	IRQs []struct {
		IRQ     int      `json:"irq"`
		Actions []string `json:"actions"`
		Node    *int     `json:"node"`
	} `json:"irqs"`
}

// numaVM is what the NUMA tests know about the VM, read once per test.
type numaVM struct {
	nodes   map[int][]int // node -> its CPUs (/sys/devices/system/node/nodeN/cpulist), nodes with CPUs only
	pciNode int           // the node of every PCI device
	home    []int         // nodes[pciNode]
	movable []int         // what irqshift lists as movable, minus the kernel-managed virtio-blk queues
	node    map[int]int   // IRQ -> the node irqshift gives it (list --json), -1 for none
	byNode  map[int][]int // node -> its movable IRQs; -1 holds the node-less ones
	actions map[int]string
}

// sysNodes reads the NUMA nodes that have CPUs.
func sysNodes(t *testing.T) map[int][]int {
	t.Helper()
	nodes := map[int][]int{}
	dirs, _ := filepath.Glob("/sys/devices/system/node/node[0-9]*")
	for _, d := range dirs {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "node"))
		if err != nil {
			continue
		}
		if cpus := cpuList(t, filepath.Join(d, "cpulist")); len(cpus) > 0 {
			nodes[n] = cpus
		}
	}
	return nodes
}

// pciDeviceNodes returns each PCI device's numa_node.
func pciDeviceNodes(t *testing.T) map[string]int {
	t.Helper()
	m := map[string]int{}
	files, _ := filepath.Glob("/sys/bus/pci/devices/*/numa_node")
	for _, f := range files {
		n, err := strconv.Atoi(readTrim(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m[filepath.Base(filepath.Dir(f))] = n
	}
	return m
}

// msiDevices maps each PCI MSI/MSI-X IRQ to its device, from /sys/bus/pci/devices/*/msi_irqs/N.
func msiDevices() map[int]string {
	m := map[int]string{}
	files, _ := filepath.Glob("/sys/bus/pci/devices/*/msi_irqs/[0-9]*")
	for _, f := range files {
		if irq, err := strconv.Atoi(filepath.Base(f)); err == nil {
			m[irq] = filepath.Base(filepath.Dir(filepath.Dir(f)))
		}
	}
	return m
}

// irqNode reads /proc/irq/N/node (-1: none).
func irqNode(t *testing.T, irq int) int {
	t.Helper()
	n, err := strconv.Atoi(readTrim(t, irqFile(irq, "node")))
	if err != nil {
		t.Fatalf("/proc/irq/%d/node: %v", irq, err)
	}
	return n
}

func sortedKeys(m map[int][]int) []int {
	var k []int
	for n := range m {
		k = append(k, n)
	}
	sort.Ints(k)
	return k
}

// needNUMA skips unless the VM has two NUMA nodes with CPUs and its PCI devices on one of them,
// and reads irqshift's view of the IRQs' nodes (failing when irqshift gives none).
func needNUMA(t *testing.T) *numaVM {
	t.Helper()
	needIrqshift(t, 2)
	v := &numaVM{nodes: sysNodes(t), node: map[int]int{}, byNode: map[int][]int{}, actions: map[int]string{}}
	if len(v.nodes) != 2 {
		t.Skipf("needs a VM with 2 NUMA nodes with CPUs (tests/vm/run.sh -c 8 --numa 2 --pci-node 1 --extra-rng 4, "+
			"or make vm-test-numa); /sys/devices/system/node has %d: %v", len(v.nodes), v.nodes)
	}
	devs := pciDeviceNodes(t)
	if len(devs) == 0 {
		t.Skip("no PCI devices")
	}
	seen := map[int][]string{}
	for bdf, n := range devs {
		seen[n] = append(seen[n], bdf)
	}
	if s := os.Getenv("IRQSHIFT_VM_PCI_NODE"); s != "" {
		// run.sh --pci-node K said where they must be: anything else is a broken VM setup.
		want, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("IRQSHIFT_VM_PCI_NODE=%q", s)
		}
		if len(seen) != 1 || len(seen[want]) == 0 {
			t.Fatalf("booted with run.sh --pci-node %d (numa-node-id in the DTB's pcie@10000000), but the PCI devices' numa_node are %v", want, devs)
		}
	} else if len(seen) != 1 {
		t.Skipf("the PCI devices are on different nodes (%v); these tests want them all on one (run.sh --pci-node 1)", devs)
	}
	for n := range seen {
		v.pciNode = n
	}
	if v.pciNode < 0 {
		t.Skip("the PCI devices have no NUMA node (numa_node -1, QEMU's DT default): boot with tests/vm/run.sh --numa 2 --pci-node 1")
	}
	v.home = v.nodes[v.pciNode]
	if len(v.home) == 0 {
		t.Fatalf("the PCI devices are on node %d, which has no CPUs (nodes %v)", v.pciNode, v.nodes)
	}

	v.readIrqshift(t)
	t.Logf("NUMA VM: nodes %v, PCI devices on node %d; movable IRQs by irqshift's node: %v", v.nodes, v.pciNode, v.byNode)
	return v
}

// check asserts NUMA-local placement on the kernel's files: every movable IRQ is effective on
// online CPUs only; the IRQs of each node with an online CPU are effective within that node's
// online CPUs and differ by at most one there (counting only that node's IRQs); a node with no
// online CPU lets its IRQs go anywhere allowed, as the node-less IRQs may.
func (v *numaVM) check(t *testing.T, label string) {
	t.Helper()
	online := onlineCPUs(t)
	for _, irq := range v.movable {
		eff := effCPUs(t, irq)
		if len(eff) == 0 {
			t.Errorf("%s: IRQ %d (%s) has an empty effective_affinity_list", label, irq, v.actions[irq])
		}
		if !subset(eff, online) {
			t.Errorf("%s: IRQ %d (%s) effective %v holds an offline CPU (online %v)", label, irq, v.actions[irq], eff, online)
		}
	}
	var parts []string
	for _, n := range sortedKeys(v.byNode) {
		irqs := v.byNode[n]
		if n < 0 {
			_, txt := spread(perCPU(t, irqs, online))
			parts = append(parts, fmt.Sprintf("node-less %v: %s", irqs, txt))
			continue
		}
		home := intersect(v.nodes[n], online)
		if len(home) == 0 {
			_, txt := spread(perCPU(t, irqs, online))
			parts = append(parts, fmt.Sprintf("node %d (no online CPU, anywhere allowed) %v: %s", n, irqs, txt))
			continue
		}
		for _, irq := range irqs {
			if eff := effCPUs(t, irq); !subset(eff, home) {
				t.Errorf("%s: IRQ %d (%s, node %d) effective %v, outside node %d's online CPUs %v", label, irq, v.actions[irq], n, eff, n, home)
			}
		}
		d, txt := spread(perCPU(t, irqs, home))
		if d > 1 {
			t.Errorf("%s: node %d's IRQs per CPU of node %d differ by %d: %s (IRQs %v)", label, n, n, d, txt, irqs)
		}
		parts = append(parts, fmt.Sprintf("node %d on %s %v: %s", n, formatCPUList(home), irqs, txt))
	}
	t.Logf("%s (online %s): %s", label, formatCPUList(online), strings.Join(parts, "; "))
}

// TestNUMAVMLocality pins down the VM itself (docs/KERNELS.md, "NUMA: a device's node and the
// kernel's default masks"): every PCI device on the node run.sh --pci-node put the host bridge on,
// the kernel's /proc/irq/N/node of its MSIs and their boot masks (node-local unless a driver or the
// managed spreading set them), and irqshift's nodes in list --json against those files.
func TestNUMAVMLocality(t *testing.T) {
	v := needNUMA(t)
	devNode := pciDeviceNodes(t)
	msi := msiDevices()
	managed := kernelManaged(t)
	var b strings.Builder
	fmt.Fprintf(&b, "  %4s  %-18s %-12s %8s %8s %9s %9s  %s\n", "IRQ", "action", "device", "dev node", "irq node", "affinity", "effective", "irqshift node")
	nodeLocal := 0
	for _, r := range readInterrupts(t) {
		if _, err := os.Stat(irqFile(r.IRQ, "smp_affinity_list")); err != nil {
			continue
		}
		kn := irqNode(t, r.IRQ)
		aff := affinity(t, r.IRQ)
		dev, dn := msi[r.IRQ], "-"
		if dev != "" {
			dn = strconv.Itoa(devNode[dev])
		}
		in, listed := v.node[r.IRQ]
		shown := "(not listed)"
		if listed {
			shown = strconv.Itoa(in)
		}
		fmt.Fprintf(&b, "  %4d  %-18s %-12s %8s %8d %9s %9s  %s\n", r.IRQ, r.Actions, dev, dn, kn, aff, effective(t, r.IRQ), shown)
		if listed {
			// irqshift's rule: /proc/irq/N/node, else (-1) the PCI device's numa_node.
			want := kn
			if want < 0 && dev != "" {
				want = devNode[dev]
			}
			if in != want {
				t.Errorf("IRQ %d (%s): irqshift gives node %d, the kernel's files say %d (/proc/irq/%d/node %d, device %s)", r.IRQ, r.Actions, in, want, r.IRQ, kn, dev)
			}
		}
		if dev == "" {
			if isSPI(r) && kn != -1 {
				t.Logf("note: GIC SPI %d (%s) has /proc/irq/%d/node %d", r.IRQ, r.Actions, r.IRQ, kn)
			}
			continue
		}
		drv, _ := virtioDriver(virtioDevOf(r.Actions))
		netQueue := drv == "virtio_net" && (strings.Contains(r.Actions, "-input.") || strings.Contains(r.Actions, "-output."))
		switch {
		case managed[r.IRQ] || netQueue:
			// Managed queues are spread by the kernel over every CPU (node by node); virtio-net
			// sets its queues' masks itself.
		case kn == v.pciNode:
			nodeLocal++
			if aff != formatCPUList(v.home) {
				t.Errorf("IRQ %d (%s, device %s on node %d, /proc/irq/%d/node %d): boot smp_affinity_list %s, want node %d's CPUs %s",
					r.IRQ, r.Actions, dev, devNode[dev], r.IRQ, kn, aff, v.pciNode, formatCPUList(v.home))
			}
		default:
			// 6.12: the config vector of a device with managed queues (virtio-blk) is allocated
			// with the managed spreading's node of CPU0 (/proc/irq/N/node 0), whatever the device's.
			t.Logf("note: IRQ %d (%s) of device %s on node %d has /proc/irq/%d/node %d and boot mask %s", r.IRQ, r.Actions, dev, devNode[dev], r.IRQ, kn, aff)
		}
	}
	t.Logf("PCI devices' numa_node: %v; IRQs (boot masks unless an earlier test left them otherwise):\n%s", devNode, b.String())
	if nodeLocal == 0 {
		t.Errorf("no PCI MSI has /proc/irq/N/node %d: the DTB's numa-node-id did not reach the IRQs", v.pciNode)
	}
}

// TestNUMACLIRebalance: `irqshift rebalance` keeps each node's IRQs on that node's CPUs, at most
// one apart there, and a second rebalance --dry-run plans nothing: from the boot masks, from
// every movable IRQ pinned to CPU0 (another node than the PCI devices'), and from all of them
// pinned to the PCI node's last CPU (--include-pinned: masks set by hand are admin pins).
func TestNUMACLIRebalance(t *testing.T) {
	v := needNUMA(t)
	last := v.home[len(v.home)-1]
	for _, sc := range []struct {
		name string
		pin  string
	}{
		{"from the boot masks", ""},
		{"from every movable IRQ pinned to CPU0", "0"},
		{fmt.Sprintf("from every movable IRQ pinned to CPU%d", last), strconv.Itoa(last)},
	} {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			restoreAtEnd(t)
			var flags []string
			if sc.pin != "" {
				pin(t, v.movable, sc.pin)
				flags = []string{"--include-pinned"}
			}
			t.Log(table("before irqshift rebalance ("+sc.name+")", snapshot(t), marks(v.byNode[v.pciNode], fmt.Sprintf("node %d", v.pciNode))))
			r := irqshift(t, append(flags, "rebalance", "--json")...)
			mustExit(t, r, 0)
			var d applyDoc
			decodeJSON(t, r, &d)
			checkResults(t, d)
			t.Log(table("after irqshift rebalance", snapshot(t), marks(v.byNode[v.pciNode], fmt.Sprintf("node %d", v.pciNode))))
			for _, irq := range v.movable {
				if a, e := affCPUs(t, irq), effCPUs(t, irq); len(a) != 1 || !sameCPUs(a, e) {
					t.Errorf("IRQ %d: smp_affinity_list %v effective %v, want one CPU in both", irq, a, e)
				}
			}
			v.check(t, "after rebalance "+sc.name)
			dry := irqshift(t, append(flags, "rebalance", "--dry-run", "--json")...)
			mustExit(t, dry, 0)
			var plan applyDoc
			decodeJSON(t, dry, &plan)
			if len(plan.Moves) != 0 || plan.Results != nil {
				t.Errorf("a second rebalance --dry-run plans %d moves (want 0): %+v", len(plan.Moves), plan.Moves)
			}
		})
	}
}

// TestNUMADaemonHotplug: `irqshift watch` keeps the PCI node's IRQs on its online CPUs as they go
// (offline one: the others take them, at most one apart), lets them spill onto the other node
// when the last one goes (none on an offline CPU), and brings them back as the node's CPUs return.
func TestNUMADaemonHotplug(t *testing.T) {
	v := needNUMA(t)
	if contains(v.home, 0) || len(v.home) < 2 {
		t.Skipf("needs the PCI node's CPUs (%v) to be two or more without CPU0, which cannot go offline", v.home)
	}
	restoreAtEnd(t)
	for _, c := range v.home {
		ensureOnlineAtEnd(t, c)
	}
	args := append([]string{"--check-interval", "0"}, strings.Fields(os.Getenv("IRQSHIFT_VM_WATCH_ARGS"))...)
	d := startWatch(t, statePath(t), args...)
	start := time.Now()
	d.waitReady(t, 0)
	t.Logf("daemon ready in %.2fs", time.Since(start).Seconds())
	v.check(t, "after start-up")

	step := func(cpu int, on bool) {
		t.Helper()
		label := fmt.Sprintf("offline %d", cpu)
		if on {
			label = fmt.Sprintf("online %d", cpu)
		}
		from := d.settleCount()
		if err := setCPUOnline(cpu, on); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		var parts []string
		for _, s := range d.waitSettles(t, from, []string{strings.Replace(label, " ", ":", 1)}) {
			if s.Failed > 0 {
				t.Errorf("%s: settle %q reports %d failed moves", label, s.Line, s.Failed)
			}
			parts = append(parts, fmt.Sprintf("reason=%s events=%s moved=%d reaction_ms=%g", s.Reason, strings.Join(s.Events, ","), s.Moved, s.Reaction))
		}
		t.Logf("%s -> %s", label, strings.Join(parts, "; "))
		v.check(t, label)
	}
	// One CPU of the node goes, then the rest (the first CPU of the node last but one).
	order := append([]int{v.home[1], v.home[0]}, v.home[2:]...)
	for _, c := range order {
		step(c, false)
	}
	for _, irq := range v.byNode[v.pciNode] {
		if eff := effCPUs(t, irq); len(intersect(eff, v.home)) > 0 {
			t.Errorf("IRQ %d effective %v with node %d's CPUs %v offline", irq, eff, v.pciNode, v.home)
		}
	}
	for _, c := range v.home {
		step(c, true)
	}
	var pins []string
	for _, l := range d.linesSince(0) {
		if kv := parseLogfmt(l); kv["msg"] == "learned pin" {
			pins = append(pins, fmt.Sprintf("IRQ %s to %s", kv["irq"], kv["cpus"]))
		}
	}
	if len(pins) > 0 {
		t.Logf("the daemon learned pins nobody set: %s", strings.Join(pins, "; "))
	}
}

// readIrqshift reads irqshift's view of v (list --json): every IRQ's node, the nodes' CPUs, which
// must be the kernel's, and the movable IRQs (not managed) grouped by node, -1 for those with no
// node or a node without CPUs. It fails when no movable IRQ is on the PCI devices' node.
func (v *numaVM) readIrqshift(t *testing.T) {
	t.Helper()
	r := irqshift(t, "list", "--json")
	mustExit(t, r, 0)
	var doc listDoc
	decodeJSON(t, r, &doc)
	var ndoc numaListDoc
	decodeJSON(t, r, &ndoc)
	for _, q := range ndoc.IRQs {
		if q.Node == nil {
			t.Fatalf("irqshift list --json gives IRQ %d (%s) no \"node\": this irqshift does not know NUMA (--numa local)", q.IRQ, strings.Join(q.Actions, ","))
		}
		v.node[q.IRQ] = *q.Node
		v.actions[q.IRQ] = strings.Join(q.Actions, ",")
	}
	if ndoc.CPUs.Nodes == nil {
		t.Fatal("irqshift list --json has no cpus.nodes: this irqshift does not know NUMA")
	}
	for n, cpus := range v.nodes {
		if got := ndoc.CPUs.Nodes[strconv.Itoa(n)]; !sameCPUs(got, cpus) {
			t.Errorf("list --json cpus.nodes[%d] = %v, /sys/devices/system/node/node%d/cpulist is %v", n, got, n, cpus)
		}
	}
	if len(ndoc.CPUs.Nodes) != len(v.nodes) {
		t.Errorf("list --json cpus.nodes %v, the kernel's nodes with CPUs %v", ndoc.CPUs.Nodes, v.nodes)
	}
	managed := kernelManaged(t)
	for _, q := range doc.IRQs {
		if q.Movable && !managed[q.IRQ] {
			v.movable = append(v.movable, q.IRQ)
			n := v.node[q.IRQ]
			if _, ok := v.nodes[n]; !ok {
				n = -1 // no node, or a node without CPUs: anywhere allowed
			}
			v.byNode[n] = append(v.byNode[n], q.IRQ)
		}
	}
	if len(v.byNode[v.pciNode]) == 0 {
		t.Fatalf("irqshift lists no movable IRQ on node %d although every PCI device is there; its nodes: %v", v.pciNode, v.node)
	}
}
