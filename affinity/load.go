package affinity

import (
	"fmt"
	"slices"

	"github.com/irqshift/irqshift/sysfs"
)

// The thresholds of rate-aware placement (Balance "load").
const (
	// MinBusyRate is the lowest rate, in interrupts a second, at which an
	// IRQ counts as busy, and the least a move for load must take off the
	// busiest CPU. Below it an interrupt costs a CPU nothing measurable
	// (a handful of microseconds a second), and rates that low are
	// within the noise of a one-second sample of an idle device.
	MinBusyRate = 5.0
	// BusyFraction makes an IRQ busy only at a tenth of the busiest IRQ's
	// rate or more: beside NIC queues at 20 000/s, a management port at
	// 50/s is not worth a CPU of its own, while in a quiet machine the
	// few IRQs that fire at all still are.
	BusyFraction = 0.1
	// SettleRatio is where cutting the busiest CPU stops: at 1.15 times a
	// lower bound of its rate (the home's mean rate, the busiest IRQ,
	// what stays put on a CPU), close enough to the best that another
	// move is not worth the cache it costs, or where no single move or
	// swap cuts it by MinBusyRate any more.
	SettleRatio = 1.15
	// MaterialCut is the hysteresis of a steady plan (Planner.Steady, the
	// daemon's plans after its first with rates): it moves IRQs for load
	// only when the moves together cut the busiest CPU's rate by a
	// quarter. The placement it keeps is one the planner chose, at or near
	// a local best, so rates that wobble by a few per cent, as a steady
	// device's do from one window to the next, open no such cut; a
	// one-window spike is filtered before the plan (RateHistory). An
	// imbalance an operator would notice is fixed.
	MaterialCut = 0.25
)

// busyThreshold is the rate at and above which an IRQ of irqs is busy:
// BusyFraction of the busiest one that is not per-CPU, and at least
// MinBusyRate.
func busyThreshold(irqs []IRQ) float64 {
	most := 0.0
	for _, irq := range irqs {
		if irq.Class != ClassPerCPU {
			most = max(most, irq.Rate)
		}
	}
	return max(MinBusyRate, BusyFraction*most)
}

// cpuRates is what the load-aware planner knows of each CPU while it
// places: the rate of the IRQs placed there so far and how many of them
// are busy. Indexed by CPU.
type cpuRates struct {
	rate      []float64
	busy      []int
	threshold float64
}

// newCPURates sizes the table for CPUs up to last and counts, on the
// CPUs of allowed, the IRQs the plan does not place but that fire there:
// device IRQs that cannot move (managed queues, banned IRQs) delivered to
// one CPU. Per-CPU IRQs fire everywhere and weigh on no CPU more than
// another.
func newCPURates(irqs []IRQ, allowed sysfs.CPUSet) *cpuRates {
	r := &cpuRates{rate: make([]float64, allowed.Last()+1), busy: make([]int, allowed.Last()+1), threshold: busyThreshold(irqs)}
	for i := range irqs {
		irq := &irqs[i]
		if irq.Movable() || irq.Class == ClassPerCPU || irq.Rate == 0 {
			continue
		}
		if cpu := deliveryCPU(irq); cpu >= 0 && allowed.Contains(cpu) {
			r.add(cpu, irq.Rate)
		}
	}
	return r
}

func (r *cpuRates) isBusy(rate float64) bool { return rate >= r.threshold }

// add counts an IRQ of the given rate on cpu; a CPU beyond the table (not
// allowed) is not tracked.
func (r *cpuRates) add(cpu int, rate float64) {
	if r == nil || cpu < 0 || cpu >= len(r.rate) {
		return
	}
	r.rate[cpu] += rate
	if r.isBusy(rate) {
		r.busy[cpu]++
	}
}

func (r *cpuRates) remove(cpu int, rate float64) {
	if r == nil || cpu < 0 || cpu >= len(r.rate) {
		return
	}
	r.rate[cpu] -= rate
	if r.isBusy(rate) {
		r.busy[cpu]--
	}
}

// placed is where the plan puts one IRQ of a group: why is "" for an IRQ
// kept on the CPU it is delivered to, else the move's reason.
type placed struct {
	irq *IRQ
	cpu int
	why string
}

// filler places the IRQs a group could not keep on the CPUs of its home
// so that the counts end as the water level says (waterLevel): a CPU takes
// IRQs while it is below the level, and one more while extra places are
// left. An idle IRQ goes to the CPU with the fewest IRQs, ties broken by
// the cursor, as the count-only planner does; a busy one to the CPU with
// the lowest rate among those with room, then the fewest IRQs, then the
// cursor.
type filler struct {
	home   sysfs.CPUSet
	count  []int
	rates  *cpuRates // nil: counts only
	level  int
	extra  int // places above the level still to give
	cursor *Cursor
	// steady keeps the cuts of the busiest CPU only when material
	// (Planner.Steady).
	steady bool
	// deferCuts skips the cuts of the busiest CPU (Planner.DeferCuts).
	deferCuts bool
	// lowest is the fewest IRQs on a CPU of home, -1 until known: counts
	// only grow while the filler places, so an idle IRQ's CPU is found
	// from it without a scan of home, as the count-only spreader does.
	lowest int
}

func newFiller(home sysfs.CPUSet, count []int, rates *cpuRates, level, extra int, cursor *Cursor, steady bool) *filler {
	return &filler{home: home, count: count, rates: rates, level: level, extra: extra, cursor: cursor, steady: steady, lowest: -1}
}

func (f *filler) findLowest() {
	f.lowest = -1
	for cpu := f.home.First(); cpu >= 0; cpu = f.home.Next(cpu) {
		if f.lowest < 0 || f.count[cpu] < f.lowest {
			f.lowest = f.count[cpu]
		}
	}
}

func (f *filler) room(cpu int) bool {
	return f.count[cpu] < f.level || (f.count[cpu] == f.level && f.extra > 0)
}

// place picks a CPU for irq, counts it there and returns it; -1 when no CPU
// of home has room (the counts were not those of a water level).
func (f *filler) place(irq *IRQ) int {
	byRate := f.rates != nil && f.rates.isBusy(irq.Rate)
	if !byRate {
		// The CPU with the fewest IRQs always has room while IRQs are
		// left to place.
		atLowest := func(cpu int) bool { return f.count[cpu] == f.lowest && f.room(cpu) }
		if f.lowest < 0 {
			f.findLowest()
		}
		cpu := f.cursor.Pick(f.home, atLowest)
		if cpu < 0 {
			f.findLowest()
			cpu = f.cursor.Pick(f.home, atLowest)
		}
		if cpu >= 0 {
			f.take(cpu, irq)
		}
		return cpu
	}
	best, bestCount := -1.0, -1
	for cpu := f.home.First(); cpu >= 0; cpu = f.home.Next(cpu) {
		if !f.room(cpu) {
			continue
		}
		rate := f.rates.rate[cpu]
		if bestCount < 0 || rate < best || (rate == best && f.count[cpu] < bestCount) {
			best, bestCount = rate, f.count[cpu]
		}
	}
	if bestCount < 0 {
		return -1
	}
	cpu := f.cursor.Pick(f.home, func(cpu int) bool {
		return f.room(cpu) && f.count[cpu] == bestCount && f.rates.rate[cpu] == best
	})
	f.take(cpu, irq)
	return cpu
}

// take counts irq on cpu.
func (f *filler) take(cpu int, irq *IRQ) {
	if f.count[cpu] == f.level {
		f.extra--
	}
	f.count[cpu]++
	f.rates.add(cpu, irq.Rate)
}

// busyFirst orders IRQs for placement by rate: busy ones first, the
// busiest first; then the others in IRQ order. With no rates it is IRQ
// order.
func busyFirst(irqs []*IRQ, rates *cpuRates) {
	slices.SortStableFunc(irqs, func(a, b *IRQ) int {
		ab, bb := rates.isBusy(a.Rate), rates.isBusy(b.Rate)
		switch {
		case ab && !bb:
			return -1
		case bb && !ab:
			return 1
		case ab && a.Rate != b.Rate:
			if a.Rate > b.Rate {
				return -1
			}
			return 1
		}
		return a.IRQ - b.IRQ
	})
}

// improve moves a group's IRQs for load, with the counts per CPU kept as
// they are (a move from a CPU one above the level to one at it, or a swap
// with an idle IRQ), in two passes:
//
//  1. While a CPU holds two busy IRQs, one of them of the group, and a CPU
//     of home holds none, a busy IRQ of the group goes there: the one
//     that moves anyway, else one that needs a write anyway (not alone on
//     its CPU yet), else the least busy.
//  2. The best move of one IRQ off the busiest CPU to another CPU (or
//     swap with a less busy IRQ there) is made, again and again, until
//     the busiest CPU is at or below SettleRatio times a lower bound of
//     what any placement could reach, or no move cuts it by MinBusyRate.
//     A steady plan takes these moves back unless together they cut the
//     busiest CPU's rate by MaterialCut.
//
// Each step takes a busy IRQ away from a sharing or cuts the busiest
// CPU's rate materially; nothing else moves, so a placement that is
// already good under steady load is left alone.
func (f *filler) improve(pl []placed, reason func(from, to int, x *IRQ, swap bool) string) {
	r := f.rates
	byCPU := make([][]int, len(f.count)) // indexes into pl, per CPU
	for i, p := range pl {
		byCPU[p.cpu] = append(byCPU[p.cpu], i)
	}
	moving := func(i int) bool { return pl[i].why != "" }
	needsWrite := func(i int) bool { return moving(i) || !settledOn(pl[i].irq, pl[i].cpu) }
	// journal records Loop 2's moves so that a steady plan can take them
	// back when together they do not cut the busiest CPU materially.
	type undo struct {
		i, from int
		why     string
	}
	var journal []undo
	recording := false
	move := func(i, to int, why string) {
		if recording {
			journal = append(journal, undo{i, pl[i].cpu, pl[i].why})
		}
		from := pl[i].cpu
		byCPU[from] = slices.DeleteFunc(byCPU[from], func(j int) bool { return j == i })
		byCPU[to] = append(byCPU[to], i)
		r.remove(from, pl[i].irq.Rate)
		r.add(to, pl[i].irq.Rate)
		f.count[from]--
		f.count[to]++
		if origin := deliveryCPU(pl[i].irq); to == origin {
			pl[i].why = ""
		} else {
			pl[i].why = why
		}
		pl[i].cpu = to
	}
	// direct reports whether one IRQ may go from a to b alone: a is one
	// above the level and b at it, so the counts stay a water level.
	direct := func(a, b int) bool { return f.count[a] == f.level+1 && f.count[b] == f.level }
	// idleOn returns the group's IRQ on b to swap back, -1 if none: an
	// idle one, preferring one that moves anyway, then one that needs a
	// write, then the least busy, then the lowest number.
	idleOn := func(b int) int {
		best := -1
		rank := func(i int) (int, float64, int) {
			return boolRank(!moving(i)) + boolRank(!needsWrite(i)), pl[i].irq.Rate, pl[i].irq.IRQ
		}
		for _, i := range byCPU[b] {
			if r.isBusy(pl[i].irq.Rate) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			w1, r1, n1 := rank(i)
			w2, r2, n2 := rank(best)
			if w1 < w2 || (w1 == w2 && (r1 < r2 || (r1 == r2 && n1 < n2))) {
				best = i
			}
		}
		return best
	}
	cpus := f.home.CPUs()
	limit := len(pl) + 1

	// 1. Busy IRQs that share a CPU while another CPU has none.
	for step := 0; step < limit; step++ {
		a, x := -1, -1
		for _, cpu := range cpus {
			if r.busy[cpu] < 2 || (a >= 0 && r.rate[cpu] <= r.rate[a]) {
				continue
			}
			if i := pickBusy(pl, byCPU[cpu], r, moving, needsWrite); i >= 0 {
				a, x = cpu, i
			}
		}
		if a < 0 {
			break
		}
		done := false
		for _, b := range quietCPUs(cpus, r, f.count) {
			if direct(a, b) {
				move(x, b, reason(a, b, pl[x].irq, false))
				done = true
				break
			}
			if y := idleOn(b); y >= 0 {
				move(x, b, reason(a, b, pl[x].irq, false))
				move(y, a, reason(b, a, pl[y].irq, true))
				done = true
				break
			}
		}
		if !done {
			break
		}
	}

	// 2. The busiest CPU is cut towards what any placement could reach
	// (SettleRatio of the bound) a move or a swap at a time; a steady plan
	// keeps the moves only if together they cut the busiest CPU's rate by
	// MaterialCut. A quick plan leaves this to the next full one.
	if f.deferCuts {
		return
	}
	bound := f.rateBound(pl)
	busiest := func() float64 {
		most := 0.0
		for _, cpu := range cpus {
			most = max(most, r.rate[cpu])
		}
		return most
	}
	before := busiest()
	if f.steady && bound > (1-MaterialCut)*before {
		// No placement takes a quarter off the busiest CPU: a steady
		// plan would take back whatever it found, so it does not look.
		return
	}
	recording = true
	for step := 0; step < limit; step++ {
		a := -1
		for _, cpu := range cpus {
			if (a < 0 || r.rate[cpu] > r.rate[a]) && slices.ContainsFunc(byCPU[cpu], func(i int) bool { return pl[i].irq.Rate > 0 }) {
				a = cpu
			}
		}
		if a < 0 {
			break
		}
		top := r.rate[a]
		if top <= SettleRatio*bound {
			break
		}
		// The best move of one IRQ of a to another CPU b of the home, or
		// swap of one of a with a less busy one of b: the one that leaves
		// the lower maximum of the two CPUs' new rates; ties to the
		// lower CPU and IRQ numbers, as the loops go.
		bestX, bestY, bestB, bestMax := -1, -1, -1, top
		for _, b := range coolest(cpus, a, r.rate, cutCandidates) {
			if r.rate[b] >= top {
				continue
			}
			for _, x := range byCPU[a] {
				xr := pl[x].irq.Rate
				if xr <= 0 {
					continue
				}
				if direct(a, b) {
					if newMax := max(top-xr, r.rate[b]+xr); newMax < bestMax {
						bestX, bestY, bestB, bestMax = x, -1, b, newMax
					}
				}
				for _, y := range byCPU[b] {
					if yr := pl[y].irq.Rate; yr < xr {
						if newMax := max(top-xr+yr, r.rate[b]+xr-yr); newMax < bestMax {
							bestX, bestY, bestB, bestMax = x, y, b, newMax
						}
					}
				}
			}
		}
		if bestX < 0 || top-bestMax < MinBusyRate {
			break
		}
		move(bestX, bestB, reason(a, bestB, pl[bestX].irq, false))
		if bestY >= 0 {
			move(bestY, a, reason(bestB, a, pl[bestY].irq, true))
		}
	}
	recording = false
	if f.steady && len(journal) > 0 && busiest() > (1-MaterialCut)*before {
		for k := len(journal) - 1; k >= 0; k-- {
			u := journal[k]
			move(u.i, u.from, u.why)
			pl[u.i].why = u.why
		}
	}
}

// rateBound is a lower bound of the busiest CPU's rate over the home: no
// placement of the group goes below the home's mean rate, the busiest of
// its IRQs, or what a CPU holds that the plan does not move.
func (f *filler) rateBound(pl []placed) float64 {
	r := f.rates
	total, bound := 0.0, 0.0
	for _, cpu := range f.home.CPUs() {
		total += r.rate[cpu]
		bound = max(bound, r.rate[cpu])
	}
	group := make([]float64, len(r.rate))
	most := 0.0
	for _, p := range pl {
		group[p.cpu] += p.irq.Rate
		most = max(most, p.irq.Rate)
	}
	// bound so far is the busiest CPU with the group; what stays is
	// without it.
	bound = 0
	for _, cpu := range f.home.CPUs() {
		bound = max(bound, r.rate[cpu]-group[cpu])
	}
	return max(bound, most, total/float64(f.home.Len()))
}

// cutCandidates is how many of the least busy CPUs a cut of the busiest
// one looks at: the best move or swap is nearly always onto one of the
// coolest, and looking at every CPU of a 256-CPU home made a first plan
// of 4096 IRQs take ten times as long.
const cutCandidates = 8

// coolest returns up to n CPUs of cpus other than skip, the lowest rate
// first (ties to the lower CPU).
func coolest(cpus []int, skip int, rate []float64, n int) []int {
	out := make([]int, 0, n+1)
	for _, cpu := range cpus {
		if cpu == skip {
			continue
		}
		i := len(out)
		for i > 0 && rate[out[i-1]] > rate[cpu] {
			i--
		}
		if i >= n {
			continue
		}
		out = slices.Insert(out, i, cpu)
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}

// pickBusy returns the busy IRQ of the group on a CPU (indexes into pl) to
// move away from a sharing: one that moves anyway, else one that needs a
// write anyway, else the least busy, then the lowest number; -1 if the
// group has no busy IRQ there.
func pickBusy(pl []placed, on []int, r *cpuRates, moving, needsWrite func(int) bool) int {
	best := -1
	for _, i := range on {
		if !r.isBusy(pl[i].irq.Rate) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		w1 := boolRank(!moving(i)) + boolRank(!needsWrite(i))
		w2 := boolRank(!moving(best)) + boolRank(!needsWrite(best))
		r1, r2 := pl[i].irq.Rate, pl[best].irq.Rate
		if w1 < w2 || (w1 == w2 && (r1 < r2 || (r1 == r2 && pl[i].irq.IRQ < pl[best].irq.IRQ))) {
			best = i
		}
	}
	return best
}

// quietCPUs returns the CPUs of cpus that hold no busy IRQ, the lowest rate
// first, then the fewest IRQs, then the lowest number.
func quietCPUs(cpus []int, r *cpuRates, count []int) []int {
	var quiet []int
	for _, cpu := range cpus {
		if r.busy[cpu] == 0 {
			quiet = append(quiet, cpu)
		}
	}
	slices.SortStableFunc(quiet, func(a, b int) int {
		switch {
		case r.rate[a] < r.rate[b]:
			return -1
		case r.rate[a] > r.rate[b]:
			return 1
		}
		return count[a] - count[b]
	})
	return quiet
}

// LoadReasonPrefix begins the Reason of every move made for load.
const LoadReasonPrefix = "load: "

// loadReason is the Reason of a move made for load: one that takes a busy
// IRQ away from another, cuts a CPU's rate, or makes room for such a move.
func loadReason(r *cpuRates) func(from, to int, x *IRQ, swap bool) string {
	return func(from, to int, x *IRQ, swap bool) string {
		if swap {
			return fmt.Sprintf(LoadReasonPrefix+"makes room on CPU %d for a busy IRQ", from)
		}
		return fmt.Sprintf(LoadReasonPrefix+"%.0f/s off CPU %d (%.0f/s) to CPU %d (%.0f/s)", x.Rate, from, r.rate[from], to, r.rate[to])
	}
}
