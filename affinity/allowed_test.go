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
	want := map[int][]string{
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
