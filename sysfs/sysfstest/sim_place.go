package sysfstest

// Where the chip delivers an IRQ: the GIC's first CPU or the ITS's least-loaded one.

import "github.com/irqshift/irqshift/sysfs"

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
