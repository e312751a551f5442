package affinity

import "github.com/irqshift/irqshift/sysfs"

// Summary counts the outcomes of an apply. The JSON documents, the tables
// and the daemon's log and metrics all print this one count.
type Summary struct {
	Planned   int `json:"planned"`
	Done      int `json:"done"`
	NotDone   int `json:"not_done"`
	Moved     int `json:"moved"`
	Narrowed  int `json:"narrowed"`
	Pending   int `json:"pending"`
	Failed    int `json:"failed"`
	Unmovable int `json:"unmovable"`
	Vanished  int `json:"vanished"`
}

// Summarize counts results: planned writes were planned, notDone of them
// were not attempted (an interruption).
func Summarize(planned int, results []Result, notDone int) Summary {
	s := Summary{Planned: planned, NotDone: notDone}
	for _, r := range results {
		if r.Wrote() {
			s.Done++
		}
		switch r.Status {
		case StatusMoved:
			s.Moved++
		case StatusNarrowed:
			s.Narrowed++
		case StatusPending:
			s.Pending++
		case StatusFailed:
			s.Failed++
		case StatusUnmovable:
			s.Unmovable++
		case StatusVanished:
			s.Vanished++
		}
	}
	return s
}

// MovablePerCPU counts the movable IRQs on each online CPU (each CPU an
// IRQ is effective on, else each of its mask): what irqshift keeps within
// one. Every online CPU has a count, 0 included.
func MovablePerCPU(irqs []IRQ, online sysfs.CPUSet) map[int]int {
	counts := make(map[int]int, online.Len())
	for _, cpu := range online.CPUs() {
		counts[cpu] = 0
	}
	for _, irq := range irqs {
		if !irq.Movable() {
			continue
		}
		for _, cpu := range irq.Where().CPUs() {
			if _, ok := counts[cpu]; ok {
				counts[cpu]++
			}
		}
	}
	return counts
}

// AfterPlan returns irqs as plan leaves them: each moved IRQ effective on
// the first CPU of its new mask, where a chip that delivers to one CPU
// puts it. A dry run shows the counts per CPU from it.
func AfterPlan(irqs []IRQ, plan Plan) []IRQ {
	to := make(map[int]sysfs.CPUSet, len(plan.Moves))
	for _, m := range plan.Moves {
		to[m.IRQ] = m.To
	}
	out := make([]IRQ, len(irqs))
	for i, irq := range irqs {
		if mask, ok := to[irq.IRQ]; ok && !mask.IsEmpty() {
			irq.Affinity = mask
			irq.Effective, irq.HasEffective = sysfs.NewCPUSet(mask.First()), true
		}
		out[i] = irq
	}
	return out
}
