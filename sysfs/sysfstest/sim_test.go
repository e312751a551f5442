package sysfstest_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// The simulator stands in for the kernel wherever the applier talks to one.
var _ affinity.Kernel = (*sysfstest.Sim)(nil)

var versions = []sysfstest.Version{sysfstest.Kernel61, sysfstest.Kernel612}

func cpus(list string) sysfs.CPUSet {
	set, err := sysfs.ParseCPUList(list)
	if err != nil {
		panic(err)
	}
	return set
}

func snapshot(t *testing.T, s *sysfstest.Sim) *sysfs.Snapshot {
	t.Helper()
	snap, err := s.FS().Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatalf("Snapshot of the simulated tree: %v", err)
	}
	return snap
}

func readTree(t *testing.T, s *sysfstest.Sim, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Root(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// namedRows returns the labels of the rows of /proc/interrupts that are
// not numbered (IPIn, Err), from the file: sysfs keeps none.
func namedRows(t *testing.T, s *sysfstest.Sim) []string {
	t.Helper()
	var out []string
	for i, line := range strings.Split(readTree(t, s, "proc/interrupts"), "\n") {
		label, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if _, err := strconv.Atoi(label); i > 0 && ok && err != nil {
			out = append(out, label)
		}
	}
	return out
}

// procIRQ reads /proc/irq/N/node and affinity_hint, which sysfs does not
// read, from a tree.
func procIRQ(t *testing.T, procDir string, irq int) (node int, hint sysfs.CPUSet) {
	t.Helper()
	dir := filepath.Join(procDir, "irq", strconv.Itoa(irq))
	data, err := os.ReadFile(filepath.Join(dir, "node"))
	if err != nil {
		t.Fatal(err)
	}
	if node, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		t.Fatalf("%s/node: %v", dir, err)
	}
	if data, err = os.ReadFile(filepath.Join(dir, "affinity_hint")); err != nil {
		t.Fatal(err)
	}
	if hint, err = sysfs.ParseCPUMask(string(data)); err != nil {
		t.Fatalf("%s/affinity_hint: %v", dir, err)
	}
	return node, hint
}

func rowNumbers(in sysfs.Interrupts) []int {
	var out []int
	for _, r := range in.IRQs {
		out = append(out, r.IRQ)
	}
	return out
}

// withUnbound adds an SPI whose driver was unbound after it fired once:
// no action, but listed because it has a count.
func withUnbound(cfg sysfstest.Config) sysfstest.Config {
	cfg.IRQs = append(slices.Clone(cfg.IRQs), sysfstest.NoAction(15, "GICv3", 35, "Level").WithCounts(1, 0, 0, 0))
	return cfg
}

func TestTreeParsesWithSnapshot(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			s := sysfstest.New(t, withUnbound(sysfstest.VM4(v)))
			snap := snapshot(t, s)
			all := cpus("0-3")
			for name, got := range map[string]sysfs.CPUSet{
				"possible": snap.CPUs.Possible, "present": snap.CPUs.Present, "online": snap.CPUs.Online,
				"hotpluggable": snap.CPUs.Hotpluggable,
			} {
				if !got.Equal(all) {
					t.Errorf("%s = %s, want 0-3", name, got)
				}
			}
			if !snap.CPUs.Isolated.IsEmpty() || !snap.CPUs.NohzFull.IsEmpty() {
				t.Errorf("isolated %s, nohz_full %s, want both empty", snap.CPUs.Isolated, snap.CPUs.NohzFull)
			}
			if len(snap.CPUs.Node) != 4 || snap.CPUs.Node[3] != 0 {
				t.Errorf("nodes = %v, want every CPU on node 0", snap.CPUs.Node)
			}
			if !slices.Equal(snap.Interrupts.CPUs, []int{0, 1, 2, 3}) {
				t.Errorf("header CPUs = %v", snap.Interrupts.CPUs)
			}
			// Hidden IPIs (1-7/8) and the action-less PPIs 9, 10, 12
			// with no count are not listed; the unbound SPI 15 is.
			want := []int{11, 13, 14, 15, 16, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
			if v == sysfstest.Kernel612 {
				want = []int{11, 13, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
			}
			if got := rowNumbers(snap.Interrupts); !slices.Equal(got, want) {
				t.Errorf("rows = %v, want %v", got, want)
			}
			if named := namedRows(t, s); len(named) != 7+int(v)+1 || named[0] != "IPI0" || named[len(named)-1] != "Err" {
				t.Errorf("named rows %v, want %d IPIs and Err", named, 7+int(v))
			}
			if len(snap.Vanished) != 0 || len(snap.Affinity) != len(want) {
				t.Errorf("vanished %v, %d affinities, want none and %d", snap.Vanished, len(snap.Affinity), len(want))
			}
			kirqs := map[int]sysfs.KernelIRQ{}
			for _, irq := range s.IRQs() {
				k, err := s.FS().KernelIRQ(irq)
				if err != nil {
					t.Fatalf("/sys/kernel/irq/%d: %v", irq, err)
				}
				kirqs[irq] = k
			}
			for irq, aff := range snap.Affinity {
				kind := s.Kind(irq)
				wantRO := v == sysfstest.Kernel612 && (kind == sysfstest.KindPerCPU || kind == sysfstest.KindManaged)
				if aff.ReadOnly != wantRO {
					t.Errorf("IRQ %d (%s): ReadOnly = %v, want %v", irq, kind, aff.ReadOnly, wantRO)
				}
				if !aff.HasEffective {
					t.Errorf("IRQ %d: no effective_affinity_list", irq)
				}
				if (kind == sysfstest.KindPerCPU) != aff.Effective.IsEmpty() {
					t.Errorf("IRQ %d (%s): effective %q", irq, kind, aff.Effective)
				}
			}
			if k := kirqs[26]; k.ChipName == "" || !k.HasHWIRQ || !slices.Equal(k.Actions, []string{"virtio2-req.2"}) || k.Type != "edge" {
				t.Errorf("/sys/kernel/irq/26 = %+v", k)
			}
			if k := kirqs[15]; len(k.Actions) != 0 || k.Type != "level" || k.HWIRQ != 35 {
				t.Errorf("/sys/kernel/irq/15 = %+v, want no action, level, hwirq 35", k)
			}
			if k := kirqs[1]; !slices.Equal(k.Actions, []string{"IPI"}) || k.HWIRQ != 0 {
				t.Errorf("/sys/kernel/irq/1 = %+v, want the hidden IPI", k)
			}
			if node, hint := procIRQ(t, s.ProcDir(), 29); node != -1 || hint.String() != "0-3" {
				t.Errorf("/proc/irq/29: node %d, hint %s; want node -1, hint 0-3", node, hint)
			}
			// As measured: SPIs all on CPU0, MSIs by least load, 5/2/1/1.
			perCPU := map[int]int{}
			for irq, aff := range snap.Affinity {
				if s.Kind(irq).Movable() {
					perCPU[aff.Effective.First()]++
				}
			}
			if want := map[int]int{0: 5, 1: 2, 2: 1, 3: 1}; !mapsEqual(perCPU, want) {
				t.Errorf("movable IRQs per CPU after boot = %v, want %v", perCPU, want)
			}
		})
	}
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestInterruptsFormat compares the simulator's /proc/interrupts with lines
// printed by the 6.1 VM, byte for byte: the header, IRQs 11, 13, 20, 21 and
// 22, IPI6 and Err as in its capture,
// sysfs/testdata/proc-interrupts/20-qemu-arm64-6.1-4cpu.txt; IRQ 15 (no
// action, added by withUnbound) and IPI0 (whose counts the simulator does
// not keep) in the same format.
func TestInterruptsFormat(t *testing.T) {
	s := sysfstest.New(t, withUnbound(sysfstest.VM4(sysfstest.Kernel61)))
	lines := strings.Split(readTree(t, s, "proc/interrupts"), "\n")
	want := []string{
		"           CPU0       CPU1       CPU2       CPU3       ",
		" 11:        638        513        556        605     GICv3  27 Level     arch_timer",
		" 13:          0          0          0          0     GICv3  33 Level     uart-pl011",
		" 15:          1          0          0          0     GICv3  35 Level   ",
		" 20:          0          0          0          0   ITS-MSI 32768 Edge      virtio1-config",
		" 21:          0          5          0          0   ITS-MSI 32769 Edge      virtio1-input",
		" 22:          1          0          0          0     GICv3  79 Edge      virtio3",
		"IPI0:         0          0          0          0       Rescheduling interrupts",
		"IPI6:         0          0          0          0       CPU wake-up interrupts",
		"Err:          0",
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("no line %q in\n%s", w, strings.Join(lines, "\n"))
		}
	}
	if lines[0] != want[0] {
		t.Errorf("header %q, want %q", lines[0], want[0])
	}

	// Four-digit IRQ numbers widen the IRQ field; no domain, no hwirq.
	big := sysfstest.Config{Kernel: sysfstest.Kernel612, Possible: 2, IRQs: []sysfstest.IRQ{
		sysfstest.SPI(5, 40, "Level", "a", "b"),
		sysfstest.MSI(1000, "MSI", 0, "nvme0q1"),
		{IRQ: 1001, Kind: sysfstest.KindSPI, Chip: "xen-dyn", NoHWIRQ: true, Trigger: "Edge", Actions: []string{"xenbus"}, Node: -1},
	}}
	s = sysfstest.New(t, big)
	got := readTree(t, s, "proc/interrupts")
	for _, w := range []string{
		"            CPU0       CPU1       \n",
		"   5:          0          0     GICv3   40 Level     a, b\n",
		"1001:          0          0   xen-dyn      Edge      xenbus\n",
		"IPI0:          0          0       Rescheduling interrupts\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("no %q in\n%s", w, got)
		}
	}
	in, err := s.FS().Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	if r := in.IRQs[2]; r.IRQ != 1001 || r.Chip != "xen-dyn" || r.HasHWIRQ || !slices.Equal(r.Actions, []string{"xenbus"}) {
		t.Errorf("row 1001 parsed as %+v", r)
	}
}

// errnoOf digs the syscall.Errno out of a write error.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

func TestWriteAffinity(t *testing.T) {
	type result struct {
		class     error // nil: accepted
		errno     syscall.Errno
		affinity  string
		effective string
	}
	for _, v := range versions {
		refused := syscall.EIO
		if v == sysfstest.Kernel612 {
			refused = syscall.EPERM
		}
		tests := []struct {
			name  string
			setup func(*sysfstest.Sim)
			irq   int
			to    string
			want  result
		}{
			{name: "per-CPU PPI is refused", irq: 11, to: "2", want: result{class: sysfs.ErrUnmovable, errno: refused}},
			{name: "managed queue is refused", irq: 26, to: "0", want: result{class: sysfs.ErrUnmovable, errno: refused}},
			{name: "action-less descriptor is refused", irq: 15, to: "1", want: result{class: sysfs.ErrUnmovable, errno: refused}},
			{name: "SPI pinned", irq: 13, to: "2", want: result{affinity: "2", effective: "2"}},
			{name: "SPI takes the first online CPU of its mask", irq: 13, to: "1-3", want: result{affinity: "1-3", effective: "1"}},
			{name: "SPI mask with an offline CPU", irq: 13, to: "1-2",
				setup: func(s *sysfstest.Sim) { _ = s.SetCPUOnline(1, false) },
				want:  result{affinity: "1-2", effective: "2"}},
			// Boot: MSIs 20,29 on CPU0, 21,30 on 1, 23 on 2, 28 on 3.
			// Without 21 itself, CPU0 carries two and CPU2 one.
			{name: "MSI takes the least-loaded CPU of its mask", irq: 21, to: "0,2", want: result{affinity: "0,2", effective: "2"}},
			{name: "MSI tie goes to the lowest CPU", irq: 21, to: "1-3", want: result{affinity: "1-3", effective: "1"}},
			{name: "mask of offline CPUs only", irq: 13, to: "3",
				setup: func(s *sysfstest.Sim) { _ = s.SetCPUOnline(3, false) },
				want:  result{class: sysfs.ErrStaleMask, errno: syscall.EINVAL}},
			{name: "CPU beyond nr_cpu_ids", irq: 13, to: "7", want: result{class: sysfs.ErrStaleMask, errno: syscall.EINVAL}},
			{name: "freed IRQ", irq: 20, to: "1",
				setup: func(s *sysfstest.Sim) { _ = s.RemoveIRQ(20) },
				want:  result{class: sysfs.ErrGone, errno: syscall.ENOENT}},
		}
		for _, tc := range tests {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				s := sysfstest.New(t, withUnbound(sysfstest.VM4(v)))
				if tc.setup != nil {
					tc.setup(s)
				}
				beforeAff, beforeEff, _ := s.State(tc.irq)
				err := s.WriteAffinity(tc.irq, cpus(tc.to))
				if tc.want.class == nil {
					if err != nil {
						t.Fatalf("WriteAffinity(%d, %s) = %v, want nil", tc.irq, tc.to, err)
					}
					aff, eff, _ := s.State(tc.irq)
					if aff.String() != tc.want.affinity || eff.String() != tc.want.effective {
						t.Errorf("affinity %s effective %s, want %s and %s", aff, eff, tc.want.affinity, tc.want.effective)
					}
					// The files follow, and the applier's read-back sees it.
					dir := filepath.Join("proc", "irq", strconv.Itoa(tc.irq))
					if got := readTree(t, s, filepath.Join(dir, "smp_affinity_list")); got != tc.want.affinity+"\n" {
						t.Errorf("smp_affinity_list = %q", got)
					}
					if got := readTree(t, s, filepath.Join(dir, "smp_affinity")); got != cpus(tc.want.affinity).Mask(4)+"\n" {
						t.Errorf("smp_affinity = %q", got)
					}
					if got, err := s.ReadEffective(tc.irq); err != nil || got.String() != tc.want.effective {
						t.Errorf("ReadEffective = %s, %v", got, err)
					}
					return
				}
				if !errors.Is(err, tc.want.class) || !errors.Is(err, sysfs.ErrWrite) {
					t.Fatalf("WriteAffinity(%d, %s) = %v, want %v wrapped in ErrWrite", tc.irq, tc.to, err, tc.want.class)
				}
				if sysfs.WriteClass(err) != tc.want.class {
					t.Errorf("WriteClass = %v, want %v", sysfs.WriteClass(err), tc.want.class)
				}
				if got := errnoOf(err); got != tc.want.errno {
					t.Errorf("errno = %v, want %v", got, tc.want.errno)
				}
				if aff, eff, ok := s.State(tc.irq); ok && (!aff.Equal(beforeAff) || !eff.Equal(beforeEff)) {
					t.Errorf("a refused write changed IRQ %d to %s/%s", tc.irq, aff, eff)
				}
				ws := s.Writes()
				if len(ws) != 1 || ws[0].Errno != tc.want.errno || ws[0].Err == nil {
					t.Errorf("write log = %+v", ws)
				}
			})
		}
	}
}

// TestErrorsMatchSysfs checks that a simulated error reads exactly like the
// real sysfs.FS's for the same failure (a freed IRQ: both fail to open).
func TestErrorsMatchSysfs(t *testing.T) {
	s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
	if err := s.RemoveIRQ(13); err != nil {
		t.Fatal(err)
	}
	simErr := s.WriteAffinity(13, cpus("2"))
	fsErr := s.FS().WriteAffinity(13, cpus("2"))
	if simErr == nil || fsErr == nil || simErr.Error() != fsErr.Error() {
		t.Errorf("simulator: %v\nsysfs:     %v", simErr, fsErr)
	}
}

// pinAll writes cpu to every movable IRQ, as an admin pins every IRQ to CPU2
// before that CPU goes offline in TestKernelHotplugBaseline
// (tests/vm/hotplug_test.go).
func pinAll(t *testing.T, s *sysfstest.Sim, cpu int) {
	t.Helper()
	for _, irq := range s.IRQs() {
		if s.Kind(irq).Movable() {
			if err := s.WriteAffinity(irq, sysfs.NewCPUSet(cpu)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type placement struct{ affinity, effective string }

func placements(s *sysfstest.Sim, irqs ...int) map[int]placement {
	out := map[int]placement{}
	for _, irq := range irqs {
		aff, eff, _ := s.State(irq)
		out[irq] = placement{aff.String(), eff.String()}
	}
	return out
}

// TestOfflineMigratesLikeTheKernel replays the experiment of
// TestKernelHotplugBaseline in the arm64 VM (tests/vm/hotplug_test.go): an
// admin pins every movable IRQ to CPU2 (one SPI to 2-3), then CPU2 goes
// offline and comes back. What the kernel does then is in docs/KERNELS.md,
// "Kernel facts irqshift relies on", from "Offline: the kernel moves a dying
// CPU's IRQs itself" to "Managed IRQs are shut down with their CPU".
func TestOfflineMigratesLikeTheKernel(t *testing.T) {
	s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
	pinAll(t, s, 2)
	if err := s.WriteAffinity(16, cpus("2-3")); err != nil {
		t.Fatal(err)
	}
	before := placements(s, 11, 24, 25, 26, 27)
	if err := s.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	want := map[int]placement{
		// SPIs whose mask had no other online CPU: pin lost, all on CPU0.
		13: {"0-1,3", "0"},
		22: {"0-1,3", "0"},
		// The SPI with mask 2-3 silently moved to 3 and kept its mask.
		16: {"2-3", "3"},
		// MSIs: pin lost, least-loaded CPU in IRQ order.
		20: {"0-1,3", "0"},
		21: {"0-1,3", "1"},
		23: {"0-1,3", "3"},
		28: {"0-1,3", "0"},
		// virtio-net's callback rewrites its queues to the online mask.
		29: {"0-1,3", "1"},
		30: {"0-1,3", "3"},
	}
	got := placements(s, 13, 16, 20, 21, 22, 23, 28, 29, 30)
	for irq, w := range want {
		if got[irq] != w {
			t.Errorf("IRQ %d after offline: %+v, want %+v", irq, got[irq], w)
		}
	}
	// Managed 26 is shut down with CPU2, not moved; per-CPU untouched.
	if after := placements(s, 11, 24, 25, 26, 27); !mapsEqualP(after, before) {
		t.Errorf("non-movable IRQs changed: %v, want %v", after, before)
	}
	if err := s.AddCounts(26, 1); err == nil {
		t.Error("a shut-down managed IRQ fired")
	}
	snap := snapshot(t, s)
	if !slices.Equal(snap.Interrupts.CPUs, []int{0, 1, 3}) {
		t.Errorf("/proc/interrupts header CPUs = %v, want [0 1 3]", snap.Interrupts.CPUs)
	}
	if got := snap.Affinity[26]; got.Affinity.String() != "2" || got.Effective.String() != "2" {
		t.Errorf("IRQ 26 as read from the tree: %+v", got)
	}
	for rel, w := range map[string]string{
		"sys/devices/system/cpu/online":      "0-1,3\n",
		"sys/devices/system/cpu/offline":     "2\n",
		"sys/devices/system/cpu/cpu2/online": "0\n",
		"proc/irq/13/smp_affinity_list":      "0-1,3\n",
		"proc/irq/13/smp_affinity":           "b\n",
		"proc/irq/13/effective_affinity":     "1\n",
	} {
		if got := readTree(t, s, rel); got != w {
			t.Errorf("%s = %q, want %q", rel, got, w)
		}
	}
	if online, err := s.OnlineCPUs(); err != nil || online.String() != "0-1,3" {
		t.Errorf("OnlineCPUs = %s, %v", online, err)
	}

	// Online: nothing moves back (virtio-net alone rewrites its queues).
	if err := s.SetCPUOnline(2, true); err != nil {
		t.Fatal(err)
	}
	after := placements(s, 13, 16, 20, 21, 22, 23, 28)
	for irq, p := range after {
		if p != want[irq] {
			t.Errorf("IRQ %d after online: %+v, want it left at %+v", irq, p, want[irq])
		}
	}
	if p := placements(s, 29)[29]; p.affinity != "0-3" {
		t.Errorf("IRQ 29 after online: %+v, want virtio-net's 0-3", p)
	}
	if in, err := s.FS().Interrupts(); err != nil || !slices.Equal(in.CPUs, []int{0, 1, 2, 3}) {
		t.Errorf("header after online: %v, %v", in.CPUs, err)
	}
	if got := readTree(t, s, "sys/devices/system/cpu/offline"); got != "\n" {
		t.Errorf("offline = %q, want empty", got)
	}
}

func mapsEqualP(a, b map[int]placement) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSetCPUOnlineRefusals(t *testing.T) {
	cfg := sysfstest.Config{Possible: 2, NotHotpluggable: cpus("0"), IRQs: []sysfstest.IRQ{sysfstest.SPI(13, 33, "Level", "uart")}}
	s := sysfstest.New(t, cfg)
	if err := s.SetCPUOnline(0, false); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("offline of a CPU without cpuN/online: %v, want ENOENT", err)
	}
	if err := s.SetCPUOnline(5, false); err == nil {
		t.Error("offline of a CPU that does not exist succeeded")
	}
	if err := s.SetCPUOnline(1, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCPUOnline(1, false); err != nil {
		t.Errorf("second offline: %v, want the kernel's silent success", err)
	}
	cfg.NotHotpluggable = sysfs.CPUSet{}
	s = sysfstest.New(t, cfg)
	_ = s.SetCPUOnline(0, false)
	if err := s.SetCPUOnline(1, false); errnoOf(err) != syscall.EBUSY {
		t.Errorf("offline of the last online CPU: %v, want EBUSY", err)
	}
}

// TestCountsFollowTheIRQ: an IRQ's next interrupts are counted on its
// effective CPU, wherever it was moved.
func TestCountsFollowTheIRQ(t *testing.T) {
	s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	countOn := func(irq, cpu int) uint64 {
		t.Helper()
		in, err := s.FS().Interrupts()
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range in.IRQs {
			if r.IRQ == irq {
				n, ok := in.CountOn(i, cpu)
				if !ok {
					t.Fatalf("no column for CPU %d", cpu)
				}
				return n
			}
		}
		t.Fatalf("IRQ %d not listed", irq)
		return 0
	}
	if err := s.WriteAffinity(21, cpus("3")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCounts(21, 100); err != nil {
		t.Fatal(err)
	}
	if got, was := countOn(21, 3), countOn(21, 1); got != 100 || was != 2 {
		t.Errorf("IRQ 21 counts CPU3 %d, CPU1 %d; want 100 and the 2 from before the move", got, was)
	}
	if err := s.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	_, eff, _ := s.State(21)
	if err := s.AddCounts(21, 7); err != nil {
		t.Fatal(err)
	}
	if got := countOn(21, eff.First()); got < 7 {
		t.Errorf("after the kernel moved IRQ 21 to CPU %s its count there is %d", eff, got)
	}
	if err := s.AddCounts(11, 10); err != nil {
		t.Fatal(err)
	}
	if got := countOn(11, 0); got != 565 {
		t.Errorf("per-CPU IRQ 11 on CPU0 = %d, want 555+10", got)
	}
	if got := readTree(t, s, "sys/kernel/irq/21/per_cpu_count"); got != "0,2,0,100\n" && !strings.HasSuffix(got, ",100\n") {
		t.Errorf("per_cpu_count = %q: the offline CPU keeps its count", got)
	}
}

func TestHooks(t *testing.T) {
	t.Run("CPU offline at the write", func(t *testing.T) {
		s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
		s.OfflineAtWrite(13, 2)
		err := s.WriteAffinity(13, cpus("2"))
		if !errors.Is(err, sysfs.ErrStaleMask) {
			t.Fatalf("err = %v, want ErrStaleMask", err)
		}
		ws := s.Writes()
		if len(ws) != 1 || ws[0].Online.Contains(2) {
			t.Errorf("write log %+v: the write should have met CPU2 offline", ws)
		}
		if err := s.WriteAffinity(13, cpus("2")); !errors.Is(err, sysfs.ErrStaleMask) {
			t.Errorf("second write: %v", err)
		}
		if err := s.WriteAffinity(13, cpus("1")); err != nil {
			t.Errorf("the hook ran twice: %v", err)
		}
	})
	t.Run("IRQ freed at the write", func(t *testing.T) {
		s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
		s.RemoveAtWrite(21)
		if err := s.WriteAffinity(21, cpus("3")); !errors.Is(err, sysfs.ErrGone) {
			t.Fatalf("err = %v, want ErrGone", err)
		}
		if _, err := os.Stat(filepath.Join(s.ProcDir(), "irq", "21")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/proc/irq/21 still there: %v", err)
		}
		if slices.Contains(rowNumbers(snapshot(t, s).Interrupts), 21) {
			t.Error("/proc/interrupts still lists IRQ 21")
		}
		if _, err := s.ReadEffective(21); !errors.Is(err, sysfs.ErrGone) {
			t.Errorf("ReadEffective = %v, want ErrGone", err)
		}
	})
	t.Run("EBUSY once", func(t *testing.T) {
		s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
		s.FailWrites(sysfstest.AnyIRQ, syscall.EBUSY, 1)
		if err := s.WriteAffinity(20, cpus("3")); !errors.Is(err, sysfs.ErrTransient) {
			t.Fatalf("first write: %v, want ErrTransient", err)
		}
		if err := s.WriteAffinity(20, cpus("3")); err != nil {
			t.Fatalf("second write: %v", err)
		}
	})
	t.Run("ENOSPC always", func(t *testing.T) {
		s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
		s.FailWrites(20, syscall.ENOSPC, sysfstest.Always)
		for range 3 {
			if err := s.WriteAffinity(20, cpus("3")); !errors.Is(err, sysfs.ErrNoSpace) {
				t.Fatalf("err = %v, want ErrNoSpace", err)
			}
		}
		if err := s.WriteAffinity(21, cpus("3")); err != nil {
			t.Errorf("another IRQ: %v", err)
		}
	})
	t.Run("unclassified errno", func(t *testing.T) {
		s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel61))
		s.FailWrites(20, syscall.EFAULT, 1)
		err := s.WriteAffinity(20, cpus("3"))
		if !errors.Is(err, sysfs.ErrWrite) || sysfs.WriteClass(err) != nil || sysfs.WriteClassName(err) != "other" {
			t.Errorf("err = %v (class %v)", err, sysfs.WriteClass(err))
		}
	})
}

func TestMachineShape(t *testing.T) {
	cfg := sysfstest.Config{
		Possible: 8, Present: 6, Offline: cpus("5"), NotHotpluggable: cpus("0"),
		Isolated: cpus("4"), NohzFull: cpus("4-5"),
		Nodes: []sysfs.CPUSet{cpus("0-2"), cpus("3-5")},
		IRQs:  []sysfstest.IRQ{sysfstest.SPI(40, 72, "Level", "eth0")},
	}
	s := sysfstest.New(t, cfg)
	info, err := s.FS().CPUInfo()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		got  sysfs.CPUSet
		want string
	}{
		"possible": {info.Possible, "0-7"}, "present": {info.Present, "0-5"}, "online": {info.Online, "0-4"},
		"hotpluggable": {info.Hotpluggable, "1-5"}, "isolated": {info.Isolated, "4"}, "nohz_full": {info.NohzFull, "4-5"},
	} {
		if c.got.String() != c.want {
			t.Errorf("%s = %s, want %s", name, c.got, c.want)
		}
	}
	if info.Node[2] != 0 || info.Node[3] != 1 || info.Node[5] != 1 {
		t.Errorf("nodes = %v", info.Node)
	}
	if got := readTree(t, s, "proc/irq/40/smp_affinity"); got != "ff\n" {
		t.Errorf("smp_affinity = %q, want nr_cpu_ids bits", got)
	}
	in, err := s.FS().Interrupts()
	if err != nil || !slices.Equal(in.CPUs, []int{0, 1, 2, 3, 4}) {
		t.Errorf("header = %v, %v", in.CPUs, err)
	}
	if _, err := sysfstest.Build(t.TempDir(), sysfstest.Config{Possible: 2, IRQs: []sysfstest.IRQ{
		sysfstest.SPI(3, 40, "Level", "x"), sysfstest.SPI(3, 41, "Level", "y"),
	}}); err == nil {
		t.Error("duplicate IRQ accepted")
	}
}

func TestReadOnlyFiles(t *testing.T) {
	for _, v := range versions {
		s := sysfstest.New(t, sysfstest.VM4(v))
		ro := s.ReadOnlyFiles()
		if v == sysfstest.Kernel61 {
			if len(ro) != 0 {
				t.Errorf("6.1 read-only affinity files: %v", ro)
			}
			continue
		}
		if !slices.Contains(ro, "proc/irq/26/smp_affinity_list") || !slices.Contains(ro, "proc/irq/11/smp_affinity") ||
			slices.Contains(ro, "proc/irq/13/smp_affinity_list") {
			t.Errorf("6.12 read-only affinity files: %v", ro)
		}
		for _, rel := range ro {
			info, err := os.Stat(filepath.Join(s.Root(), rel))
			if err != nil || info.Mode().Perm() != 0o444 {
				t.Errorf("%s: %v %v", rel, info.Mode(), err)
			}
		}
	}
}

// TestMatchesCapturedVM compares the 6.12 preset with the tree captured from
// the real VM (tests/testdata, another engineer's capture), before and
// after CPU2 went offline: same rows, chips, hwirqs, actions, masks,
// effective CPUs and read-only files. Counts differ and are ignored.
func TestMatchesCapturedVM(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		offline []int
	}{
		{"vm-gicv3-4cpu", nil},
		{"vm-gicv3-4cpu-cpu2-offline", []int{2}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			root := filepath.Join("..", "..", "tests", "testdata", tc.dir)
			if _, err := os.Stat(filepath.Join(root, "proc", "interrupts")); err != nil {
				t.Skipf("no captured tree: %v", err)
			}
			real, err := sysfs.NewFS(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := real.Snapshot(sysfs.SnapshotOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
			for _, cpu := range tc.offline {
				if err := s.SetCPUOnline(cpu, false); err != nil {
					t.Fatal(err)
				}
			}
			got := snapshot(t, s)
			if !got.CPUs.Online.Equal(want.CPUs.Online) || !slices.Equal(got.Interrupts.CPUs, want.Interrupts.CPUs) {
				t.Errorf("online %s header %v, captured %s %v", got.CPUs.Online, got.Interrupts.CPUs, want.CPUs.Online, want.Interrupts.CPUs)
			}
			if g, w := rowNumbers(got.Interrupts), rowNumbers(want.Interrupts); !slices.Equal(g, w) {
				t.Fatalf("rows %v, captured %v", g, w)
			}
			if !mapsEqual(got.IRQNodes, want.IRQNodes) {
				t.Errorf("IRQ nodes %v, captured %v", got.IRQNodes, want.IRQNodes)
			}
			for i, w := range want.Interrupts.IRQs {
				g := got.Interrupts.IRQs[i]
				if g.Chip != w.Chip || g.HWIRQ != w.HWIRQ || g.Trigger != w.Trigger || !slices.Equal(g.Actions, w.Actions) {
					t.Errorf("IRQ %d: %s %d %s %v, captured %s %d %s %v", w.IRQ, g.Chip, g.HWIRQ, g.Trigger, g.Actions, w.Chip, w.HWIRQ, w.Trigger, w.Actions)
				}
				ga, wa := got.Affinity[w.IRQ], want.Affinity[w.IRQ]
				gNode, gHint := procIRQ(t, s.ProcDir(), w.IRQ)
				wNode, wHint := procIRQ(t, filepath.Join(root, "proc"), w.IRQ)
				if !ga.Affinity.Equal(wa.Affinity) || !ga.Effective.Equal(wa.Effective) || gNode != wNode || !gHint.Equal(wHint) {
					t.Errorf("IRQ %d: affinity %s effective %s node %d hint %s, captured %s %s %d %s", w.IRQ,
						ga.Affinity, ga.Effective, gNode, gHint, wa.Affinity, wa.Effective, wNode, wHint)
				}
			}
			modes := readModes(t, filepath.Join(root, "MODES"))
			for _, rel := range s.ReadOnlyFiles() {
				if modes[rel] != "0444" {
					t.Errorf("%s is read-only in the simulator, %q in the capture", rel, modes[rel])
				}
			}
			for rel, mode := range modes {
				if strings.HasPrefix(rel, "proc/irq/") && strings.HasSuffix(rel, "/smp_affinity_list") && mode == "0444" &&
					!slices.Contains(s.ReadOnlyFiles(), rel) {
					t.Errorf("%s is read-only in the capture, not in the simulator", rel)
				}
			}
		})
	}
}

// readModes reads a MODES file: "0444 proc/irq/26/smp_affinity_list" lines.
func readModes(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mode, rel, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if ok {
			out[strings.TrimSpace(rel)] = mode
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDenyWrites: after DenyWrites the simulator is a process without root.
// Every write fails at open with EACCES, classed ErrPermission and never
// ErrUnmovable, whether the IRQ is movable or not; nothing changes; the
// check before writing fails the way sysfs.FS.CheckWriteAccess does.
func TestDenyWrites(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			s := sysfstest.New(t, sysfstest.VM4(v))
			if err := s.CheckWriteAccess(); err != nil {
				t.Fatalf("CheckWriteAccess before DenyWrites: %v", err)
			}
			s.OfflineAtWrite(13, 2) // must not run: the kernel never sees the write
			s.DenyWrites()
			for _, irq := range []int{13, 21, 26, 11} { // SPI, MSI, managed, per-CPU
				before, beforeEff, _ := s.State(irq)
				err := s.WriteAffinity(irq, cpus("3"))
				if !errors.Is(err, sysfs.ErrPermission) || !errors.Is(err, sysfs.ErrWrite) || errnoOf(err) != syscall.EACCES ||
					errors.Is(err, sysfs.ErrUnmovable) || sysfs.WriteClassName(err) != "permission" {
					t.Errorf("IRQ %d (%s): %v, want ErrPermission with EACCES and no other class", irq, s.Kind(irq), err)
				}
				if aff, eff, _ := s.State(irq); !aff.Equal(before) || !eff.Equal(beforeEff) {
					t.Errorf("IRQ %d moved to %s/%s", irq, aff, eff)
				}
			}
			if !s.Online().Equal(cpus("0-3")) {
				t.Errorf("the hook ran: online %s", s.Online())
			}
			if ws := s.Writes(); len(ws) != 4 || ws[0].Errno != syscall.EACCES || ws[0].Err == nil {
				t.Errorf("write log %+v, want four EACCES", ws)
			}
			if err := s.RemoveIRQ(20); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteAffinity(20, cpus("1")); !errors.Is(err, sysfs.ErrGone) {
				t.Errorf("freed IRQ: %v, want ErrGone (open finds no file first)", err)
			}

			err := s.SetCPUOnline(2, false)
			if !errors.Is(err, sysfs.ErrPermission) || !errors.Is(err, sysfs.ErrWrite) || errnoOf(err) != syscall.EACCES {
				t.Errorf("SetCPUOnline: %v, want ErrPermission with EACCES", err)
			}
			if err := s.SetCPUOnline(3, true); !errors.Is(err, sysfs.ErrPermission) {
				t.Errorf("SetCPUOnline of an online CPU: %v, want ErrPermission (open fails first)", err)
			}
			if !s.Online().Equal(cpus("0-3")) {
				t.Errorf("online %s after refused writes", s.Online())
			}

			err = s.CheckWriteAccess()
			// 6.12: IRQs 1-12 are per-CPU, their files 0444; 13 is the
			// first the kernel would let root write.
			first := 1
			if v == sysfstest.Kernel612 {
				first = 13
			}
			path := filepath.Join(s.ProcDir(), "irq", strconv.Itoa(first), "smp_affinity_list")
			want := "writing IRQ affinity needs root (" + path + ": permission denied)"
			if !errors.Is(err, sysfs.ErrPermission) || err.Error() != want {
				t.Errorf("CheckWriteAccess = %v, want %q", err, want)
			}
			// Reading still works.
			snapshot(t, s)
		})
	}
}

// TestRefusalsNeedNoPrivilege: the simulated process is root, whatever
// the test process is, so the kernel's refusals (EPERM on 6.12, whose
// files are 0444) stay ErrUnmovable, never ErrPermission.
func TestRefusalsNeedNoPrivilege(t *testing.T) {
	s := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	err := s.WriteAffinity(26, cpus("1"))
	if !errors.Is(err, sysfs.ErrUnmovable) || errors.Is(err, sysfs.ErrPermission) || errnoOf(err) != syscall.EPERM {
		t.Errorf("managed IRQ on 6.12: %v, want ErrUnmovable with EPERM", err)
	}
}
