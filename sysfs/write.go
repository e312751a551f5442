package sysfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Write errors. WriteAffinity's errors wrap ErrWrite and at most one of
// the classes below, so callers can decide with errors.Is what to do next.
// ErrPermission is about this process, not the IRQ: an IRQ must never be
// learned as unmovable from it.
var (
	// ErrWrite is wrapped by every failed write to a kernel file.
	ErrWrite = errors.New("cannot write kernel file")
	// ErrUnmovable: the kernel refuses to move this IRQ at all: per-CPU,
	// managed or without an action. 6.1 answers EIO, 6.12 EPERM (and makes
	// the file 0444), both to root.
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
	// ErrPermission: this process may not write the file: EACCES (the
	// file mode stopped a non-root process at open), or EPERM where
	// faccessat(2) confirms the process lacks the privilege. Running as
	// root fixes it; the IRQ may well be movable.
	ErrPermission = errors.New("permission denied: writing needs root")
)

// WriteErrorClass is the class of a write error as logs, JSON
// (error_class) and the irqshift_write_errors_total{class} metric name it:
// one of WriteErrorClasses.
type WriteErrorClass string

// The write error classes, each the label of a class sentinel, and
// WriteClassOther for an error of none.
const (
	WriteClassUnmovable  WriteErrorClass = "unmovable"  // ErrUnmovable
	WriteClassStaleMask  WriteErrorClass = "stale-mask" // ErrStaleMask
	WriteClassNoSpace    WriteErrorClass = "no-space"   // ErrNoSpace
	WriteClassGone       WriteErrorClass = "gone"       // ErrGone
	WriteClassTransient  WriteErrorClass = "transient"  // ErrTransient
	WriteClassPermission WriteErrorClass = "permission" // ErrPermission
	WriteClassOther      WriteErrorClass = "other"      // no class sentinel
)

// WriteErrorClasses lists every class WriteClassName returns: the one
// list that the metric's help text, the docs and the tests are checked
// against.
var WriteErrorClasses = []WriteErrorClass{
	WriteClassUnmovable, WriteClassStaleMask, WriteClassNoSpace, WriteClassGone,
	WriteClassTransient, WriteClassPermission, WriteClassOther,
}

// writeClasses are the class sentinels, each with its WriteClassName.
var writeClasses = []struct {
	class error
	name  WriteErrorClass
}{
	{ErrUnmovable, WriteClassUnmovable},
	{ErrStaleMask, WriteClassStaleMask},
	{ErrNoSpace, WriteClassNoSpace},
	{ErrGone, WriteClassGone},
	{ErrTransient, WriteClassTransient},
	{ErrPermission, WriteClassPermission},
}

// WriteClass returns the class sentinel (ErrUnmovable, ErrStaleMask, …) of
// a write error, or nil when it has none.
func WriteClass(err error) error {
	for _, c := range writeClasses {
		if errors.Is(err, c.class) {
			return c.class
		}
	}
	return nil
}

// WriteClassName is WriteClass as a short label for logs, JSON and
// metrics: one of WriteErrorClasses, WriteClassOther for an error of no
// class.
func WriteClassName(err error) WriteErrorClass {
	for _, c := range writeClasses {
		if errors.Is(err, c.class) {
			return c.name
		}
	}
	return WriteClassOther
}

// ClassifyErrno maps the errno in err, of a failed open or write of
// /proc/irq/N/smp_affinity_list, to its class (kernel/irq/proc.c
// write_irq_affinity and irq_set_affinity), or nil for an errno it does not
// know. It is the one table, shared with the simulator (sysfstest):
//
//	EIO, EPERM     ErrUnmovable   (6.1, 6.12: refused to root)
//	EACCES         ErrPermission  (the file mode, at open)
//	EINVAL         ErrStaleMask
//	ENOSPC         ErrNoSpace
//	ENOENT         ErrGone        (also any error wrapping os.ErrNotExist)
//	EBUSY, EAGAIN  ErrTransient
//
// It looks at the errno only. EPERM also reaches a process that lacks the
// privilege to write the file; FS.WriteAffinity tells the two apart with
// faccessat(2) and reports ErrPermission then.
func ClassifyErrno(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if errors.Is(err, os.ErrNotExist) {
			return ErrGone
		}
		return nil
	}
	switch errno {
	case syscall.EIO, syscall.EPERM:
		return ErrUnmovable
	case syscall.EACCES:
		return ErrPermission
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

// WriteError is the error of a failed write of cpus to IRQ irq's
// smp_affinity_list: it wraps ErrWrite, the class ClassifyErrno gives err
// (if any) and err. The simulator builds its errors with it, so that they
// read as FS.WriteAffinity's.
func WriteError(irq int, cpus CPUSet, err error) error {
	return writeError(irq, cpus, ClassifyErrno(err), err)
}

func writeError(irq int, cpus CPUSet, class, err error) error {
	if class != nil {
		return fmt.Errorf("%w: IRQ %d to CPUs %s: %w: %w", ErrWrite, irq, cpus, class, err)
	}
	return fmt.Errorf("%w: IRQ %d to CPUs %s: %w", ErrWrite, irq, cpus, err)
}

// CPUOnlineError is the error of a failed open or write of CPU cpu's
// online file: it wraps ErrWrite, ErrPermission where err is EACCES, and
// err (EBUSY, EINVAL, ENOENT... keep their errno and no class). The
// simulator builds its errors with it.
func CPUOnlineError(cpu int, err error) error {
	var class error
	if errors.Is(err, syscall.EACCES) {
		class = ErrPermission
	}
	return cpuOnlineError(cpu, class, err)
}

func cpuOnlineError(cpu int, class, err error) error {
	if class != nil {
		return fmt.Errorf("%w: cpu%d online: %w: %w", ErrWrite, cpu, class, err)
	}
	return fmt.Errorf("%w: cpu%d online: %w", ErrWrite, cpu, err)
}

// accessWrite asks the kernel whether this process, with its effective
// IDs and capabilities, may write path (faccessat(2), AT_EACCESS). A
// variable so that tests can play an unprivileged process.
var accessWrite = func(path string) error {
	return unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS)
}

// lacksPrivilege reports whether an EPERM from writing path came from
// this process's lack of privilege rather than from the kernel's refusal.
func lacksPrivilege(path string) bool {
	err := accessWrite(path)
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// writeClass is ClassifyErrno for an error of writing path, which tells an
// unprivileged process's EPERM (ErrPermission) from the kernel's refusal
// (ErrUnmovable).
func writeClass(path string, err error) error {
	class := ClassifyErrno(err)
	if errors.Is(err, syscall.EPERM) && lacksPrivilege(path) {
		class = ErrPermission
	}
	return class
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
		return writeError(irq, cpus, writeClass(path, err), err)
	}
	_, werr := f.WriteString(cpus.String() + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return writeError(irq, cpus, writeClass(path, err), err)
	}
	return nil
}
