package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// writeRenamed writes path as CRI-O does: a temporary file renamed over it.
func writeRenamed(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonFollowsBanFile: a ban file that does not exist at start is
// created the way CRI-O writes it (hex mask, renamed over); the daemon
// drains its CPUs at once, and gives them IRQs again when the file's
// value is emptied (which bans nothing).
func TestDaemonFollowsBanFile(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	dir := filepath.Join(t.TempDir(), "sysconfig") // created later, as on Debian
	path := filepath.Join(dir, "irqbalance")
	h := startOn(t, sim, "", func(d *Daemon) {
		d.Bans = &Bans{FS: sim.FS(), Files: []string{path}, Logger: d.Logger}
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRenamed(t, path, "IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPUS=0000000c\n")
	s := h.nextReason("bans")
	if !s.State.Banned.Equal(sysfs.NewCPUSet(2, 3)) || s.Full || s.Reaction <= 0 {
		t.Errorf("after the ban: banned %s, full %v, reaction %v", s.State.Banned, s.Full, s.Reaction)
	}
	h.checkExcept(nil, sysfs.NewCPUSet(2, 3))
	if got := testutil.ToFloat64(h.d.Metrics.bannedCPUs.WithLabelValues(affinity.BanFile)); got != 2 {
		t.Errorf("irqshift_banned_cpus{source=ban-file} = %v, want 2", got)
	}
	writeRenamed(t, path, "IRQBALANCE_BANNED_CPULIST=\n")
	s = h.nextReason("bans")
	if !s.State.Banned.IsEmpty() {
		t.Errorf("after the empty value: banned %s", s.State.Banned)
	}
	if load := h.check(nil); load[2] == 0 || load[3] == 0 {
		t.Errorf("CPUs 2-3 got no IRQ back: %v", load)
	}
}

// TestDaemonFollowsIsolatedPartitions: CPUs that an isolated cpuset
// partition takes (the root's cpuset.cpus.isolated, which the kernel
// notifies nobody of) are drained within the poll interval, and get IRQs
// back when the partition is dissolved.
func TestDaemonFollowsIsolatedPartitions(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	isolated := filepath.Join(sim.SysDir(), "fs", "cgroup", "cpuset.cpus.isolated")
	for path, content := range map[string]string{
		filepath.Join(sim.ProcDir(), "self", "mountinfo"): "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
		isolated: "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := startOn(t, sim, "", func(d *Daemon) {
		d.Bans = &Bans{FS: sim.FS(), Partitions: true, PollInterval: 5 * time.Millisecond}
	})
	if err := os.WriteFile(isolated, []byte("2-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := h.nextReason("bans")
	if !s.State.Banned.Equal(sysfs.NewCPUSet(2, 3)) {
		t.Errorf("banned %s, want 2-3", s.State.Banned)
	}
	h.checkExcept(nil, sysfs.NewCPUSet(2, 3))
	if err := os.WriteFile(isolated, []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.nextReason("bans")
	if load := h.check(nil); load[2] == 0 || load[3] == 0 {
		t.Errorf("CPUs 2-3 got no IRQ back: %v", load)
	}
}

// TestBansKeepOnBadFile: a ban file that becomes malformed keeps what it
// banned (a half-written file must not free CPUs); one removed bans
// nothing.
func TestBansKeepOnBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "irqbalance")
	b := &Bans{Files: []string{path}}
	var banned affinity.BannedCPUs
	for _, step := range []struct {
		content string // "" removes the file
		want    string
	}{{"IRQBALANCE_BANNED_CPULIST=1-2\n", "1-2"}, {"IRQBALANCE_BANNED_CPULIST=1-\n", "1-2"}, {"IRQBALANCE_BANNED_CPUS=zz\n", "1-2"}, {"", ""}} {
		if step.content == "" {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(path, []byte(step.content), 0o644); err != nil {
			t.Fatal(err)
		}
		b.filesChanged() // what inotify tells the daemon
		b.apply(&banned, false)
		if got := banned.Files[path].String(); got != step.want {
			t.Errorf("after %q: bans %q, want %q", step.content, got, step.want)
		}
	}
}

// TestDaemonBansDefaultAffinity: with --ban-default-affinity the CPUs that
// CRI-O took out of /proc/irq/default_smp_affinity are banned, and
// given back when they return to it.
func TestDaemonBansDefaultAffinity(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	path := filepath.Join(sim.ProcDir(), "irq", "default_smp_affinity")
	if err := os.WriteFile(path, []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startOn(t, sim, "", func(d *Daemon) {
		d.Bans = &Bans{FS: sim.FS(), DefaultAffinity: true, PollInterval: 5 * time.Millisecond}
	})
	if err := os.WriteFile(path, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := h.nextReason("bans")
	if !s.State.Banned.Equal(sysfs.NewCPUSet(2, 3)) || s.State.BannedBy[2][0] != affinity.BanDefaultAffinity {
		t.Errorf("banned %s by %v, want 2-3 by default_smp_affinity", s.State.Banned, s.State.BannedBy)
	}
	h.checkExcept(nil, sysfs.NewCPUSet(2, 3))
	if err := os.WriteFile(path, []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.nextReason("bans")
	if load := h.check(nil); load[2] == 0 || load[3] == 0 {
		t.Errorf("CPUs 2-3 got no IRQ back: %v", load)
	}
}

// TestBansPollSkipsFiles: the polls between notifications do not read the
// ban files (inotify follows them); a notification does.
func TestBansPollSkipsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "irqbalance")
	if err := os.WriteFile(path, []byte("IRQBALANCE_BANNED_CPULIST=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Bans{Files: []string{path}}
	var banned affinity.BannedCPUs
	b.apply(&banned, true)
	if err := os.WriteFile(path, []byte("IRQBALANCE_BANNED_CPULIST=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b.apply(&banned, false); banned.Files[path].String() != "1" {
		t.Errorf("a poll read the ban file: bans %s", banned.Files[path])
	}
	b.filesChanged()
	if b.apply(&banned, false); banned.Files[path].String() != "2" {
		t.Errorf("after a notification: bans %s, want 2", banned.Files[path])
	}
}
