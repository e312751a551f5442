package affinity

import (
	"github.com/irqshift/irqshift/sysfs"
)

// Environment variables irqbalance users already set; irqshift honours them
// so that switching tools keeps the same CPUs free of IRQs.
const (
	EnvBannedCPUList = "IRQBALANCE_BANNED_CPULIST" // cpulist, "2-3"
	EnvBannedCPUs    = "IRQBALANCE_BANNED_CPUS"    // hex mask, older
)

// BannedCPUs gathers the CPUs no IRQ may be moved to.
type BannedCPUs struct {
	// User is from --banned-cpus and the irqbalance variables.
	User sysfs.CPUSet
	// IncludeIsolated allows isolated and nohz_full CPUs, which are banned
	// by default: they are isolated precisely to be left undisturbed.
	IncludeIsolated bool
}

// Allowed returns the CPUs IRQs may go to: online minus banned.
func (b BannedCPUs) Allowed(cpus sysfs.CPUInfo) sysfs.CPUSet {
	return cpus.Online.Difference(b.All(cpus))
}

// All returns every banned CPU, including isolated and nohz_full CPUs
// unless IncludeIsolated.
func (b BannedCPUs) All(cpus sysfs.CPUInfo) sysfs.CPUSet {
	all := b.User
	if !b.IncludeIsolated {
		all = all.Union(cpus.Isolated).Union(cpus.NohzFull)
	}
	return all
}
