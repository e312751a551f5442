package ops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ebpf"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/top"
)

// ErrNoEBPF: top --ebpf cannot count on this host.
var ErrNoEBPF = errors.New("eBPF is not available here (top --ebpf needs root, or CAP_BPF and CAP_PERFMON, and a kernel with the irq tracepoints); without --ebpf, top counts from /proc/interrupts")

// TopCounter counts interrupts per IRQ and CPU from when it was opened:
// the eBPF counter behind top --ebpf (*ebpf.Counter).
type TopCounter interface {
	Snapshot() (ebpf.Counts, error)
}

// OpenTopCounter opens the eBPF counter of top --ebpf, counting every IRQ
// of the running kernel until it is closed. A fixture tree has no kernel
// behind it, so it is refused.
func OpenTopCounter(fs sysfs.FS) (*ebpf.Counter, error) {
	if !fs.IsLive() {
		return nil, badRequest("top --ebpf counts the running kernel's interrupts, and --proc/--sys name a fixture tree")
	}
	counter, err := ebpf.Open(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoEBPF, err)
	}
	return counter, nil
}

// TopRequest asks for the data of one frame of irqshift top.
type TopRequest struct {
	// Interval is how long the window lasts.
	Interval time.Duration
	// Since is the report of the previous frame: its After sample starts
	// this window, so that a live view reads the counts once a refresh and
	// loses no interrupt between frames. nil takes a first sample now.
	Since *TopReport
	// Counter counts with eBPF (OpenTopCounter); nil reads
	// /proc/interrupts. The window passes with Env.Wait, timed by
	// Env.Clock.
	Counter TopCounter
}

// TopReport is what a frame is built from (top.Build): the counts at both
// ends of the window, and the state classified at its end with what the
// operator decided.
type TopReport struct {
	Method        string
	Before, After top.Sample
	ListReport
}

// Frame builds the report's frame.
func (r *TopReport) Frame() top.Frame {
	return top.Build(r.Before, r.After, top.Input{State: r.State, Pins: r.Pins, Drained: r.Drained, Method: r.Method})
}

// Top samples the interrupt counts over one window and classifies the
// state at its end, as List does; it writes nothing.
func Top(ctx context.Context, env *Env, req TopRequest) (*TopReport, error) {
	if req.Interval <= 0 {
		return nil, badRequest("top: the interval must be positive")
	}
	clock := env.Clock
	if clock == nil {
		clock = time.Now
	}
	wait := env.Wait
	if wait == nil {
		wait = affinity.Sleep
	}
	report := &TopReport{Method: top.MethodProcInterrupts}
	if req.Counter != nil {
		report.Method = top.MethodEBPF
	}
	if req.Since != nil && req.Since.Method == report.Method {
		report.Before = req.Since.After
	} else {
		var err error
		if report.Before, err = firstSample(env.FS, req.Counter, clock); err != nil {
			return nil, err
		}
	}
	if err := wait(ctx, req.Interval); err != nil {
		return nil, err
	}
	if req.Counter != nil {
		var err error
		if report.After, err = counterSample(req.Counter, clock()); err != nil {
			return nil, err
		}
	}
	s, err := env.open(ctx, false)
	if err != nil {
		return nil, err
	}
	defer s.release()
	taken := clock()
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	if req.Counter == nil {
		report.After = top.SampleOf(st, taken)
	}
	report.ListReport = ListReport{State: st, Pins: s.engine.Pins(), Drained: s.engine.Drains()}
	return report, nil
}

// firstSample reads the counts a window starts from: /proc/interrupts
// alone (nothing needs classifying yet), or the counter's.
func firstSample(fs sysfs.FS, counter TopCounter, clock func() time.Time) (top.Sample, error) {
	if counter != nil {
		return counterSample(counter, clock())
	}
	taken := clock()
	in, err := fs.Interrupts()
	if err != nil {
		return top.Sample{}, err
	}
	return top.SampleOfInterrupts(in, taken), nil
}

// counterSample reads the eBPF counter's counts.
func counterSample(counter TopCounter, taken time.Time) (top.Sample, error) {
	counts, err := counter.Snapshot()
	if err != nil {
		return top.Sample{}, err
	}
	s := top.Sample{Taken: taken, EveryCPU: true, IRQs: make(map[int]top.IRQCounts, len(counts))}
	for irq, c := range counts {
		s.IRQs[irq] = top.IRQCounts{PerCPU: maps.Clone(c.PerCPU)}
	}
	return s, nil
}
