package sysfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Write errors. WriteAffinity's errors wrap ErrWrite and exactly one of the
// classes below, so callers can decide with errors.Is what to do next.
var (
	// ErrWrite is wrapped by every failed write to a kernel file.
	ErrWrite = errors.New("cannot write kernel file")
	// ErrUnmovable: the kernel refuses to move this IRQ at all: per-CPU,
	// managed or without an action. 6.1 answers EIO, 6.12 EPERM (and makes
	// the file 0444), EACCES where the file mode stops us first.
	ErrUnmovable = errors.New("IRQ cannot be moved")
	// ErrStaleMask: EINVAL, the mask held no online CPU, so the online set
	// we planned with is out of date.
	ErrStaleMask = errors.New("no online CPU in mask")
	// ErrNoSpace: ENOSPC, the target CPUs have no free vector (x86).
	ErrNoSpace = errors.New("no vector space on target CPUs")
	// ErrGone: ENOENT, the IRQ was freed since we read it.
	ErrGone = errors.New("IRQ vanished")
	// ErrTransient: EBUSY or EAGAIN, worth one more try later.
	ErrTransient = errors.New("kernel busy")
)

// WriteClass returns the class sentinel (ErrUnmovable, ErrStaleMask, …) of
// a write error, or nil when it has none.
func WriteClass(err error) error {
	for _, class := range []error{ErrUnmovable, ErrStaleMask, ErrNoSpace, ErrGone, ErrTransient} {
		if errors.Is(err, class) {
			return class
		}
	}
	return nil
}

// WriteClassName is WriteClass as a short label for logs, JSON and
// metrics: "unmovable", "stale-mask", "no-space", "gone", "transient" or
// "other".
func WriteClassName(err error) string {
	switch WriteClass(err) {
	case ErrUnmovable:
		return "unmovable"
	case ErrStaleMask:
		return "stale-mask"
	case ErrNoSpace:
		return "no-space"
	case ErrGone:
		return "gone"
	case ErrTransient:
		return "transient"
	}
	return "other"
}

// classifyErrno maps the errno of a failed open or write of
// /proc/irq/N/smp_affinity_list to its class (kernel/irq/proc.c
// write_irq_affinity and irq_set_affinity).
func classifyErrno(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if errors.Is(err, os.ErrNotExist) {
			return ErrGone
		}
		return nil
	}
	switch errno {
	case syscall.EIO, syscall.EPERM, syscall.EACCES:
		return ErrUnmovable
	case syscall.EINVAL:
		return ErrStaleMask
	case syscall.ENOSPC:
		return ErrNoSpace
	case syscall.ENOENT:
		return ErrGone
	case syscall.EBUSY, syscall.EAGAIN:
		return ErrTransient
	}
	return nil
}

// AffinityListPath is /proc/irq/N/smp_affinity_list.
func (fs FS) AffinityListPath(irq int) string {
	return fs.ProcPath("irq", strconv.Itoa(irq), "smp_affinity_list")
}

// WriteAffinity writes cpus to /proc/irq/N/smp_affinity_list in one write
// call, as the kernel wants. The error wraps ErrWrite, a class sentinel
// (see WriteClass) and the errno. On a fixture tree it writes the plain file.
func (fs FS) WriteAffinity(irq int, cpus CPUSet) error {
	if cpus.IsEmpty() {
		// The kernel would say EINVAL; an empty mask is always our bug.
		return fmt.Errorf("%w: IRQ %d: refusing to write an empty CPU list", ErrWrite, irq)
	}
	path := fs.AffinityListPath(irq)
	// O_TRUNC matters only on fixture trees; /proc ignores it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return writeError(irq, cpus, err)
	}
	_, werr := f.WriteString(cpus.String() + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return writeError(irq, cpus, err)
	}
	return nil
}

func writeError(irq int, cpus CPUSet, err error) error {
	if class := classifyErrno(err); class != nil {
		return fmt.Errorf("%w: IRQ %d to CPUs %s: %w: %w", ErrWrite, irq, cpus, class, err)
	}
	return fmt.Errorf("%w: IRQ %d to CPUs %s: %w", ErrWrite, irq, cpus, err)
}
