//go:build vm

package vmtest

// CPUs that leave the IRQ set without going offline, on the live kernel: an isolated cgroup v2
// cpuset partition made and dissolved while the daemon runs, and an irqbalance ban file rewritten
// the way CRI-O does. The daemon must drain the CPUs as on an offline and give them IRQs back.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// banRounds is how many times each test bans and frees CPUs 2-3 (IRQSHIFT_VM_BAN_ROUNDS; make
// bench-vm asks for more to measure the reaction).
func banRounds(t *testing.T) int {
	if s := os.Getenv("IRQSHIFT_VM_BAN_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("IRQSHIFT_VM_BAN_ROUNDS=%q", s)
		}
		return n
	}
	return 1
}

// banCycles runs rounds of ban (which must leave CPUs 2-3 empty and the rest spread ≤ 1) and free
// (which must give 2-3 IRQs again) beside the daemon d, and logs the daemon's reaction_ms of each
// as a BAN-REACTION-MS line for make bench-vm (not a gate: the goal, 50 ms, is measured there).
func banCycles(t *testing.T, d *daemonProc, kind string, ban, free func(), check func(what string)) {
	t.Helper()
	var reactions []float64
	for round := range banRounds(t) {
		from := d.settleCount()
		ban()
		s := d.waitBans(t, from)
		reactions = append(reactions, s.Reaction)
		checkEmpty(t, fmt.Sprintf("round %d: with CPUs 2-3 banned (%s)", round, kind), 2, 3)
		if check != nil {
			check(kind)
		}
		from = d.settleCount()
		free()
		s = d.waitBans(t, from)
		reactions = append(reactions, s.Reaction)
		checkEmpty(t, fmt.Sprintf("round %d: after the %s ban was lifted", round, kind))
		if counts := perCPU(t, movableNow(t), onlineCPUs(t)); counts[2] == 0 && counts[3] == 0 {
			t.Errorf("round %d: CPUs 2-3 got no IRQ back: %v", round, counts)
		}
	}
	med, p90, mx := summary(reactions)
	t.Logf("BAN-REACTION-MS %s kind=%s median=%.2f p90=%.2f max=%.2f n=%d (the daemon's reaction_ms of reason=bans settles: from seeing the change to the last write)",
		vmLabel(t), kind, med, p90, mx, len(reactions))
}

// TestIsolatedPartition: CPUs 2-3 become an isolated cpuset partition while the daemon runs. The
// kernel moves no IRQ off them (docs/KERNELS.md, "Isolated cpuset partitions move nothing and
// notify nobody"); the daemon drains them, spread ≤ 1 over 0-1, and gives them IRQs back when the
// partition is dissolved.
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
	partition := filepath.Join(part, "cpuset.cpus.partition")
	t.Cleanup(func() {
		_ = os.WriteFile(partition, []byte("member"), 0o644)
		_ = os.Remove(part)
	})
	writeString(t, filepath.Join(part, "cpuset.cpus"), "2-3")
	d := startWatch(t, statePath(t), "--no-verify", "--check-interval", "0")
	d.waitReady(t, 0)
	checkEmpty(t, "before the partition")
	idleCost(t, d)
	banCycles(t, d, "partition",
		func() {
			writeString(t, partition, "isolated")
			if b, _ := os.ReadFile(partition); strings.TrimSpace(string(b)) != "isolated" {
				t.Fatalf("the partition is %q, not isolated", b)
			}
		},
		func() { writeString(t, partition, "member") },
		func(string) {
			doc, _ := listMovable(t)
			if by := doc.CPUs.BannedBy["2"]; len(by) == 0 || by[0] != "isolated-partition" {
				t.Errorf("list --json: banned_by %v, want CPU2 from isolated-partition", doc.CPUs.BannedBy)
			}
		})
}

// idleCost logs the CPU time the idle daemon spends following the isolated partitions (it re-reads
// cpuset.cpus.isolated every 250 ms: the kernel notifies no change of it), from the first field of
// /proc/PID/task/*/schedstat (ns on CPU, every thread) over 3 s. A figure for the README, not a
// gate.
func idleCost(t *testing.T, d *daemonProc) {
	t.Helper()
	read := func() int64 {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", d.cmd.Process.Pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("no schedstat of the daemon's threads: %v", err)
		}
		var sum int64
		for _, path := range tasks {
			b, err := os.ReadFile(path)
			if err != nil {
				continue // a thread that ended
			}
			if n, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64); err == nil {
				sum += n
			}
		}
		return sum
	}
	const window = 3 * time.Second
	before := read()
	time.Sleep(window)
	used := read() - before
	t.Logf("IDLE-CPU %s the idle daemon (partitions followed, no verify) used %.2f ms of CPU in %s: %.3f%% of one CPU (TCG guest)",
		vmLabel(t), float64(used)/1e6, window, 100*float64(used)/float64(window.Nanoseconds()))
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
	banCycles(t, d, "file",
		func() { rewrite("IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPUS=0000000c\n") },
		func() { rewrite("IRQBALANCE_BANNED_CPULIST=\n") },
		nil)
}

// movableNow lists the movable IRQs.
func movableNow(t *testing.T) []int {
	t.Helper()
	_, movable := listMovable(t)
	return movable
}
