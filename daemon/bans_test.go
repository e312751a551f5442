package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/envfile"
	"github.com/irqshift/irqshift/internal/fifotest"
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
	if got := testutil.ToFloat64(h.d.Metrics.bannedCPUs.WithLabelValues(string(affinity.BanFile))); got != 2 {
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

// TestBansRefuseNonRegularFile: at start, a ban file path that exists and
// is not a regular file (also through a symbolic link) is an error that
// says what to give instead, and Run returns it at once, before any
// settle: a FIFO would block the daemon for good, /dev/zero grow it. A
// path that does not exist yet, or a symbolic link to a regular file, is
// fine.
func TestBansRefuseNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	fifotest.Make(t, fifo)
	regular := filepath.Join(dir, "irqbalance")
	if err := os.WriteFile(regular, []byte("IRQBALANCE_BANNED_CPULIST=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"zero-link": "/dev/zero", "fifo-link": fifo, "regular-link": regular}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, fifo + " is a FIFO, not a regular file"},
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
		{dir, dir + " is a directory, not a regular file"},
		{filepath.Join(dir, "zero-link"), "zero-link is a symbolic link to /dev/zero, a character device, not a regular file"},
		{filepath.Join(dir, "fifo-link"), "a FIFO, not a regular file"},
		{regular, ""},
		{filepath.Join(dir, "regular-link"), ""},
		{filepath.Join(dir, "missing"), ""},
		{filepath.Join(dir, "missing-dir", "irqbalance"), ""},
	} {
		err := (&Bans{Files: []string{regular, tc.path}}).check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want == "":
		case err == nil:
			t.Errorf("%s: accepted", tc.path)
		case !strings.HasPrefix(err.Error(), "--ban-file ") || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasSuffix(err.Error(), "give the path of an irqbalance environment file (such as /etc/sysconfig/irqbalance)"):
			t.Errorf("%s: %v", tc.path, err)
		}
	}

	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	d := &Daemon{
		Engine: affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim}),
		Source: newFakeSource(),
		Bans:   &Bans{FS: sim.FS(), Files: []string{fifo}},
	}
	var err error
	fifotest.Within(t, "Run with a FIFO as ban file", func() { err = d.Run(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "is a FIFO, not a regular file") {
		t.Errorf("Run: %v, want the FIFO refused", err)
	}
}

// TestBansKeepOnNonRegularFile: a ban file replaced while the daemon runs
// by a FIFO, a symbolic link to a device or a file over the size bound is
// neither blocked on nor read: it keeps what the file banned, with one
// warning however often it is read (every poll, when inotify does not
// watch the files). A symbolic link to a regular file is followed.
func TestBansKeepOnNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "irqbalance")
	var logs bytes.Buffer
	b := &Bans{Files: []string{path}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	b.unwatched.Store(true) // every read reads the files
	var banned affinity.BannedCPUs
	replace := func(make func()) {
		t.Helper()
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		make()
	}
	write := func(target, content string) func() {
		return func() {
			if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(target string) func() {
		return func() {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := filepath.Join(dir, "other")
	for _, step := range []struct {
		what   string
		make   func()
		want   string
		warned string // the warning logged once, "" for none
	}{
		{"a regular file", write(path, "IRQBALANCE_BANNED_CPULIST=1-2\n"), "1-2", ""},
		{"a FIFO", func() { fifotest.Make(t, path) }, "1-2", "ban file is not a regular file; keeping what it banned"},
		{"a link to /dev/zero", link("/dev/zero"), "1-2", "a character device, not a regular file"},
		{"a file over 1 MiB", write(path, strings.Repeat("# a comment line\n", envfile.MaxSize/16)), "1-2", "malformed ban file; keeping what it banned"},
		{"a link to a regular file", func() { write(other, "IRQBALANCE_BANNED_CPUS=8\n")(); link(other)() }, "3", ""},
		{"a malformed file", write(path, "IRQBALANCE_BANNED_CPULIST=x\n"), "3", "malformed ban file; keeping what it banned"},
	} {
		replace(step.make)
		logs.Reset()
		for range 3 {
			fifotest.Within(t, "a read of "+step.what, func() { b.apply(&banned, false) })
			if got := banned.Files[path].String(); got != step.want {
				t.Errorf("%s: bans %q, want %q", step.what, got, step.want)
			}
		}
		lines := strings.Count(logs.String(), "level=WARN")
		switch {
		case step.warned == "" && lines != 0:
			t.Errorf("%s: warned %q", step.what, logs.String())
		case step.warned != "" && (lines != 1 || !strings.Contains(logs.String(), step.warned)):
			t.Errorf("%s: logged %q, want one warning with %q", step.what, logs.String(), step.warned)
		}
	}
}

// TestBansLogPartitionsOnce: when the cgroup v2 root cannot be found for
// a reason that may pass (mountinfo unreadable), the isolated partitions
// are looked for again at every read, but the reason is logged once, and
// again only when it changes; following them again is logged once. A
// cpuset.cpus.isolated that cannot be parsed is warned of once too, and
// such failures keep what the partitions banned.
func TestBansLogPartitionsOnce(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	mountinfo := filepath.Join(sim.ProcDir(), "self", "mountinfo")
	isolated := filepath.Join(sim.SysDir(), "fs", "cgroup", "cpuset.cpus.isolated")
	var logs bytes.Buffer
	b := &Bans{FS: sim.FS(), Partitions: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	var banned affinity.BannedCPUs
	const (
		notFollowing = `level=INFO msg="not following isolated cpuset partitions"`
		following    = `level=INFO msg="following isolated cpuset partitions"`
		cannotRead   = `level=WARN msg="cannot read the isolated cpuset partitions; keeping the last"`
	)
	nothing := func() error { return nil }
	writeIsolated := func(content string) func() error {
		return func() error { return os.WriteFile(isolated, []byte(content), 0o644) }
	}
	for _, step := range []struct {
		what, want string
		change     func() error
		logged     []string // the lines logged, in order
	}{
		{"no mountinfo", "", nothing, []string{notFollowing}},
		{"mountinfo a directory", "", func() error { return os.MkdirAll(mountinfo, 0o755) }, []string{notFollowing}},
		{"mountinfo readable", "2-3", func() error {
			if err := os.Remove(mountinfo); err != nil {
				return err
			}
			if err := os.WriteFile(mountinfo, []byte("30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"), 0o644); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(isolated), 0o755); err != nil {
				return err
			}
			return writeIsolated("2-3\n")()
		}, []string{following}},
		{"the same partitions", "2-3", nothing, nil},
		{"cpuset.cpus.isolated malformed", "2-3", writeIsolated("3-1\n"), []string{cannotRead}},
		{"cpuset.cpus.isolated right again", "2", writeIsolated("2\n"), []string{following}},
		{"malformed, then mountinfo gone", "2", func() error {
			if err := os.Remove(mountinfo); err != nil {
				return err
			}
			return writeIsolated("x\n")()
		}, []string{cannotRead, notFollowing}},
	} {
		if err := step.change(); err != nil {
			t.Fatal(err)
		}
		logs.Reset()
		for range 4 {
			b.apply(&banned, false)
			if got := banned.Partitions.String(); got != step.want {
				t.Errorf("%s: partitions ban %q, want %q", step.what, got, step.want)
			}
		}
		if b.noCgroup {
			t.Fatalf("%s: stopped following the partitions", step.what)
		}
		lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
		if logs.Len() == 0 {
			lines = nil
		}
		ok := len(lines) == len(step.logged)
		for i := 0; ok && i < len(lines); i++ {
			ok = strings.Contains(lines[i], step.logged[i])
		}
		if !ok {
			t.Errorf("%s: logged %q, want %q", step.what, lines, step.logged)
		}
	}
}
