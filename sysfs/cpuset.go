package sysfs

import (
	"fmt"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// The CPU set and its text forms live in internal/cpuset, a leaf that the
// readers (sysfs, hotplug) and the core share. The names below keep the
// packages that say sysfs.CPUSet as they were; new code can use cpuset
// directly. Only the parsers add something: the kernel-file sentinel.

// MaxCPUs is cpuset.MaxCPUs.
const MaxCPUs = cpuset.MaxCPUs

// CPUSet is cpuset.Set.
type CPUSet = cpuset.Set

// NewCPUSet is cpuset.New.
func NewCPUSet(cpus ...int) CPUSet { return cpuset.New(cpus...) }

// ParseCPUList is cpuset.ParseList with its error wrapping ErrFileParse.
func ParseCPUList(text string) (CPUSet, error) { return fileParse(cpuset.ParseList(text)) }

// ParseCPUMask is cpuset.ParseMask with its error wrapping ErrFileParse.
func ParseCPUMask(text string) (CPUSet, error) { return fileParse(cpuset.ParseMask(text)) }

// fileParse wraps a cpuset parse error in ErrFileParse, the sentinel of
// every kernel file that does not parse.
func fileParse(s CPUSet, err error) (CPUSet, error) {
	if err != nil {
		return CPUSet{}, fmt.Errorf("%w: %w", ErrFileParse, err)
	}
	return s, nil
}
