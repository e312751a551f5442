package affinity

import (
	"maps"
	"slices"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func TestBannedCPUsBySource(t *testing.T) {
	info := sysfs.CPUInfo{Online: cpus("0-7"), Isolated: cpus("7"), NohzFull: cpus("6-7")}
	b := BannedCPUs{
		User:       cpus("1"),
		Files:      map[string]sysfs.CPUSet{"/etc/sysconfig/irqbalance": cpus("2-3"), "/run/other": cpus("3")},
		Partitions: cpus("3-4"),
		NotDefault: cpus("5"),
		Daemon:     cpus("1"),
	}
	if got := b.All(info).String(); got != "1-7" {
		t.Errorf("All = %s, want 1-7", got)
	}
	if got := b.Allowed(info).String(); got != "0" {
		t.Errorf("Allowed = %s, want 0", got)
	}
	by := b.By(info)
	want := map[int][]BanSource{
		1: {BanConfig, BanDaemon}, 2: {BanFile}, 3: {BanFile, BanPartition}, 4: {BanPartition},
		5: {BanDefaultAffinity}, 6: {BanNohzFull}, 7: {BanIsolcpus, BanNohzFull},
	}
	if !maps.EqualFunc(by, want, slices.Equal) {
		t.Errorf("By = %v, want %v", by, want)
	}
	if got := b.Configured().String(); got != "1-5" {
		t.Errorf("Configured = %s, want 1-5 (not the boot isolation)", got)
	}
	if got := b.Sources(info)[BanFile].String(); got != "2-3" {
		t.Errorf("Sources[ban-file] = %s", got)
	}

	// --include-isolated lets IRQs onto boot-isolated CPUs and isolated
	// partitions alike; the other bans stay.
	b.IncludeIsolated = true
	if got := b.All(info).String(); got != "1-3,5" {
		t.Errorf("with IncludeIsolated: All = %s, want 1-3,5", got)
	}
	if _, ok := b.By(info)[4]; ok {
		t.Errorf("with IncludeIsolated CPU4 (partition only) is still banned: %v", b.By(info))
	}
	if got := b.Configured().String(); got != "1-3,5" {
		t.Errorf("with IncludeIsolated: Configured = %s", got)
	}
}

// TestBanSourcesAreEverySource: BanSources names each source once, and
// they are exactly the sources BannedCPUs reports (Sources and By) when
// every one of them bans a CPU, with the daemon's record by source and
// without: a source added to bySource must be listed, and a listed one
// must be reported.
func TestBanSourcesAreEverySource(t *testing.T) {
	for i, s := range BanSources {
		if s == "" || slices.Contains(BanSources[:i], s) {
			t.Errorf("BanSources %v: %q empty or twice", BanSources, s)
		}
	}
	info := sysfs.CPUInfo{Online: cpus("0-7"), Isolated: cpus("7"), NohzFull: cpus("6")}
	reported := map[BanSource]bool{}
	for _, b := range []BannedCPUs{
		{User: cpus("1"), Files: map[string]sysfs.CPUSet{"f": cpus("2")}, Partitions: cpus("3"), NotDefault: cpus("4"), Daemon: cpus("5")},
		{User: cpus("1"), Daemon: cpus("2-3"), DaemonBy: map[BanSource]sysfs.CPUSet{BanConfig: cpus("2"), BanFile: cpus("3"), BanDefaultAffinity: cpus("4")}},
	} {
		for source := range b.Sources(info) {
			reported[source] = true
		}
		for cpu, by := range b.By(info) {
			for _, source := range by {
				if !slices.Contains(BanSources, source) {
					t.Errorf("By: CPU%d banned by %q, not in BanSources %v", cpu, source, BanSources)
				}
			}
		}
	}
	for source := range reported {
		if !slices.Contains(BanSources, source) {
			t.Errorf("Sources reports %q, not in BanSources %v", source, BanSources)
		}
	}
	for _, source := range BanSources {
		if !reported[source] {
			t.Errorf("BanSources lists %q, which Sources never reports", source)
		}
	}
}
