package affinity_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// These tests drive the engine the way the daemon does after every CPU
// event (daemon.settle): the kernel has already moved the IRQs off a CPU
// that went offline (GIC SPIs to the lowest online CPU of their mask, ITS
// MSIs to the least-loaded one), then Load, ProbePins and Rebalance run on
// the new snapshot.

// server8 is an 8-CPU arm64 server just after boot: the timer (per-CPU),
// six wired SPIs with the kernel's default mask (all on CPU0), twelve ITS
// MSIs placed least-loaded, a network device's two queues whose driver
// resets their masks after every hotplug (as virtio-net does), a managed
// NVMe queue bound to CPU5 and an SPI without a driver.
func server8(v sysfstest.Version) sysfstest.Config {
	irqs := []sysfstest.IRQ{
		sysfstest.PerCPU(11, "GICv3", 27, "Level", "arch_timer"),
		sysfstest.NoAction(12, "GICv3", 40, "Level").WithCounts(1),
	}
	for i, name := range []string{"uart-pl011", "rtc-pl031", "gpio", "i2c0", "spi0", "ahci"} {
		irqs = append(irqs, sysfstest.SPI(13+i, uint64(33+i), "Level", name))
	}
	for i := range 12 {
		irqs = append(irqs, sysfstest.MSI(30+i, "ITS-MSI", uint64(16384+i), fmt.Sprintf("mlx5_comp%d", i)))
	}
	irqs = append(irqs,
		sysfstest.MSI(50, "ITS-MSI", 32768, "virtio0-input.0").FollowingHotplug(),
		sysfstest.MSI(51, "ITS-MSI", 32769, "virtio0-output.0").FollowingHotplug(),
		sysfstest.Managed(60, "ITS-MSI", 49152, 5, "nvme0q1"),
	)
	return sysfstest.Config{Kernel: v, Possible: 8, IRQs: irqs}
}

// seq is an engine set up as the daemon sets it up, on a simulator.
type seq struct {
	t   *testing.T
	sim *sysfstest.Sim
	eng *affinity.Engine
}

func newSeq(t *testing.T, cfg sysfstest.Config) *seq {
	t.Helper()
	sim := sysfstest.New(t, cfg)
	return &seq{t: t, sim: sim, eng: affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, Hotplug: sim, TrackPins: true, CacheStaticCPUs: true})}
}

// settle is daemon.settle without the daemon: Load, ProbePins, Rebalance.
func (s *seq) settle() (*affinity.State, affinity.Plan, []affinity.Result) {
	s.t.Helper()
	st, err := s.eng.Load()
	if err != nil {
		s.t.Fatalf("Load: %v", err)
	}
	s.eng.ProbePins(st)
	fewest := fewestMoves(st, s.eng.Pins())
	before := st
	st, plan, results, err := s.eng.Rebalance(context.Background(), st)
	if err != nil {
		s.t.Fatalf("Rebalance: %v", err)
	}
	moved := 0
	for i, r := range results {
		if !r.Wrote() && r.Status != affinity.StatusUnmovable {
			s.t.Errorf("IRQ %d: %s to %s (%s)", r.IRQ, r.Status, r.To, r.Reason)
		}
		if r.Status == affinity.StatusUnmovable && s.sim.Kind(r.IRQ).Movable() {
			s.t.Errorf("movable IRQ %d refused: %s", r.IRQ, r.Reason)
		}
		// A narrowing write leaves the interrupt where it fires; a
		// rebalance move makes it fire elsewhere. (A pin restored to
		// several CPUs may do either: the chip picks.)
		m := plan.Moves[i]
		switch {
		case m.Narrow && r.Wrote() && r.Status != affinity.StatusNarrowed,
			m.Reason == "rebalance" && r.Wrote() && r.Status != affinity.StatusMoved:
			s.t.Errorf("IRQ %d: planned %+v, result %s", r.IRQ, m, r.Status)
		}
		if m.Reason == "rebalance" {
			moved++
		}
	}
	// Where no write was refused (which would make the engine plan a second
	// time), the plan moved exactly as many interrupts as evening the counts
	// needs: none that sits on an allowed CPU within its share.
	if st == before && moved != fewest {
		s.t.Errorf("the rebalance moved %d interrupts, the fewest that even the counts is %d: %+v", moved, fewest, plan.Moves)
	}
	return st, plan, results
}

// fewestMoves counts, from a state, the fewest movable unpinned IRQs that
// must change CPU for their counts per allowed CPU to differ by at most
// one: each allowed CPU keeps up to the share of those delivered to it,
// and CPUs over the share keep one more while there are extra places.
func fewestMoves(st *affinity.State, pins affinity.Pins) int {
	n, on := 0, map[int]int{}
	for _, irq := range st.IRQs {
		if !irq.Movable() {
			continue
		}
		if pin, ok := pins[affinity.Key(irq)]; ok && !pin.CPUs.Intersect(st.Allowed).IsEmpty() {
			continue
		}
		n++
		if w := irq.Where(); w.Len() == 1 && st.Allowed.Contains(w.First()) {
			on[w.First()]++
		}
	}
	share, extra := n/st.Allowed.Len(), n%st.Allowed.Len()
	keep, over := 0, 0
	for _, cpu := range st.Allowed.CPUs() {
		keep += min(on[cpu], share)
		if on[cpu] > share {
			over++
		}
	}
	return n - keep - min(extra, over)
}

// hotplug changes a CPU as the kernel does, and records the online set the
// way the daemon does for the batch.
func (s *seq) hotplug(cpu int, online bool) {
	s.t.Helper()
	if err := s.eng.SetCPUOnline(cpu, online); err != nil {
		s.t.Fatalf("cpu%d online=%v: %v", cpu, online, err)
	}
	s.eng.NoteTransient(s.sim.Online())
}

// check asserts, on the simulator's truth, what the daemon promises after a
// settle: no movable IRQ effective on an offline CPU; a pinned IRQ whose pin
// has an allowed CPU is effective within it; the other movable IRQs per
// allowed CPU differ by at most one; and a second rebalance plans nothing.
// It returns the movable unpinned IRQs per allowed CPU.
func (s *seq) check(step string) map[int]int {
	s.t.Helper()
	st, err := s.eng.Load()
	if err != nil {
		s.t.Fatalf("%s: Load: %v", step, err)
	}
	online := s.sim.Online()
	load := map[int]int{}
	for _, cpu := range st.Allowed.CPUs() {
		load[cpu] = 0
	}
	for _, irq := range st.IRQs {
		if !s.sim.Kind(irq.IRQ).Movable() {
			continue
		}
		_, eff, ok := s.sim.State(irq.IRQ)
		if !ok {
			continue
		}
		if eff.IsEmpty() || !eff.IsSubsetOf(online) {
			s.t.Errorf("%s: movable IRQ %d effective on %q, online %s", step, irq.IRQ, eff, online)
		}
		if pin, ok := s.eng.Pins()[affinity.Key(irq)]; ok {
			if within := pin.CPUs.Intersect(st.Allowed); !within.IsEmpty() {
				if !eff.IsSubsetOf(within) {
					s.t.Errorf("%s: IRQ %d pinned to %s is effective on %s", step, irq.IRQ, pin.CPUs, eff)
				}
				continue
			}
		}
		if eff.Len() != 1 {
			s.t.Errorf("%s: IRQ %d effective on %q, want one CPU", step, irq.IRQ, eff)
		}
		if _, ok := load[eff.First()]; !ok {
			s.t.Errorf("%s: IRQ %d on CPU %d, not allowed (%s)", step, irq.IRQ, eff.First(), st.Allowed)
		}
		load[eff.First()]++
	}
	lo, hi := -1, -1
	for _, n := range load {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	if hi-lo > 1 {
		s.t.Errorf("%s: movable unpinned IRQs per allowed CPU %v: max−min = %d, want ≤ 1", step, load, hi-lo)
	}
	planner := *s.eng.Planner() // a copy: the check must not move the cursor
	again, err := planner.Rebalance(st.IRQs, st.Allowed)
	if err != nil {
		s.t.Fatalf("%s: second Rebalance: %v", step, err)
	}
	if len(again.Moves) != 0 {
		s.t.Errorf("%s: a second rebalance plans %+v", step, again.Moves)
	}
	return load
}

// TestHotplugSequence offlines CPUs one at a time and brings them back one
// at a time, settling after each event as the daemon does.
func TestHotplugSequence(t *testing.T) {
	orders := []struct {
		name    string
		offline []int
		online  []int
	}{
		{"1,2,3,4 then back", []int{1, 2, 3, 4}, []int{1, 2, 3, 4}},
		{"7,6,5,4 then back reversed", []int{7, 6, 5, 4}, []int{4, 5, 6, 7}},
		{"CPU0 first", []int{0, 6, 3, 5}, []int{5, 0, 3, 6}},
		{"down to one CPU", []int{0, 1, 2, 3, 4, 5, 6}, []int{6, 5, 4, 3, 2, 1, 0}},
	}
	for _, v := range versions {
		for _, order := range orders {
			t.Run(v.String()+"/"+order.name, func(t *testing.T) {
				s := newSeq(t, server8(v))
				// An admin pin to CPU6, learned at start.
				if err := s.sim.WriteAffinity(14, cpus("6")); err != nil {
					t.Fatal(err)
				}
				s.settle()
				s.check("start")
				if pin, ok := s.pinOf(14); !ok || pin.String() != "6" {
					t.Fatalf("IRQ 14's pin to CPU6 not learned: %v %v", pin, ok)
				}
				for _, cpu := range order.offline {
					s.hotplug(cpu, false)
					s.settle()
					load := s.check(fmt.Sprintf("offline %d", cpu))
					if _, ok := load[cpu]; ok {
						t.Errorf("offline CPU %d still allowed", cpu)
					}
				}
				for _, cpu := range order.online {
					s.hotplug(cpu, true)
					s.settle()
					load := s.check(fmt.Sprintf("online %d", cpu))
					if load[cpu] == 0 {
						t.Errorf("online %d: CPU %d came back but holds no IRQ: %v", cpu, cpu, load)
					}
				}
				if _, eff, _ := s.sim.State(14); eff.String() != "6" {
					t.Errorf("pinned IRQ 14 ends on %s, want its pin 6", eff)
				}
				if pin, ok := s.pinOf(14); !ok || pin.String() != "6" || len(s.eng.Pins()) != 1 {
					t.Errorf("pins at the end %+v, want only IRQ 14 on 6", s.eng.Pins())
				}
			})
		}
	}
}

func (s *seq) pinOf(irq int) (sysfs.CPUSet, bool) {
	for _, p := range s.eng.Pins() {
		if p.IRQ == irq {
			return p.CPUs, true
		}
	}
	return sysfs.CPUSet{}, false
}

// manyCPUs is a large machine with fewer movable IRQs than CPUs: nspi SPIs
// on CPU0 (the kernel's default) and nmsi MSIs placed least-loaded.
func manyCPUs(v sysfstest.Version, ncpu, nspi, nmsi int) sysfstest.Config {
	irqs := []sysfstest.IRQ{sysfstest.PerCPU(11, "GICv3", 27, "Level", "arch_timer")}
	for i := range nspi {
		irqs = append(irqs, sysfstest.SPI(32+i, uint64(32+i), "Level", fmt.Sprintf("spi%d", i)))
	}
	for i := range nmsi {
		irqs = append(irqs, sysfstest.MSI(1000+i, "ITS-MSI", uint64(16384+i), fmt.Sprintf("eth0-%d", i)))
	}
	irqs = append(irqs, sysfstest.Managed(2000, "ITS-MSI", 49152, ncpu/2, "nvme0q1"))
	return sysfstest.Config{Kernel: v, Possible: ncpu, IRQs: irqs}
}

// TestShareZero: with fewer IRQs than CPUs every CPU holds zero or one
// movable IRQ, before and after CPUs go offline and return.
func TestShareZero(t *testing.T) {
	for _, size := range []struct{ cpus, spis, msis int }{{64, 10, 20}, {128, 24, 40}, {128, 100, 0}} {
		t.Run(fmt.Sprintf("%d CPUs %d SPIs %d MSIs", size.cpus, size.spis, size.msis), func(t *testing.T) {
			s := newSeq(t, manyCPUs(sysfstest.Kernel612, size.cpus, size.spis, size.msis))
			shareZero := func(step string) {
				t.Helper()
				load := s.check(step)
				holders := 0
				for cpu, n := range load {
					if n > 1 {
						t.Errorf("%s: CPU %d holds %d movable IRQs with fewer IRQs than CPUs", step, cpu, n)
					}
					holders += n
				}
				if want := size.spis + size.msis; holders != want {
					t.Errorf("%s: %d IRQs counted on allowed CPUs, want %d", step, holders, want)
				}
			}
			s.settle()
			shareZero("start")
			steps := []int{0, 1, size.cpus - 1, size.cpus / 2, 5}
			for _, cpu := range steps {
				s.hotplug(cpu, false)
				s.settle()
				shareZero(fmt.Sprintf("offline %d", cpu))
			}
			for _, cpu := range steps {
				s.hotplug(cpu, true)
				s.settle()
				shareZero(fmt.Sprintf("online %d", cpu))
			}
		})
	}
}

// TestHotplugRandomSequences runs seeded random machines (5 to 12 CPUs,
// SPIs and MSIs with default or hand-set masks, drivers that follow
// hotplug, managed queues bound to one CPU or spread over all, an admin
// pin) through random offline and online events, settling and checking
// after each. The seed is fixed: the same sequences every run.
func TestHotplugRandomSequences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 16 {
		ncpu := 5 + rng.IntN(8)
		all := make([]int, ncpu)
		for i := range all {
			all[i] = i
		}
		irqs := []sysfstest.IRQ{sysfstest.PerCPU(11, "GICv3", 27, "Level", "arch_timer")}
		nspi, nmsi, nfollow, nmanaged := 1+rng.IntN(9), rng.IntN(20), rng.IntN(3), rng.IntN(4)
		for i := range nspi {
			q := sysfstest.SPI(32+i, uint64(32+i), "Level", fmt.Sprintf("spi%d", i))
			if rng.IntN(3) == 0 {
				q = q.WithAffinity(rng.IntN(ncpu), rng.IntN(ncpu))
			}
			irqs = append(irqs, q)
		}
		for i := range nmsi {
			q := sysfstest.MSI(100+i, "ITS-MSI", uint64(16384+i), fmt.Sprintf("eth0-%d", i))
			if rng.IntN(3) == 0 {
				q = q.WithAffinity(rng.IntN(ncpu), rng.IntN(ncpu))
			}
			irqs = append(irqs, q)
		}
		for i := range nfollow {
			irqs = append(irqs, sysfstest.MSI(200+i, "ITS-MSI", uint64(20000+i), fmt.Sprintf("virtio0-input.%d", i)).FollowingHotplug())
		}
		for i := range nmanaged {
			q := sysfstest.Managed(300+i, "ITS-MSI", uint64(49152+i), rng.IntN(ncpu), fmt.Sprintf("nvme0q%d", i))
			if rng.IntN(3) == 0 {
				q = q.WithAffinity(all...) // one queue for the whole machine
			}
			irqs = append(irqs, q)
		}
		v := versions[rng.IntN(len(versions))]
		pinTo := -1
		if rng.IntN(2) == 0 {
			pinTo = rng.IntN(ncpu)
		}
		name := fmt.Sprintf("%d/%s/%d CPUs %d SPIs %d MSIs %d following %d managed pin %d", iter, v, ncpu, nspi, nmsi, nfollow, nmanaged, pinTo)
		events := make([]int, 2*ncpu)
		for i := range events {
			events[i] = rng.IntN(1 << 20)
		}
		t.Run(name, func(t *testing.T) {
			s := newSeq(t, sysfstest.Config{Kernel: v, Possible: ncpu, IRQs: irqs})
			if pinTo >= 0 {
				if err := s.sim.WriteAffinity(32, sysfs.NewCPUSet(pinTo)); err != nil {
					t.Fatal(err)
				}
			}
			s.settle()
			s.check("start")
			var offline []int
			for step, r := range events {
				online := s.sim.Online()
				if r%2 == 0 && online.Len() > 1 || len(offline) == 0 {
					cpu := online.CPUs()[(r/2)%online.Len()]
					s.hotplug(cpu, false)
					offline = append(offline, cpu)
					s.settle()
					s.check(fmt.Sprintf("step %d: offline %d", step, cpu))
					continue
				}
				i := (r / 2) % len(offline)
				cpu := offline[i]
				offline = slices.Delete(offline, i, i+1)
				s.hotplug(cpu, true)
				s.settle()
				s.check(fmt.Sprintf("step %d: online %d", step, cpu))
			}
		})
	}
}
