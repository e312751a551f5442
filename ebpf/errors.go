package ebpf

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	cebpf "github.com/cilium/ebpf"
)

// Errors Open wraps when the host cannot run the counter, so that callers can test them with
// errors.Is and fall back to /proc/interrupts deltas. The wrapped error keeps the cause.
var (
	// ErrNoTracefs: the tracepoint irq/irq_handler_entry could not be found, because tracefs is
	// not mounted (mount -t tracefs nodev /sys/kernel/tracing) or the kernel has no irq events.
	ErrNoTracefs = errors.New("eBPF counter: tracefs not mounted at /sys/kernel/tracing or tracepoint irq/irq_handler_entry missing")
	// ErrPermission: the kernel refused (EPERM or EACCES): not root, no CAP_BPF and CAP_PERFMON,
	// kernel lockdown, or perf_event_paranoid for non-root.
	ErrPermission = errors.New("eBPF counter: permission denied (needs root, or CAP_BPF and CAP_PERFMON)")
	// ErrNotSupported: the kernel is too old or was built without BPF, BPF_SYSCALL or BPF_EVENTS.
	ErrNotSupported = errors.New("eBPF counter: not supported by this kernel")
)

// classify wraps err, which happened while doing what, with the sentinel that says what is
// missing. It returns the wrapped error and whether a sentinel applied; without one, err is
// returned with context only. A permission error wins over the others, as it is the one the user
// can fix at once.
func classify(what string, err error) (error, bool) {
	if err == nil {
		return nil, false
	}
	var sentinel error
	switch {
	case errors.Is(err, os.ErrPermission): // EPERM, EACCES
		sentinel = ErrPermission
	case errors.Is(err, cebpf.ErrNotSupported), errors.Is(err, syscall.ENOSYS):
		sentinel = ErrNotSupported
	case errors.Is(err, os.ErrNotExist): // tracefs event directory (or its id file) absent
		sentinel = ErrNoTracefs
	}
	if sentinel == nil {
		return fmt.Errorf("eBPF counter: %s: %w", what, err), false
	}
	return fmt.Errorf("%w: %s: %w", sentinel, what, err), true
}
