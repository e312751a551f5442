package affinity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// TestLoadChangedMatchesLoad drives simulated machines through random
// CPU offlines and onlines (one or a burst of them), IRQs freed and
// allocated by drivers, and drivers that rewrite their own masks on
// hotplug, and after each step compares what the daemon's quick path
// (LoadChanged, reading only what the step can have changed) sees with a
// full snapshot of a fresh engine: every IRQ's mask, effective CPUs,
// mode, node, chip and actions, and the online CPUs. The engine applies a
// rebalance after each step, and takes a full snapshot (the daemon's
// recheck) only after some, so that quick refreshes also build on quick
// ones.
func TestLoadChangedMatchesLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sysfstest.Config
		numa bool
	}{
		{"vm4-6.12", sysfstest.VM4(sysfstest.Kernel612), false},
		{"vm4-6.1", sysfstest.VM4(sysfstest.Kernel61), false},
		{"numa8", sysfstest.NUMA8(sysfstest.Kernel612), true},
		{"big-64x4", sysfstest.Big(64, 4, 300), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := sysfstest.New(t, tc.cfg)
			e := NewEngine(EngineConfig{FS: sim.FS(), Kernel: sim, Hotplug: sim, NUMA: tc.numa, TrackPins: true, CacheStaticCPUs: true})
			ctx := context.Background()
			st, err := e.Load()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := e.Rebalance(ctx, st); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(9, uint64(len(tc.name))))
			possible := st.Snapshot.CPUs.Possible.CPUs()
			nextIRQ := slices.Max(sim.IRQs()) + 1
			rereads, quick := 0, 0
			for step := range 60 {
				var changed sysfs.CPUSet
				var did []string
				for range 1 + rng.IntN(3) {
					cpu := possible[rng.IntN(len(possible))]
					online := !sim.Online().Contains(cpu)
					if !online && sim.Online().Len() == 1 {
						continue
					}
					if err := sim.SetCPUOnline(cpu, online); err != nil {
						continue // not hotpluggable
					}
					changed = changed.With(cpu)
					did = append(did, fmt.Sprintf("cpu%d=%v", cpu, online))
					e.NoteTransient(sim.Online()) // as the daemon does per event
				}
				switch rng.IntN(6) {
				case 0:
					irqs := sim.IRQs()
					irq := irqs[rng.IntN(len(irqs))]
					if sim.Kind(irq).Movable() {
						if err := sim.RemoveIRQ(irq); err != nil {
							t.Fatal(err)
						}
						did = append(did, fmt.Sprintf("free %d", irq))
					}
				case 1:
					spec := sysfstest.MSI(nextIRQ, "ITS-PCI-MSIX-0000:7f:00.0", uint64(nextIRQ), fmt.Sprintf("late%d", nextIRQ)).WithNode(rng.IntN(2))
					if err := sim.AddIRQ(spec); err != nil {
						t.Fatal(err)
					}
					did = append(did, fmt.Sprintf("alloc %d", nextIRQ))
					nextIRQ++
				}
				got, err := e.LoadChanged(changed)
				if err != nil {
					t.Fatalf("step %d (%v): %v", step, did, err)
				}
				if got.Snapshot.Incremental {
					quick++
					rereads += len(got.Snapshot.Reread)
				}
				want, err := NewEngine(EngineConfig{FS: sim.FS()}).Load()
				if err != nil {
					t.Fatal(err)
				}
				// Until the engine has seen a driver rewrite an IRQ's mask on
				// hotplug (in a full snapshot), it cannot know to read it.
				unknown := map[int]bool{}
				for _, irq := range sim.Followers() {
					unknown[irq] = !slices.ContainsFunc(e.Followers(), func(k string) bool { return strings.HasPrefix(k, fmt.Sprint(irq)+"/") })
				}
				if diff := stateDiff(got, want, unknown); diff != "" {
					t.Fatalf("step %d (%v): the quick snapshot differs from a full one: %s", step, did, diff)
				}
				if _, _, _, err := e.Rebalance(ctx, got); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(3) == 0 {
					// The recheck: a full snapshot that reuses the last one
					// (node files, the /proc/irq listing, reads overlapping
					// the parse) must see what a fresh one sees.
					full, err := e.Load()
					if err != nil {
						t.Fatal(err)
					}
					fresh, err := NewEngine(EngineConfig{FS: sim.FS()}).Load()
					if err != nil {
						t.Fatal(err)
					}
					if diff := stateDiff(full, fresh, nil); diff != "" {
						t.Fatalf("step %d (%v): the engine's full snapshot differs from a fresh one: %s", step, did, diff)
					}
				}
			}
			if quick < 30 {
				t.Errorf("only %d of 60 steps took the quick path", quick)
			}
			if n := len(sim.Followers()); len(e.Followers()) != n {
				t.Errorf("the engine learned the followers %v; the simulator has %d: %v", e.Followers(), n, sim.Followers())
			}
			t.Logf("%d quick snapshots read %d IRQs again in all (%d IRQs)", quick, rereads, len(sim.IRQs()))
		})
	}
}

// stateDiff describes how two states' IRQs and CPUs differ, ignoring
// counts (a quick snapshot keeps the full one's) and classes learned from
// refused writes.
func stateDiff(got, want *State, unknown map[int]bool) string {
	if !got.Snapshot.CPUs.Online.Equal(want.Snapshot.CPUs.Online) {
		return fmt.Sprintf("online %s, want %s", got.Snapshot.CPUs.Online, want.Snapshot.CPUs.Online)
	}
	gi := map[int]IRQ{}
	for _, irq := range got.IRQs {
		gi[irq.IRQ] = irq
	}
	if len(got.IRQs) != len(want.IRQs) {
		var g, w []int
		for _, irq := range got.IRQs {
			g = append(g, irq.IRQ)
		}
		for _, irq := range want.IRQs {
			w = append(w, irq.IRQ)
		}
		return fmt.Sprintf("IRQs %v, want %v", g, w)
	}
	for _, w := range want.IRQs {
		g, ok := gi[w.IRQ]
		switch {
		case ok && unknown[w.IRQ]:
		case !ok:
			return fmt.Sprintf("IRQ %d missing", w.IRQ)
		case !g.Affinity.Equal(w.Affinity), !g.Effective.Equal(w.Effective), g.HasEffective != w.HasEffective, g.ReadOnly != w.ReadOnly:
			return fmt.Sprintf("IRQ %d: mask %s effective %s (has %v, read-only %v), want %s %s (%v, %v)", w.IRQ,
				g.Affinity, g.Effective, g.HasEffective, g.ReadOnly, w.Affinity, w.Effective, w.HasEffective, w.ReadOnly)
		case g.Node != w.Node, g.Chip != w.Chip, !slices.Equal(g.Actions, w.Actions), g.HWIRQ != w.HWIRQ, g.HasHWIRQ != w.HasHWIRQ, g.Trigger != w.Trigger:
			return fmt.Sprintf("IRQ %d: %+v, want %+v", w.IRQ, g, w)
		}
	}
	return ""
}

// TestHotplugRereadsAfterOffline: after an offline, the quick path reads
// again exactly the IRQs that were effective on the CPU (the kernel moved
// them, or shut the managed ones down), whether or not the event names
// the CPU: its change is seen from the online list. With nothing changed
// it reads nothing. The result agrees with a full snapshot.
func TestHotplugRereadsAfterOffline(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.Big(64, 2, 512))
	e := NewEngine(EngineConfig{FS: sim.FS(), Kernel: sim, Hotplug: sim, NUMA: true})
	st, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	before := st.Snapshot.CPUs.Online
	if got := hotplugRereads(st.IRQs, before, before, sysfs.CPUSet{}, nil); len(got) != 0 {
		t.Errorf("nothing changed: reread %v, want none", got)
	}
	const cpu = 5
	var onCPU []int
	for _, irq := range st.IRQs {
		if irq.Effective.Contains(cpu) {
			onCPU = append(onCPU, irq.IRQ)
		}
	}
	if len(onCPU) == 0 {
		t.Fatal("no IRQ on CPU5: the test proves nothing")
	}
	if err := sim.SetCPUOnline(cpu, false); err != nil {
		t.Fatal(err)
	}
	online, err := sim.FS().OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if got := hotplugRereads(st.IRQs, before, online, sysfs.NewCPUSet(cpu), nil); !slices.Equal(got, onCPU) {
		t.Errorf("reread %v, want the IRQs that were on CPU%d: %v", got, cpu, onCPU)
	}
	if got := hotplugRereads(st.IRQs, before, online, sysfs.CPUSet{}, nil); !slices.Equal(got, onCPU) {
		t.Errorf("without naming CPU%d: reread %v, want %v", cpu, got, onCPU)
	}
	got, err := e.LoadChanged(sysfs.CPUSet{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Snapshot.Incremental || !slices.Equal(got.Snapshot.Reread, onCPU) {
		t.Errorf("LoadChanged: incremental %v, reread %v, want %v", got.Snapshot.Incremental, got.Snapshot.Reread, onCPU)
	}
	want, err := NewEngine(EngineConfig{FS: sim.FS()}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := stateDiff(got, want, nil); diff != "" {
		t.Errorf("the quick snapshot differs from a full one: %s", diff)
	}
}

// TestLoadChangedRereadPolicy: which IRQs an event makes the quick path
// read again is decided in affinity, from its classification of the last
// snapshot, not from the raw files in sysfs. On a GICv5 machine, CPU3
// goes offline:
//
//   - the arch_timer PPI shows CPU3 as its effective CPU: read alone, its
//     files (a non-empty effective affinity on the CPU that changed) would
//     have it read again, but classify knows it per-CPU by its chip, and a
//     per-CPU IRQ is never read again;
//   - the rtc's mask is CPU3 while its effective CPU says 0: it is read
//     again because its mask kept no online CPU;
//   - the managed queue of CPU3 is read again (effective on it);
//   - the uart, written since the last snapshot, and a virtio-rng IRQ
//     known to follow hotplug (the IRQs of also) are read again although
//     the event did not touch their CPUs;
//   - nothing else is.
//
// The result agrees with a full snapshot but for the virtio-net IRQs,
// whose driver rewrites their masks on hotplug, which the engine has not
// learned yet.
func TestLoadChangedRereadPolicy(t *testing.T) {
	const (
		cpu      = 3
		ppi      = 35 // GICv5-PPI arch_timer
		rtc      = 39 // GICv5-SPI
		uart     = 38 // GICv5-SPI, written after the snapshot
		follower = 41 // virtio1-config
		managed  = 47 // virtio2-req.3, bound to CPU3
	)
	sim := sysfstest.New(t, sysfstest.GICv5VM4())
	fs := sim.FS()
	overwrite := func(irq int, name, content string) {
		t.Helper()
		path := fs.ProcPath("irq", fmt.Sprint(irq), name)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	overwrite(ppi, "effective_affinity_list", fmt.Sprintf("%d\n", cpu))
	if err := sim.WriteAffinity(rtc, sysfs.NewCPUSet(cpu)); err != nil {
		t.Fatal(err)
	}
	overwrite(rtc, "effective_affinity_list", "0\n")
	e := NewEngine(EngineConfig{FS: fs, Kernel: sim, Hotplug: sim})
	st, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	byNumber := map[int]IRQ{}
	for _, irq := range st.IRQs {
		byNumber[irq.IRQ] = irq
	}
	if p := byNumber[ppi]; p.Class != ClassPerCPU || !p.HasEffective || !p.Effective.Equal(sysfs.NewCPUSet(cpu)) {
		t.Fatalf("IRQ %d: %s, effective %s (has %v); want per-CPU with CPU%d effective", ppi, p.Class, p.Effective, p.HasEffective, cpu)
	}
	if r := byNumber[rtc]; r.Class != ClassMovable || !r.Affinity.Equal(sysfs.NewCPUSet(cpu)) || !r.Effective.Equal(sysfs.NewCPUSet(0)) {
		t.Fatalf("IRQ %d: %s, mask %s, effective %s; want movable, %d, 0", rtc, r.Class, r.Affinity, r.Effective, cpu)
	}
	if m := byNumber[managed]; m.Class != ClassManaged || !m.Effective.Equal(sysfs.NewCPUSet(cpu)) {
		t.Fatalf("IRQ %d: %s, effective %s; want managed on CPU%d", managed, m.Class, m.Effective, cpu)
	}
	for _, n := range []int{uart, follower} {
		if irq := byNumber[n]; irq.Where().Contains(cpu) || !irq.Affinity.Intersects(st.Allowed.Without(cpu)) {
			t.Fatalf("IRQ %d (mask %s, effective %s) is on CPU%d: the test proves nothing", n, irq.Affinity, irq.Effective, cpu)
		}
	}
	// The raw files alone (sysfs's old rule: per-CPU only with an empty
	// effective affinity) would have read the PPI again.
	if files := st.Snapshot.Affinity[ppi]; !files.HasEffective || files.Effective.IsEmpty() || !files.Effective.Contains(cpu) {
		t.Fatalf("IRQ %d's files: %+v; want a non-empty effective affinity on CPU%d", ppi, files, cpu)
	}
	if err := e.writer().WriteAffinity(uart, sysfs.NewCPUSet(1)); err != nil {
		t.Fatal(err)
	}
	e.followers = map[int]string{follower: Key(byNumber[follower])}
	if err := sim.SetCPUOnline(cpu, false); err != nil {
		t.Fatal(err)
	}
	got, err := e.LoadChanged(sysfs.NewCPUSet(cpu))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{uart, rtc, follower, managed}; !got.Snapshot.Incremental || !slices.Equal(got.Snapshot.Reread, want) {
		t.Errorf("incremental %v, reread %v; want %v (not the per-CPU %d)", got.Snapshot.Incremental, got.Snapshot.Reread, want, ppi)
	}
	full, err := NewEngine(EngineConfig{FS: fs}).Load()
	if err != nil {
		t.Fatal(err)
	}
	unknown := map[int]bool{}
	for _, irq := range sim.Followers() {
		unknown[irq] = irq != follower
	}
	if diff := stateDiff(got, full, unknown); diff != "" {
		t.Errorf("the quick snapshot differs from a full one: %s", diff)
	}
}
