package affinity

import (
	"slices"

	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Environment variables irqbalance users already set; irqshift honours them
// so that switching tools keeps the same CPUs free of IRQs.
const (
	EnvBannedCPUList = "IRQBALANCE_BANNED_CPULIST" // cpulist, "2-3"
	EnvBannedCPUs    = "IRQBALANCE_BANNED_CPUS"    // hex mask, older
)

// BanSource says where a banned CPU comes from, as `list` (JSON
// cpus.banned_by), the state file (daemon_banned_by) and the
// irqshift_banned_cpus{source} metric name it: one of BanSources. The
// state file's document declares the type; the sources are these.
type BanSource = state.BanSource

// The ban sources.
const (
	// BanConfig: --banned-cpus, IRQSHIFT_BANNED_CPUS and the irqbalance
	// variables, from the flags, the environment or the config file.
	BanConfig BanSource = "config"
	// BanFile: an irqbalance-style file the daemon follows (--ban-file),
	// as CRI-O and tuned rewrite it.
	BanFile BanSource = "ban-file"
	// BanPartition: an isolated cgroup v2 cpuset partition (the root's
	// cpuset.cpus.isolated).
	BanPartition BanSource = "isolated-partition"
	// BanIsolcpus and BanNohzFull: isolated at boot (isolcpus=,
	// nohz_full=).
	BanIsolcpus BanSource = "isolcpus"
	BanNohzFull BanSource = "nohz_full"
	// BanDefaultAffinity: missing from /proc/irq/default_smp_affinity,
	// which CRI-O also edits (--ban-default-affinity).
	BanDefaultAffinity BanSource = "default_smp_affinity"
	// BanDaemon: banned by the running daemon's configuration, which it
	// records in the state file for the commands run beside it.
	BanDaemon BanSource = "daemon"
)

// BanSources lists every ban source, in the order they are reported: the
// one list that the metric's help text, the docs and the tests are
// checked against.
var BanSources = []BanSource{BanConfig, BanFile, BanPartition, BanIsolcpus, BanNohzFull, BanDefaultAffinity, BanDaemon}

// BannedCPUs gathers the CPUs no IRQ may be moved to, by source.
type BannedCPUs struct {
	// User is from --banned-cpus and the irqbalance variables.
	User sysfs.CPUSet
	// Files are the CPUs each followed ban file bans, by path.
	Files map[string]sysfs.CPUSet
	// Partitions are the CPUs of isolated cpuset partitions.
	Partitions sysfs.CPUSet
	// NotDefault are the CPUs missing from default_smp_affinity, where
	// that counts (--ban-default-affinity).
	NotDefault sysfs.CPUSet
	// Daemon are the CPUs the running daemon bans (for a command run
	// beside it), and DaemonBy the same by the daemon's sources (its
	// configuration is BanDaemon here).
	Daemon   sysfs.CPUSet
	DaemonBy map[BanSource]sysfs.CPUSet
	// IncludeIsolated allows isolated and nohz_full CPUs and isolated
	// partitions, which are banned by default: they are isolated
	// precisely to be left undisturbed.
	IncludeIsolated bool
}

// Allowed returns the CPUs IRQs may go to: online minus banned.
func (b BannedCPUs) Allowed(cpus sysfs.CPUInfo) sysfs.CPUSet {
	return cpus.Online.Difference(b.All(cpus))
}

// All returns every banned CPU, including isolated and nohz_full CPUs
// and isolated partitions unless IncludeIsolated.
func (b BannedCPUs) All(cpus sysfs.CPUInfo) sysfs.CPUSet {
	var all sysfs.CPUSet
	for _, set := range b.bySource(cpus) {
		all = all.Union(set)
	}
	return all
}

// Configured are the banned CPUs that come from irqshift's configuration
// and the files and partitions it follows, not from the boot command
// line: what the daemon records for the commands run beside it.
func (b BannedCPUs) Configured() sysfs.CPUSet {
	all := b.User.Union(b.NotDefault).Union(b.Daemon)
	for _, set := range b.DaemonBy {
		all = all.Union(set)
	}
	for _, set := range b.Files {
		all = all.Union(set)
	}
	if !b.IncludeIsolated {
		all = all.Union(b.Partitions)
	}
	return all
}

// Sources returns the banned CPUs of each source that bans any.
func (b BannedCPUs) Sources(cpus sysfs.CPUInfo) map[BanSource]sysfs.CPUSet {
	out := map[BanSource]sysfs.CPUSet{}
	for source, set := range b.bySource(cpus) {
		if !set.IsEmpty() {
			out[source] = set
		}
	}
	return out
}

// By returns, for every banned CPU, its sources in BanSources order.
func (b BannedCPUs) By(cpus sysfs.CPUInfo) map[int][]BanSource {
	out := map[int][]BanSource{}
	sources := b.bySource(cpus)
	for _, source := range BanSources {
		for _, cpu := range sources[source].CPUs() {
			if !slices.Contains(out[cpu], source) {
				out[cpu] = append(out[cpu], source)
			}
		}
	}
	return out
}

func (b BannedCPUs) bySource(cpus sysfs.CPUInfo) map[BanSource]sysfs.CPUSet {
	var files sysfs.CPUSet
	for _, set := range b.Files {
		files = files.Union(set)
	}
	out := map[BanSource]sysfs.CPUSet{
		BanConfig:          b.User,
		BanFile:            files,
		BanDefaultAffinity: b.NotDefault,
	}
	if len(b.DaemonBy) == 0 {
		out[BanDaemon] = b.Daemon
	}
	for source, set := range b.DaemonBy {
		if source == BanConfig {
			source = BanDaemon
		}
		out[source] = out[source].Union(set)
	}
	if !b.IncludeIsolated {
		out[BanPartition] = b.Partitions
		out[BanIsolcpus] = cpus.Isolated
		out[BanNohzFull] = cpus.NohzFull
	}
	return out
}
