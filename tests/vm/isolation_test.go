//go:build vm

package vmtest

// CPUs that leave the IRQ set without going offline, on the live kernel: an isolated cgroup v2
// cpuset partition made and dissolved while the daemon runs, and an irqbalance ban file rewritten
// the way CRI-O does. The daemon must drain the CPUs as on an offline and give them IRQs back.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitBans waits for a settle with reason=bans logged from index from on, then for the full
// settle after it (the recheck), and returns the bans settle: the placement is checked after both.
func (d *daemonProc) waitBans(t *testing.T, from int) settleLog {
	t.Helper()
	var got settleLog
	ok, exited := d.waitFor(settleTimeout, func() bool {
		seen := false
		for _, s := range d.settles[min(from, len(d.settles)):] {
			if s.Reason == "bans" {
				got, seen = s, true
			} else if seen && s.Full {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no reason=bans settle and recheck (exited %v); log:\n%s", exited, d.tail(60))
	}
	return got
}

// cgroupRoot mounts cgroup v2 at /sys/fs/cgroup when nothing is mounted there yet (the guest's
// init mounts none), enables the cpuset controller for children, and returns the root.
func cgroupRoot(t *testing.T) string {
	t.Helper()
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("none", root, "cgroup2", 0, ""); err != nil {
			t.Skipf("cannot mount cgroup2 on %s: %v", root, err)
		}
	}
	controllers, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil || !strings.Contains(string(controllers), "cpuset") {
		t.Skipf("no cpuset controller in cgroup v2 (%q, %v)", controllers, err)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+cpuset"), 0o644); err != nil {
		t.Fatalf("enable cpuset: %v", err)
	}
	return root
}

func writeString(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %q to %s: %v", content, path, err)
	}
}

// TestIsolatedPartition: CPUs 2-3 become an isolated cpuset partition while the daemon runs. The
// kernel moves no IRQ off them (KERNEL-FACTS: runtime isolation); the daemon drains them, spread
// ≤ 1 over 0-1, and gives them IRQs back when the partition is dissolved.
func TestIsolatedPartition(t *testing.T) {
	needIrqshift(t, 4)
	restoreAtEnd(t)
	root := cgroupRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cpuset.cpus.isolated")); err != nil {
		t.Skipf("this kernel has no %s/cpuset.cpus.isolated (it came in 6.7): %v", root, err)
	}
	part := filepath.Join(root, "irqshift-test")
	if err := os.Mkdir(part, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(part, "cpuset.cpus.partition"), []byte("member"), 0o644)
		_ = os.Remove(part)
	})
	writeString(t, filepath.Join(part, "cpuset.cpus"), "2-3")
	d := startWatch(t, statePath(t), "--no-verify", "--check-interval", "0")
	d.waitReady(t, 0)
	checkEmpty(t, "before the partition")

	from := d.settleCount()
	start := time.Now()
	writeString(t, filepath.Join(part, "cpuset.cpus.partition"), "isolated")
	if b, _ := os.ReadFile(filepath.Join(part, "cpuset.cpus.partition")); strings.TrimSpace(string(b)) != "isolated" {
		t.Fatalf("the partition is %q, not isolated", b)
	}
	s := d.waitBans(t, from)
	// Not a gate: the poll interval (250 ms) bounds how late the daemon sees it.
	t.Logf("BAN-REACTION-MS partition %.1f (isolated written to settle end, as seen here; daemon reaction_ms %.1f)",
		float64(time.Since(start).Microseconds())/1000, s.Reaction)
	checkEmpty(t, "with CPUs 2-3 isolated", 2, 3)
	doc, _ := listMovable(t)
	if by := doc.CPUs.BannedBy["2"]; len(by) == 0 || by[0] != "isolated-partition" {
		t.Errorf("list --json: banned_by %v, want CPU2 from isolated-partition", doc.CPUs.BannedBy)
	}

	from = d.settleCount()
	writeString(t, filepath.Join(part, "cpuset.cpus.partition"), "member")
	d.waitBans(t, from)
	checkEmpty(t, "after the partition was dissolved")
	if counts := perCPU(t, movableNow(t), onlineCPUs(t)); counts[2] == 0 && counts[3] == 0 {
		t.Errorf("CPUs 2-3 got no IRQ back: %v", counts)
	}
}

// TestBanFileLikeCRIO: a ban file that does not exist when the daemon starts is written the way
// CRI-O writes /etc/sysconfig/irqbalance (a temporary file renamed over it) with a hex mask, then
// with an empty cpulist: CPUs 2-3 are drained, then used again.
func TestBanFileLikeCRIO(t *testing.T) {
	needIrqshift(t, 4)
	restoreAtEnd(t)
	// The directory exists, as on a CRI-O node; the file not yet (the in-process tests cover a
	// directory created later, which the daemon polls for).
	dir := filepath.Join(t.TempDir(), "sysconfig")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "irqbalance")
	d := startWatch(t, statePath(t), "--no-verify", "--check-interval", "0", "--ban-file", file)
	d.waitReady(t, 0)
	rewrite := func(content string) {
		tmp := filepath.Join(dir, ".irqbalance.tmp")
		writeString(t, tmp, content)
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	from := d.settleCount()
	start := time.Now()
	rewrite("IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPUS=0000000c\n")
	s := d.waitBans(t, from)
	t.Logf("BAN-REACTION-MS file %.1f (rename to settle end, as seen here; daemon reaction_ms %.1f)",
		float64(time.Since(start).Microseconds())/1000, s.Reaction)
	checkEmpty(t, "with IRQBALANCE_BANNED_CPUS=0000000c", 2, 3)

	from = d.settleCount()
	rewrite("IRQBALANCE_BANNED_CPULIST=\n")
	d.waitBans(t, from)
	checkEmpty(t, "with an empty IRQBALANCE_BANNED_CPULIST")
	if counts := perCPU(t, movableNow(t), onlineCPUs(t)); counts[2] == 0 && counts[3] == 0 {
		t.Errorf("CPUs 2-3 got no IRQ back: %v", counts)
	}
}

// movableNow lists the movable IRQs.
func movableNow(t *testing.T) []int {
	t.Helper()
	_, movable := listMovable(t)
	return movable
}
