package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ebpf"
	"github.com/irqshift/irqshift/sysfs"
)

// ConfirmWindow is how long --verify watches the IRQs a command moved.
const ConfirmWindow = 2 * time.Second

// NewSampler counts where IRQs fire: eBPF on the live kernel, with
// /proc/interrupts count deltas as the fallback (notice, when set, is told
// why in one line). A fixture tree has no running kernel behind it: only
// its /proc/interrupts is read.
func NewSampler(fs sysfs.FS, notice func(reason string)) *affinity.FallbackSampler {
	if !fs.IsLive() {
		proc := sysfs.ProcSampler{FS: fs}
		return &affinity.FallbackSampler{Primary: proc, Fallback: proc, Coarse: true}
	}
	return &affinity.FallbackSampler{Primary: ebpf.Sampler{}, Fallback: sysfs.ProcSampler{FS: fs}, Notice: notice}
}

// VerifyRequest asks where IRQs really fire.
type VerifyRequest struct {
	// IRQs are the IRQs to check; none checks every IRQ but the per-CPU
	// ones (unless All).
	IRQs []int
	All  bool
	// Duration is the sampling window.
	Duration time.Duration
	// Notice receives why the count is coarser than eBPF's, if it is.
	Notice func(reason string)
}

// VerifyReport is where the IRQs fired over the window, and the verdicts.
type VerifyReport struct {
	// Method is "ebpf" or "proc-interrupts"; Coarse is true when eBPF was
	// not available.
	Method   string
	Coarse   bool
	Duration time.Duration
	Checks   []affinity.Check
}

// Bad lists the checks whose verdict is not right (misrouted, on an
// offline CPU).
func (r *VerifyReport) Bad() []affinity.Check {
	var bad []affinity.Check
	for _, ch := range r.Checks {
		if ch.Bad() {
			bad = append(bad, ch)
		}
	}
	return bad
}

// Verify samples where the IRQs fire and compares with their effective
// affinity. It reads the state like List and writes nothing.
func Verify(ctx context.Context, env *Env, req VerifyRequest) (*VerifyReport, error) {
	if req.Duration <= 0 {
		return nil, badRequest("verify: the duration must be positive")
	}
	list, err := List(ctx, env, ListRequest{})
	if err != nil {
		return nil, err
	}
	st := list.State
	want, err := verifyTargets(st, req.IRQs, req.All)
	if err != nil {
		return nil, err
	}
	return sample(ctx, NewSampler(env.FS, req.Notice), want, st.Snapshot.CPUs.Online, req.Duration)
}

// Confirm is --verify: after a command's writes, each moved IRQ that fires
// within ConfirmWindow must fire on its new CPUs.
func Confirm(ctx context.Context, env *Env, results []affinity.Result, irqs []affinity.IRQ, notice func(string)) (*VerifyReport, error) {
	online, err := env.FS.OnlineCPUs()
	if err != nil {
		return nil, err
	}
	return sample(ctx, NewSampler(env.FS, notice), affinity.ExpectAfter(results, irqs), online, ConfirmWindow)
}

func sample(ctx context.Context, sampler *affinity.FallbackSampler, want []affinity.Expectation, online sysfs.CPUSet, window time.Duration) (*VerifyReport, error) {
	checks, err := affinity.Verify(ctx, sampler, want, online, window)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return &VerifyReport{Method: sampler.Method(), Coarse: sampler.Coarse, Duration: window, Checks: checks}, nil
}

// verifyTargets picks the IRQs to check: those named, or every IRQ but the
// per-CPU ones (unless all).
func verifyTargets(st *affinity.State, only []int, all bool) ([]affinity.Expectation, error) {
	byNumber := make(map[int]affinity.IRQ, len(st.IRQs))
	for _, irq := range st.IRQs {
		byNumber[irq.IRQ] = irq
	}
	var picked []affinity.IRQ
	if len(only) > 0 {
		for _, n := range only {
			irq, ok := byNumber[n]
			if !ok {
				return nil, badRequest("verify: IRQ %d is not in /proc/interrupts", n)
			}
			picked = append(picked, irq)
		}
	} else {
		for _, irq := range st.IRQs {
			if irq.Class != affinity.ClassPerCPU || all {
				picked = append(picked, irq)
			}
		}
	}
	want := make([]affinity.Expectation, 0, len(picked))
	for _, irq := range picked {
		expected := irq.Where()
		if irq.Class == affinity.ClassPerCPU {
			expected = st.Snapshot.CPUs.Online // one per CPU: anywhere is right
		}
		want = append(want, affinity.Expectation{IRQ: irq.IRQ, Actions: irq.Actions, Expected: expected})
	}
	return want, nil
}
