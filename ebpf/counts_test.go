package ebpf

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
)

// These tests need no kernel support: they run on every host.

func TestClassify(t *testing.T) {
	sentinels := []error{ErrNoTracefs, ErrPermission, ErrNotSupported}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"wrapped EPERM", fmt.Errorf("create map: %w", syscall.EPERM), ErrPermission},
		{"EACCES in a PathError", &fs.PathError{Op: "open", Path: "/sys/kernel/tracing/events/irq/irq_handler_entry/id", Err: syscall.EACCES}, ErrPermission},
		{"os.ErrPermission", fmt.Errorf("x: %w", os.ErrPermission), ErrPermission},
		{"os.ErrNotExist", fmt.Errorf("tracepoint: %w", os.ErrNotExist), ErrNoTracefs},
		{"ENOENT in a PathError", &fs.PathError{Op: "open", Path: "/sys/kernel/tracing/events/irq/irq_handler_entry/id", Err: syscall.ENOENT}, ErrNoTracefs},
		{"ebpf.ErrNotSupported", fmt.Errorf("map type percpu_hash: %w", cebpf.ErrNotSupported), ErrNotSupported},
		{"ENOSYS", fmt.Errorf("bpf syscall: %w", syscall.ENOSYS), ErrNotSupported},
		{"EPERM wins over not supported", errors.Join(cebpf.ErrNotSupported, syscall.EPERM), ErrPermission},
		{"EINVAL: none", fmt.Errorf("verifier: %w", syscall.EINVAL), nil},
		{"plain error: none", errors.New("neither debugfs nor tracefs are mounted"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := classify("load", tc.err)
			if ok != (tc.want != nil) {
				t.Errorf("classify matched = %v, want %v (%v)", ok, tc.want != nil, got)
			}
			for _, s := range sentinels {
				if is, want := errors.Is(got, s), s == tc.want; is != want {
					t.Errorf("errors.Is(%q, %q) = %v, want %v", got, s, is, want)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("%q does not wrap the cause %q", got, tc.err)
			}
			if !strings.Contains(got.Error(), "load: ") || !strings.Contains(got.Error(), tc.err.Error()) {
				t.Errorf("message %q lacks the step or the cause", got)
			}
		})
	}
	if err, ok := classify("load", nil); err != nil || ok {
		t.Errorf("classify(nil) = %v, %v; want nil, false", err, ok)
	}
}

func TestCountsSub(t *testing.T) {
	pc := func(kv ...uint64) map[int]uint64 { // cpu, count, cpu, count...
		m := make(map[int]uint64)
		for i := 0; i < len(kv); i += 2 {
			m[int(kv[i])] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name          string
		after, before Counts
		want          Counts
	}{
		{"both empty", Counts{}, Counts{}, Counts{}},
		{"both nil", nil, nil, Counts{}},
		{"nothing before: all of after",
			Counts{21: {PerCPU: pc(0, 5, 3, 7), Last: 9 * time.Second}}, nil,
			Counts{21: {PerCPU: pc(0, 5, 3, 7), Last: 9 * time.Second}}},
		{"per CPU deltas, unchanged CPU left out",
			Counts{21: {PerCPU: pc(0, 10, 1, 4, 2, 100), Last: 9 * time.Second}},
			Counts{21: {PerCPU: pc(0, 10, 1, 1, 2, 40), Last: 8 * time.Second}},
			Counts{21: {PerCPU: pc(1, 3, 2, 60), Last: 9 * time.Second}}},
		{"IRQ moved to a CPU it never ran on",
			Counts{21: {PerCPU: pc(2, 50, 1, 30), Last: 5 * time.Second}},
			Counts{21: {PerCPU: pc(2, 50), Last: 4 * time.Second}},
			Counts{21: {PerCPU: pc(1, 30), Last: 5 * time.Second}}},
		{"IRQ that did not fire is left out",
			Counts{21: {PerCPU: pc(0, 10), Last: 3}, 22: {PerCPU: pc(1, 2), Last: 4}},
			Counts{21: {PerCPU: pc(0, 10), Last: 3}, 22: {PerCPU: pc(1, 1), Last: 2}},
			Counts{22: {PerCPU: pc(1, 1), Last: 4}}},
		{"IRQ only in before is left out",
			Counts{}, Counts{30: {PerCPU: pc(0, 1), Last: 1}}, Counts{}},
		{"count went down: restarted from zero",
			Counts{21: {PerCPU: pc(0, 3), Last: 7}},
			Counts{21: {PerCPU: pc(0, 1000), Last: 6}},
			Counts{21: {PerCPU: pc(0, 3), Last: 7}}},
		{"large counts, no wrap",
			Counts{11: {PerCPU: pc(0, 1<<63+5)}},
			Counts{11: {PerCPU: pc(0, 1<<63)}},
			Counts{11: {PerCPU: pc(0, 5)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.after.Sub(tc.before)
			if got == nil {
				t.Fatal("Sub returned nil")
			}
			if !countsEqual(got, tc.want) {
				t.Errorf("Sub = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIRQCountsTotal(t *testing.T) {
	if got := (IRQCounts{PerCPU: map[int]uint64{0: 3, 5: 4}}).Total(); got != 7 {
		t.Errorf("Total = %d, want 7", got)
	}
	if got := (IRQCounts{}).Total(); got != 0 {
		t.Errorf("Total of nothing = %d, want 0", got)
	}
}

func countsEqual(a, b Counts) bool {
	if len(a) != len(b) {
		return false
	}
	for irq, x := range a {
		y, ok := b[irq]
		if !ok || x.Last != y.Last || !maps.Equal(x.PerCPU, y.PerCPU) {
			return false
		}
	}
	return true
}
