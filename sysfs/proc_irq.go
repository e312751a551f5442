package sysfs

import (
	"fmt"
	"strconv"
)

// IRQAffinity is what the snapshot reads of /proc/irq/N: the two files of
// six that planning needs, for thousands of IRQs.
type IRQAffinity struct {
	IRQ int
	// Affinity is /proc/irq/N/smp_affinity_list: the mask the admin or a
	// driver asked for.
	Affinity CPUSet
	// Effective is /proc/irq/N/effective_affinity_list: where the chip
	// really delivers. Empty for per-CPU IRQs on a live kernel.
	Effective CPUSet
	// HasEffective is false on kernels without
	// CONFIG_GENERIC_IRQ_EFFECTIVE_AFF_MASK, where the file is absent.
	HasEffective bool
	// ReadOnly reports that smp_affinity_list has no write permission
	// bit. Kernel 6.12 creates it 0444 for managed and per-CPU IRQs.
	ReadOnly bool
}

// IRQDir is /proc/irq/N.
func (fs FS) IRQDir(irq int) string {
	return fs.ProcPath("irq", strconv.Itoa(irq))
}

// irqAffinity reads /proc/irq/N/smp_affinity_list (with its mode) and
// effective_affinity_list into buf, which it returns grown, for reuse. An
// IRQ freed since the caller learned its number gives an error that wraps
// ErrGone.
func (fs FS) irqAffinity(irq int, buf []byte) (IRQAffinity, []byte, error) {
	var path irqPath
	path.reset(fs.proc, irq)
	return irqAffinityAt(&path, irq, buf, true)
}

// irqAffinityAt is irqAffinity with path set to the IRQ's directory,
// where the snapshot then reads node. Without wantMode the file's mode is
// not asked for and ReadOnly is false: the caller knows it.
func irqAffinityAt(path *irqPath, irq int, buf []byte, wantMode bool) (IRQAffinity, []byte, error) {
	out := IRQAffinity{IRQ: irq}
	data, mode, err := readSmallZ(path.file("smp_affinity_list"), buf, wantMode)
	if isNotExist(err) {
		return out, buf, fmt.Errorf("%w: %w: IRQ %d: %w", ErrFileRead, ErrGone, irq, err)
	}
	if err != nil {
		return out, buf, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	buf = data
	out.ReadOnly = wantMode && mode&0o222 == 0
	if out.Affinity, err = ParseCPUList(string(data)); err != nil {
		return out, buf, fmt.Errorf("IRQ %d smp_affinity_list: %w", irq, err)
	}
	data, _, err = readSmallZ(path.file("effective_affinity_list"), buf, false)
	switch {
	case isNotExist(err):
	case err != nil:
		return out, buf, fmt.Errorf("%w: %w", ErrFileRead, err)
	default:
		buf = data
		if out.Effective, err = ParseCPUList(string(data)); err != nil {
			return out, buf, fmt.Errorf("IRQ %d effective_affinity_list: %w", irq, err)
		}
		out.HasEffective = true
	}
	return out, buf, nil
}

// ReadEffective reads only /proc/irq/N/effective_affinity_list, falling
// back to smp_affinity_list where the kernel lacks the former: the applier
// reads it back after every write.
func (fs FS) ReadEffective(irq int) (CPUSet, error) {
	dir := fs.IRQDir(irq)
	set, err := fs.readCPUList(dir + "/effective_affinity_list")
	if isNotExist(err) {
		set, err = fs.readCPUList(dir + "/smp_affinity_list")
	}
	if isNotExist(err) {
		return set, fmt.Errorf("%w: IRQ %d: %w", ErrGone, irq, err)
	}
	return set, err
}

// ReadHint reads /proc/irq/N/affinity_hint, the mask a driver asked for
// its IRQ (irq_set_affinity_hint, irq_update_affinity_hint): empty when
// it set none. Drivers that spread their own queues write the mask
// with the hint, so a mask equal to the hint is the driver's.
func (fs FS) ReadHint(irq int) (CPUSet, error) {
	return readMaskFile(fs.IRQDir(irq) + "/affinity_hint")
}

// DefaultAffinity reads /proc/irq/default_smp_affinity, the mask the
// kernel gives new IRQs (CRI-O takes its isolated CPUs out of it).
func (fs FS) DefaultAffinity() (CPUSet, error) {
	return readMaskFile(fs.ProcPath("irq", "default_smp_affinity"))
}

// readMaskFile reads a hex CPU mask file of /proc/irq.
func readMaskFile(path string) (CPUSet, error) {
	data, err := readFile(path)
	if err != nil {
		return CPUSet{}, err
	}
	set, err := ParseCPUMask(string(data))
	if err != nil {
		return CPUSet{}, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}
