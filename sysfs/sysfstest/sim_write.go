package sysfstest

// Affinity writes (/proc/irq/N/smp_affinity_list): the kernel's answer, the write log, and the
// faults, hooks and missing privilege a test can inject.

import (
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/irqshift/irqshift/sysfs"
)

// Write is one write the simulator handled.
type Write struct {
	IRQ  int
	CPUs sysfs.CPUSet
	// Online is the online mask when the kernel handled the write (after
	// any hook ran).
	Online sysfs.CPUSet
	// Errno is 0 when the kernel accepted the write.
	Errno syscall.Errno
	Err   error
}

// AnyIRQ makes a hook or fault apply to the next write of any IRQ.
const AnyIRQ = -1

// Always makes FailWrites fail every write.
const Always = -1

type fault struct {
	errno syscall.Errno
	left  int // Always for ever
}

// Writes returns every write handled so far, in order.
func (s *Sim) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// FailWrites makes the next times writes of irq (AnyIRQ: of any IRQ) fail
// with errno before the kernel looks at them; times may be Always.
func (s *Sim) FailWrites(irq int, errno syscall.Errno, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[irq] = &fault{errno: errno, left: times}
}

// BeforeWrite runs fn once, at the next write of irq (AnyIRQ: of any IRQ),
// before the kernel handles that write. fn may call any method of s.
func (s *Sim) BeforeWrite(irq int, fn func(*Sim) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[irq] = append(s.hooks[irq], fn)
}

// OfflineAtWrite takes cpu offline at the moment irq is next written.
func (s *Sim) OfflineAtWrite(irq, cpu int) {
	s.BeforeWrite(irq, func(s *Sim) error { return s.SetCPUOnline(cpu, false) })
}

// RemoveAtWrite frees irq at the moment it is next written.
func (s *Sim) RemoveAtWrite(irq int) {
	s.BeforeWrite(irq, func(s *Sim) error { return s.RemoveIRQ(irq) })
}

// DenyWrites makes the simulator play a process without root from now on:
// the tree's files are root's, so opening smp_affinity_list or cpuN/online
// for writing fails with EACCES before the kernel sees anything.
// WriteAffinity then gives sysfs.ErrPermission (and logs the write with
// Errno EACCES, without running hooks or faults), SetCPUOnline too, and
// CheckWriteAccess says what sysfs.FS.CheckWriteAccess says to non-root.
// Reads still work, as /proc and /sys are world-readable. Use it to test
// that a non-root run learns nothing about the IRQs from its failures.
func (s *Sim) DenyWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = true
}

// CheckWriteAccess is sysfs.FS.CheckWriteAccess for the simulated
// process: nil, or after DenyWrites the error (wrapping
// sysfs.ErrPermission) that the real one gives to a non-root process,
// naming the smp_affinity_list of the lowest IRQ whose file has a write
// bit, or else the online file of the lowest hotpluggable CPU.
func (s *Sim) CheckWriteAccess() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.denied {
		return nil
	}
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && s.affinityMode(st)&0o222 != 0 {
			return sysfs.WriteAccessError(s.fs.AffinityListPath(n), syscall.EACCES)
		}
	}
	if cpu := s.hotplug.First(); cpu >= 0 {
		return sysfs.WriteAccessError(s.fs.CPUOnlinePath(cpu), syscall.EACCES)
	}
	return nil
}

// WriteAffinity writes cpus as /proc/irq/N/smp_affinity_list does on the
// kernel. Errors are sysfs.WriteError's: they wrap sysfs.ErrWrite, the
// class sysfs.ClassifyErrno gives and the errno (in an *os.PathError), as
// sysfs.FS.WriteAffinity's do.
func (s *Sim) WriteAffinity(irq int, cpus sysfs.CPUSet) error {
	if cpus.IsEmpty() {
		return fmt.Errorf("%w: IRQ %d: refusing to write an empty CPU list", sysfs.ErrWrite, irq)
	}
	if denied, err := s.denyWrite(irq, cpus); denied {
		return err
	}
	if err := s.runHooks(irq); err != nil {
		return fmt.Errorf("sysfstest: hook before writing IRQ %d: %w", irq, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errno, op, ioErr := s.write(irq, cpus)
	if ioErr != nil {
		return ioErr
	}
	return s.logWrite(irq, cpus, errno, op)
}

// denyWrite fails, after DenyWrites, the write of an IRQ that exists (of
// one that does not, open says ENOENT first) with EACCES at open.
func (s *Sim) denyWrite(irq int, cpus sysfs.CPUSet) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.irqs[irq]; !s.denied || st == nil || st.removed {
		return false, nil
	}
	return true, s.logWrite(irq, cpus, syscall.EACCES, "open")
}

// logWrite records a write that the system call op answered with errno
// (0: accepted) and returns its error. s.mu is held.
func (s *Sim) logWrite(irq int, cpus sysfs.CPUSet, errno syscall.Errno, op string) error {
	rec := Write{IRQ: irq, CPUs: cpus, Online: s.online, Errno: errno}
	if errno != 0 {
		rec.Err = sysfs.WriteError(irq, cpus, &os.PathError{Op: op, Path: s.fs.AffinityListPath(irq), Err: errno})
	}
	s.writes = append(s.writes, rec)
	return rec.Err
}

func (s *Sim) runHooks(irq int) error {
	s.mu.Lock()
	var fns []func(*Sim) error
	for _, key := range []int{irq, AnyIRQ} {
		if len(s.hooks[key]) > 0 {
			fns = append(fns, s.hooks[key][0])
			s.hooks[key] = s.hooks[key][1:]
		}
	}
	s.mu.Unlock()
	for _, fn := range fns {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// write is the kernel's write_irq_affinity. It returns the errno and the
// system call that failed, or an error of the simulator itself.
func (s *Sim) write(irq int, cpus sysfs.CPUSet) (syscall.Errno, string, error) {
	st := s.irqs[irq]
	if st == nil || st.removed {
		return syscall.ENOENT, "open", nil
	}
	for _, key := range []int{irq, AnyIRQ} {
		if f := s.faults[key]; f != nil && f.left != 0 {
			if f.left > 0 {
				f.left--
			}
			return f.errno, "write", nil
		}
	}
	if !st.Kind.Movable() {
		// irq_can_set_affinity_usr: per-CPU (IRQD_NO_BALANCING), managed,
		// and on the measured kernels descriptors without an action.
		return s.kernel.refuseErrno(), "write", nil
	}
	mask := cpus.Intersect(upTo(s.cfg.Possible))
	avail := mask.Intersect(s.online)
	if avail.IsEmpty() {
		return syscall.EINVAL, "write", nil
	}
	st.Affinity = mask
	// The table is kept between writes: rebuilt per write it made a
	// balancer's writes on a 4096-IRQ machine quadratic, the simulator's
	// cost and not the kernel's (its_select_cpu looks at the CPUs).
	if s.writeLoads == nil {
		s.writeLoads = s.loads()
	}
	s.writeLoads.place(st, s.writeLoads.pick(st, avail))
	return 0, "", s.syncIRQ(st)
}
