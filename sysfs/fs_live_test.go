package sysfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests of IsLive's rule for a proc or sys root that is not /proc or
// /sys itself but another mount of the running kernel's (a container's
// /host/proc). TestIsLive in access_test.go covers the paths and links.

// liveChildEnv makes the test binary, run again by runLiveChild, play the
// child of TestIsLiveMounts inside new namespaces; its value is a
// directory to mount on.
const liveChildEnv = "IRQSHIFT_SYSFS_TEST_LIVE_CHILD"

// liveChildDone is what the child prints when it checked everything, so
// that a child that skipped or ran no test is not taken for a pass.
const liveChildDone = "live child: all checks ran"

func TestIsLiveRealRoots(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	fs, err := NewFS("/proc", "/sys")
	if err != nil {
		t.Fatal(err)
	}
	if !fs.IsLive() {
		t.Error("/proc and /sys are not live")
	}
	// The rule for other mounts must hold for the real roots too: they are
	// what a second mount of them looks like.
	if !liveProcRoot("/proc") {
		t.Error("liveProcRoot(/proc) = false: the rule refuses this process's own procfs")
	}
	if !liveSysRoot("/sys") {
		t.Error("liveSysRoot(/sys) = false: the rule refuses the sysfs")
	}
}

// TestIsLiveNotARoot: directories inside procfs and sysfs, and roots of
// other file systems, are not live roots, even where their inode is 1.
func TestIsLiveNotARoot(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, dir := range []string{"/proc/self", "/proc/1", "/proc/sys", "/proc/irq", "/sys", "/sys/fs/cgroup", "/", os.TempDir(), ""} {
		if liveProcRoot(dir) {
			t.Errorf("liveProcRoot(%q) = true, want false", dir)
		}
	}
	for _, dir := range []string{"/sys/devices", "/sys/devices/system/cpu", "/sys/kernel", "/sys/fs/cgroup", "/proc", "/", os.TempDir(), ""} {
		if liveSysRoot(dir) {
			t.Errorf("liveSysRoot(%q) = true, want false", dir)
		}
	}
	for _, roots := range [][2]string{{"/proc/self", "/sys"}, {"/proc", "/sys/devices"}, {"/proc/sys", "/sys/kernel"}} {
		fs, err := NewFS(roots[0], roots[1])
		if err != nil {
			t.Fatal(err)
		}
		if fs.IsLive() {
			t.Errorf("NewFS(%s, %s).IsLive() = true, want false", roots[0], roots[1])
		}
	}
}

// TestIsLiveFixtureFakesIdentity: a fixture tree with every file the rule
// could read copied or faked (self linking to this process's PID, its
// status with NSpid, boot_id, cpu/possible) is not live: no tree can make
// statfs(2) say procfs or sysfs.
func TestIsLiveFixtureFakesIdentity(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	files := map[string]string{
		"proc/" + pid + "/status":            "Name:\tsysfs.test\nPid:\t" + pid + "\nNSpid:\t" + pid + "\n",
		"proc/" + pid + "/mountinfo":         "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
		"proc/interrupts":                    "           CPU0\n",
		"proc/sys/kernel/random/boot_id":     "00000000-0000-0000-0000-000000000000\n",
		"sys/devices/system/cpu/possible":    "0\n",
		"sys/devices/system/cpu/online":      "0\n",
		"sys/kernel/irq/1/actions":           "\n",
		"sys/fs/cgroup/cpuset.cpus.isolated": "\n",
	}
	for _, copied := range []struct{ name, from string }{
		{"proc/sys/kernel/random/boot_id", "/proc/sys/kernel/random/boot_id"},
		{"sys/devices/system/cpu/possible", "/sys/devices/system/cpu/possible"},
	} {
		if data, err := os.ReadFile(copied.from); err == nil {
			files[copied.name] = string(data)
		}
	}
	fs := writeTree(t, files)
	if err := os.Symlink(pid, fs.ProcPath("self")); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(fs.ProcPath("self", "status")); err != nil || !strings.Contains(string(data), "NSpid:\t"+pid) {
		t.Fatalf("the fixture's self/status does not fake this process (%q, %v)", data, err)
	}
	if fs.IsLive() {
		t.Error("a fixture tree faking self, NSpid and boot_id is live")
	}
	if liveProcRoot(fs.ProcPath()) {
		t.Error("liveProcRoot accepts the fixture's proc")
	}
	if liveSysRoot(fs.SysPath()) {
		t.Error("liveSysRoot accepts the fixture's sys")
	}
	// Half live is not live.
	for _, roots := range [][2]string{{"/proc", fs.SysPath()}, {fs.ProcPath(), "/sys"}} {
		half, err := NewFS(roots[0], roots[1])
		if err != nil {
			t.Fatal(err)
		}
		if half.IsLive() {
			t.Errorf("NewFS(%s, %s).IsLive() = true, want false", roots[0], roots[1])
		}
	}
}

// TestIsLiveMounts mounts a second procfs instance (a different superblock
// from /proc since Linux 5.8, as a container's /host/proc is) and binds
// /sys elsewhere, in a child in its own mount namespace, so nothing shows
// in the host's mount table; the child must find both live. A second child,
// also in a new PID namespace, must find the procfs of its parent's
// namespace not live (a container without hostPID sees the host's /proc
// so) and a procfs of its own namespace live. Root only; nothing is
// written under the mounts.
func TestIsLiveMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting procfs needs root")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	t.Run("mount namespace", func(t *testing.T) {
		runLiveChild(t, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, "same-pidns")
	})
	t.Run("pid namespace", func(t *testing.T) {
		runLiveChild(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Unshareflags: syscall.CLONE_NEWNS}, "new-pidns")
	})
}

// runLiveChild runs TestIsLiveChild in a child with attr's namespaces and
// fails t unless the child ran every check and passed.
func runLiveChild(t *testing.T, attr *syscall.SysProcAttr, mode string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIsLiveChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), liveChildEnv+"="+t.TempDir(), liveChildEnv+"_MODE="+mode)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
		t.Skipf("cannot start a child in new namespaces here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), liveChildDone) {
		t.Fatalf("child (%s): %v\n%s", mode, err, out)
	}
	t.Logf("child (%s):\n%s", mode, out)
}

// TestIsLiveChild is TestIsLiveMounts' child; it does nothing unless run
// by runLiveChild.
func TestIsLiveChild(t *testing.T) {
	dir := os.Getenv(liveChildEnv)
	if dir == "" {
		t.Skip("run by TestIsLiveMounts only")
	}
	mode := os.Getenv(liveChildEnv + "_MODE")
	procDir, sysDir := filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	for _, d := range []string{procDir, sysDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Go made / private (MS_REC) in this mount namespace before exec: the
	// mounts below stay here and go with it.
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("proc", procDir, "proc", flags, ""); err != nil {
		t.Fatalf("mount proc on %s: %v", procDir, err)
	}
	defer unix.Unmount(procDir, unix.MNT_DETACH)
	if err := unix.Mount("/sys", sysDir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind /sys on %s: %v", sysDir, err)
	}
	defer unix.Unmount(sysDir, unix.MNT_DETACH)

	if sameDir(procDir, "/proc") {
		// Before 5.8 a procfs of the same PID namespace shares /proc's
		// superblock: the rule is then not what decides.
		t.Logf("kernel shares one procfs superblock per PID namespace: %s is /proc to os.SameFile", procDir)
	}
	fs, err := NewFS(procDir, sysDir)
	if err != nil {
		t.Fatal(err)
	}
	// The new procfs is of this process's PID namespace in both modes.
	if !fs.IsLive() {
		t.Errorf("%s: NewFS(%s, %s).IsLive() = false: a second procfs of this PID namespace is live", mode, procDir, sysDir)
	}
	if !liveProcRoot(procDir) {
		t.Errorf("%s: liveProcRoot(%s) = false", mode, procDir)
	}
	if fs, err := NewFS(procDir, "/sys"); err != nil || !fs.IsLive() {
		t.Errorf("%s: NewFS(%s, /sys).IsLive() = false (%v)", mode, procDir, err)
	}
	switch mode {
	case "same-pidns":
		if !liveProcRoot("/proc") {
			t.Error("liveProcRoot(/proc) = false in the test's own PID namespace")
		}
	case "new-pidns":
		if os.Getpid() != 1 {
			t.Errorf("not in a new PID namespace: PID %d", os.Getpid())
		}
		// /proc is the parent namespace's: this process has two PIDs in
		// its NSpid there.
		if liveProcRoot("/proc") {
			t.Error("liveProcRoot(/proc) = true for the procfs of the parent PID namespace")
		}
		if status, err := os.ReadFile("/proc/self/status"); err == nil {
			t.Logf("NSpid through the parent's procfs: %q", nspidLine(string(status)))
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	// Nothing written: the mounts are only read.
	if !t.Failed() {
		t.Log(liveChildDone)
	}
}

func nspidLine(status string) string {
	for line := range strings.SplitSeq(status, "\n") {
		if strings.HasPrefix(line, "NSpid:") {
			return line
		}
	}
	return ""
}
