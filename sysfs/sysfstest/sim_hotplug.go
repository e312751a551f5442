package sysfstest

// CPU hotplug: the online CPUs, and what writing cpuN/online does to the IRQs.

import (
	"os"
	"syscall"

	"github.com/irqshift/irqshift/sysfs"
)

// Online returns the CPUs online now.
func (s *Sim) Online() sysfs.CPUSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// Followers returns the IRQs that exist and FollowsHotplug (whose driver
// rewrites their masks on every CPU offline and online), in order.
func (s *Sim) Followers() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.FollowsHotplug {
			out = append(out, n)
		}
	}
	return out
}

// OnlineCPUs reads /sys/devices/system/cpu/online from the tree.
func (s *Sim) OnlineCPUs() (sysfs.CPUSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.OnlineCPUs()
}

// SetCPUOnline does what writing 0 or 1 to cpuN/online does.
//
// Offline (kernel/irq/cpuhotplug.c, irq_migrate_all_off_this_cpu, in IRQ
// order): every started, movable IRQ effective on cpu moves to an online CPU
// of its mask, chosen by its chip; when its mask has no other online CPU the
// mask is overwritten with the online mask (the admin's pin is lost). A
// managed IRQ whose mask has no other online CPU is shut down in place: it
// keeps its affinity and effective CPU. Per-CPU and action-less IRQs are
// left alone. Online moves nothing back. After either, IRQs with
// FollowsHotplug get the online mask as hint and affinity, as virtio-net's
// own callback does. Errors are sysfs.CPUOnlineError's: ENOENT for a CPU
// without cpuN/online, EACCES (sysfs.ErrPermission) after DenyWrites,
// EBUSY for the last online CPU.
func (s *Sim) SetCPUOnline(cpu int, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.fs.CPUOnlinePath(cpu)
	switch {
	case !s.present.Contains(cpu), !s.hotplug.Contains(cpu):
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT})
	case s.denied:
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "open", Path: path, Err: syscall.EACCES})
	case online == s.online.Contains(cpu):
		return nil // the kernel accepts the write and does nothing
	case !online && s.online.Len() == 1:
		return sysfs.CPUOnlineError(cpu, &os.PathError{Op: "write", Path: path, Err: syscall.EBUSY})
	}
	s.writeLoads = nil
	if online {
		s.online = s.online.With(cpu)
	} else {
		s.online = s.online.Without(cpu)
		loads := s.loads()
		for _, n := range s.order {
			st := s.irqs[n]
			if st.removed || st.Kind == KindPerCPU || st.Kind == KindNoAction || !st.Effective.Contains(cpu) {
				continue
			}
			avail := st.Affinity.Intersect(s.online)
			if avail.IsEmpty() {
				if st.Kind == KindManaged {
					continue // irq_shutdown_and_deactivate: stays as it was
				}
				st.Affinity = s.online
				avail = s.online
			}
			loads.place(st, loads.pick(st, avail))
		}
	}
	loads := s.loads()
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.FollowsHotplug {
			st.Hint, st.Affinity = s.online, s.online
			loads.place(st, loads.pick(st, s.online))
		}
	}
	return s.syncAll()
}
