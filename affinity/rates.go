package affinity

import (
	"fmt"
	"slices"
	"time"
)

// Balance is what the planner evens out among the CPUs of a home.
type Balance string

const (
	// BalanceLoad (the default) keeps the count of IRQs per CPU within one
	// and, among the placements that do, puts busy IRQs on distinct CPUs
	// and keeps the busiest CPU's rate low.
	BalanceLoad Balance = "load"
	// BalanceCount looks at counts only, as irqshift did before it
	// measured rates.
	BalanceCount Balance = "count"
)

// Balances lists every Balance, for help texts and checks.
var Balances = []Balance{BalanceLoad, BalanceCount}

// ParseBalance parses a --balance value.
func ParseBalance(text string) (Balance, error) {
	for _, b := range Balances {
		if string(b) == text {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown balance %q (want %s or %s)", text, BalanceLoad, BalanceCount)
}

// Rates are interrupts per second by IRQ, keyed by Key(irq) so that a
// number reused by another device does not inherit the old one's rate.
type Rates map[string]float64

// MinRateWindow is the shortest window a rate is measured over: a rate
// from a few milliseconds between two snapshots is noise (one interrupt
// more or less is hundreds a second).
const MinRateWindow = 500 * time.Millisecond

// MeasureRates returns the rate of every IRQ of after that before also
// has (same Key), from the growth of its total between the two states
// (State.Taken). An IRQ whose total went down (freed and allocated again,
// or a CPU's column gone with it) gets no rate. It returns nil when either
// snapshot is incremental (its counts are older than its masks) or the
// window is shorter than MinRateWindow.
func MeasureRates(before, after *State) Rates {
	if before == nil || after == nil || before.Snapshot == nil || after.Snapshot == nil ||
		before.Snapshot.Incremental || after.Snapshot.Incremental {
		return nil
	}
	window := after.Taken.Sub(before.Taken)
	if window < MinRateWindow {
		return nil
	}
	old := make(map[string]uint64, len(before.IRQs))
	for _, irq := range before.IRQs {
		old[Key(irq)] = irq.Total
	}
	rates := make(Rates, len(after.IRQs))
	for _, irq := range after.IRQs {
		key := Key(irq)
		was, ok := old[key]
		if !ok || irq.Total < was {
			continue
		}
		rates[key] = float64(irq.Total-was) / window.Seconds()
	}
	return rates
}

// RateHistory keeps the rates of the last three windows and gives, per
// IRQ, their median: an IRQ counts at a rate it held in at least two of
// the three, so that one window's spike (or dip) moves nothing. With two
// windows it is the lower rate, with one that window's.
type RateHistory struct {
	windows []Rates
}

// rateWindows is how many windows RateHistory keeps.
const rateWindows = 3

// Add records the rates of a new window; nil is ignored.
func (h *RateHistory) Add(r Rates) {
	if r == nil {
		return
	}
	h.windows = append(h.windows, r)
	if len(h.windows) > rateWindows {
		h.windows = slices.Delete(h.windows, 0, len(h.windows)-rateWindows)
	}
}

// Windows is how many windows the history holds (at most three).
func (h *RateHistory) Windows() int { return len(h.windows) }

// Smoothed returns the per-IRQ rate to plan with. An IRQ missing from a
// window (it was new then) counts from the windows that have it.
func (h *RateHistory) Smoothed() Rates {
	if len(h.windows) == 0 {
		return nil
	}
	last := h.windows[len(h.windows)-1]
	out := make(Rates, len(last))
	var seen [rateWindows]float64
	for key := range last {
		n := 0
		for _, w := range h.windows {
			if r, ok := w[key]; ok {
				seen[n] = r
				n++
			}
		}
		vals := seen[:n]
		slices.Sort(vals)
		switch n {
		case 1, 2:
			out[key] = vals[0]
		default:
			out[key] = vals[n/2]
		}
	}
	return out
}

// Load is where the movable IRQs' interrupts land: what the daemon's
// metrics, `list` and `top` show, and what the load tests measure.
type Load struct {
	// PerCPU is interrupts per second by CPU. An IRQ delivered to several
	// CPUs counts equally on each.
	PerCPU map[int]float64
	// Total is every movable IRQ's rate, and Busiest the highest of one IRQ.
	Total, Busiest float64
	// OnOffline counts movable IRQs delivered to a CPU that is offline:
	// an effective affinity with an offline CPU, or, where the kernel
	// gives none, a mask without an online CPU.
	OnOffline int
}

// MeasureLoad sums the movable IRQs' rates (IRQ.Rate) of st per CPU.
func MeasureLoad(st *State) Load {
	load := Load{PerCPU: map[int]float64{}}
	online := st.Snapshot.CPUs.Online
	for _, irq := range st.IRQs {
		if !irq.Movable() {
			continue
		}
		where := irq.Where()
		if irq.HasEffective && !irq.Effective.IsEmpty() {
			if !irq.Effective.IsSubsetOf(online) {
				load.OnOffline++
			}
		} else if where.Intersect(online).IsEmpty() {
			load.OnOffline++
		}
		load.Total += irq.Rate
		load.Busiest = max(load.Busiest, irq.Rate)
		if n := where.Len(); n > 0 {
			for _, cpu := range where.CPUs() {
				load.PerCPU[cpu] += irq.Rate / float64(n)
			}
		}
	}
	return load
}

// BusiestShare is the busiest CPU's share (0–1) of Total; 0 when Total is.
func (l Load) BusiestShare() float64 {
	if l.Total <= 0 {
		return 0
	}
	most := 0.0
	for _, r := range l.PerCPU {
		most = max(most, r)
	}
	return most / l.Total
}

// BestShare is the lowest BusiestShare a placement over allowed CPUs could
// reach: the busiest IRQ's share, or an even split if that is more. It
// ignores homes and pins, so it is a bound, not always reachable. 0 when
// Total is.
func (l Load) BestShare(allowed int) float64 {
	if l.Total <= 0 {
		return 0
	}
	return max(l.Busiest/l.Total, 1/float64(max(allowed, 1)))
}
