package affinity

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/irqshift/irqshift/sysfs"
)

// Fired is, per IRQ, the interrupts counted per CPU during a window.
type Fired = map[int]map[int]uint64

// Sampler counts where interrupts fire during a window: the eBPF counter on
// irq_handler_entry, or /proc/interrupts deltas when eBPF is not available.
type Sampler interface {
	// Sample counts the interrupts of irqs for window; IRQs that did not
	// fire may be absent.
	Sample(ctx context.Context, irqs []int, window time.Duration) (Fired, error)
	// Method names the sampler for people: "ebpf" or "proc-interrupts".
	Method() string
}

// Verdict is the outcome of checking one IRQ.
type Verdict string

// The verdicts of `irqshift verify`.
const (
	// VerdictOK: every interrupt fired on a CPU of the effective affinity.
	VerdictOK Verdict = "ok"
	// VerdictMisrouted: some fired outside the effective affinity.
	VerdictMisrouted Verdict = "misrouted"
	// VerdictOnOfflineCPU: some fired on a CPU that is offline now.
	VerdictOnOfflineCPU Verdict = "on-offline-cpu"
	// VerdictSilent: no interrupt in the window; nothing to prove.
	VerdictSilent Verdict = "silent"
)

// Judge decides the verdict for an IRQ expected on expected that fired as
// fired (CPU → count) while online were the online CPUs.
func Judge(expected, online sysfs.CPUSet, fired map[int]uint64) Verdict {
	verdict := VerdictSilent
	for cpu, n := range fired {
		if n == 0 {
			continue
		}
		switch {
		case !online.Contains(cpu):
			return VerdictOnOfflineCPU
		case !expected.Contains(cpu):
			verdict = VerdictMisrouted
		case verdict == VerdictSilent:
			verdict = VerdictOK
		}
	}
	return verdict
}

// Check is the verdict on one IRQ, as `verify --json` prints it.
type Check struct {
	IRQ      int               `json:"irq"`
	Actions  []string          `json:"actions"`
	Expected sysfs.CPUSet      `json:"expected"`
	Fired    map[string]uint64 `json:"fired"`
	Total    uint64            `json:"total"`
	Verdict  Verdict           `json:"verdict"`
}

// Bad reports whether the verdict means the IRQ fires where it must not.
func (c Check) Bad() bool {
	return c.Verdict == VerdictMisrouted || c.Verdict == VerdictOnOfflineCPU
}

// Expectation is an IRQ to check and the CPUs it should fire on.
type Expectation struct {
	IRQ      int
	Actions  []string
	Expected sysfs.CPUSet
}

// Verify samples the IRQs of want for window and judges each. online is
// the set of online CPUs to judge against.
func Verify(ctx context.Context, sampler Sampler, want []Expectation, online sysfs.CPUSet, window time.Duration) ([]Check, error) {
	irqs := make([]int, 0, len(want))
	for _, w := range want {
		irqs = append(irqs, w.IRQ)
	}
	fired, err := sampler.Sample(ctx, irqs, window)
	if err != nil {
		return nil, err
	}
	checks := make([]Check, 0, len(want))
	for _, w := range want {
		c := Check{IRQ: w.IRQ, Actions: w.Actions, Expected: w.Expected, Fired: map[string]uint64{}}
		for cpu, n := range fired[w.IRQ] {
			if n > 0 {
				c.Fired[strconv.Itoa(cpu)] = n
				c.Total += n
			}
		}
		c.Verdict = Judge(w.Expected, online, fired[w.IRQ])
		checks = append(checks, c)
	}
	slices.SortFunc(checks, func(a, b Check) int { return a.IRQ - b.IRQ })
	return checks, nil
}

// ExpectAfter turns the results of an apply into expectations: each IRQ
// written (moved, narrowed or pending) should now fire on its read-back
// effective affinity (or, where the chip has not moved it yet, on the mask
// written).
func ExpectAfter(results []Result, irqs []IRQ) []Expectation {
	actions := make(map[int][]string, len(irqs))
	for _, irq := range irqs {
		actions[irq.IRQ] = irq.Actions
	}
	var out []Expectation
	for _, r := range results {
		if !r.Wrote() {
			continue
		}
		expected := r.Effective
		if expected.IsEmpty() || r.Status == StatusPending {
			expected = r.To
		}
		out = append(out, Expectation{IRQ: r.IRQ, Actions: actions[r.IRQ], Expected: expected})
	}
	return out
}

// Tally counts the checks that prove a move (ok) and the bad ones.
func Tally(checks []Check) (ok, bad int) {
	for _, c := range checks {
		switch {
		case c.Verdict == VerdictOK:
			ok++
		case c.Bad():
			bad++
		}
	}
	return ok, bad
}

// FallbackSampler samples with Primary (eBPF) and, when that fails for a
// reason other than cancellation, with Fallback (/proc/interrupts deltas),
// calling Notice once with the reason so the user knows the result is
// coarser.
type FallbackSampler struct {
	Primary, Fallback Sampler
	Notice            func(reason string)
	// Coarse is set once the fallback was used.
	Coarse bool
	used   string
}

// Method names the sampler used last (the primary before any sample).
func (f *FallbackSampler) Method() string {
	if f.used == "" {
		return f.Primary.Method()
	}
	return f.used
}

// Sample implements Sampler.
func (f *FallbackSampler) Sample(ctx context.Context, irqs []int, window time.Duration) (Fired, error) {
	if !f.Coarse {
		fired, err := f.Primary.Sample(ctx, irqs, window)
		if err == nil || ctx.Err() != nil {
			f.used = f.Primary.Method()
			return fired, err
		}
		f.Coarse = true
		if f.Notice != nil {
			f.Notice(fmt.Sprintf("%s unavailable (%v); falling back to %s count deltas, which are coarser",
				f.Primary.Method(), err, f.Fallback.Method()))
		}
	}
	f.used = f.Fallback.Method()
	return f.Fallback.Sample(ctx, irqs, window)
}
