package sysfstest

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// SetRate makes irq fire perSecond interrupts a second from now on, each
// time Advance moves the clock: on its effective CPU, as the GIC delivers
// it, so that a move changes where its count grows. 0 stops it.
func (s *Sim) SetRate(irq int, perSecond float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.irqs[irq]
	if st == nil || st.removed {
		return fmt.Errorf("IRQ %d does not exist", irq)
	}
	if perSecond < 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return fmt.Errorf("IRQ %d: rate %v, want a finite rate ≥ 0", irq, perSecond)
	}
	if s.rates == nil {
		s.rates = map[int]*rate{}
	}
	if perSecond == 0 {
		delete(s.rates, irq)
		return nil
	}
	if r := s.rates[irq]; r != nil {
		r.perSecond = perSecond
		return nil
	}
	s.rates[irq] = &rate{perSecond: perSecond}
	return nil
}

// rate is an IRQ's rate and the fraction of an interrupt Advance still
// owes it, so that many short steps add up to the same count as one long
// one.
type rate struct {
	perSecond float64
	owed      float64
}

// Advance lets d pass: every IRQ with a rate gets its interrupts for d on
// its effective CPU (the first of a multi-CPU effective set), or none while
// that CPU is offline (a shut-down IRQ does not fire). The clock is the
// test's, not the wall's: a test that samples rates passes Advance as the
// wait of its window and runs in no time.
func (s *Sim) Advance(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d < 0 {
		return fmt.Errorf("advance by %v, want ≥ 0", d)
	}
	irqs := make([]int, 0, len(s.rates))
	for irq := range s.rates {
		irqs = append(irqs, irq)
	}
	slices.Sort(irqs)
	changed := false
	for _, irq := range irqs {
		st, r := s.irqs[irq], s.rates[irq]
		if st == nil || st.removed {
			delete(s.rates, irq)
			continue
		}
		r.owed += r.perSecond * d.Seconds()
		n := math.Floor(r.owed)
		r.owed -= n
		cpu := st.Effective.First()
		if n == 0 || !s.online.Contains(cpu) {
			continue
		}
		st.Counts[cpu] += uint64(n)
		if err := s.syncIRQ(st); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return s.syncInterrupts()
}
