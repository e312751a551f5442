package affinity

import (
	"context"
	"fmt"
	"math/rand/v2"
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
