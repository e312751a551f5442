package sysfs

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// accessTree is a tree where the lowest IRQ has a 0444 file (skipped), the
// lowest writable one sorts after another by name (9 < 10 but "10" < "9"),
// cpu0 has no online file and cpufreq is not a CPU.
func accessTree(t *testing.T) FS {
	t.Helper()
	fs := writeTree(t, map[string]string{
		"proc/irq/2/smp_affinity_list":        "0-3\n",
		"proc/irq/9/smp_affinity_list":        "0-3\n",
		"proc/irq/10/smp_affinity_list":       "0-3\n",
		"proc/irq/default_smp_affinity":       "f\n",
		"sys/devices/system/cpu/cpu0/uevent":  "",
		"sys/devices/system/cpu/cpu1/online":  "1\n",
		"sys/devices/system/cpu/cpu10/online": "1\n",
		"sys/devices/system/cpu/cpufreq/x":    "",
	})
	if err := os.Chmod(fs.AffinityListPath(2), 0o444); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestCheckWriteAccess(t *testing.T) {
	fs := accessTree(t)
	asked := fakeAccess(t, nil)
	if err := fs.CheckWriteAccess(); err != nil {
		t.Errorf("allowed: %v", err)
	}
	if want := []string{fs.AffinityListPath(9), fs.CPUOnlinePath(1)}; strings.Join(*asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked about %v, want %v", *asked, want)
	}

	fakeAccess(t, syscall.EACCES)
	err := fs.CheckWriteAccess()
	if !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EACCES) || WriteClassName(err) != "permission" {
		t.Fatalf("denied: %v, want ErrPermission and EACCES", err)
	}
	want := "writing IRQ affinity needs root (" + fs.AffinityListPath(9) + ": permission denied)"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// Only the CPU online file refused.
	saved := accessWrite
	accessWrite = func(path string) error {
		if filepath.Base(path) == "online" {
			return syscall.EPERM
		}
		return nil
	}
	t.Cleanup(func() { accessWrite = saved })
	err = fs.CheckWriteAccess()
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CPU online state needs root ("+fs.CPUOnlinePath(1)+": operation not permitted)") {
		t.Errorf("online refused: %v", err)
	}

	fakeAccess(t, syscall.ENOENT) // freed while we looked
	if err := fs.CheckWriteAccess(); err != nil {
		t.Errorf("ENOENT: %v, want nil", err)
	}
	fakeAccess(t, syscall.EROFS)
	if err := fs.CheckWriteAccess(); !errors.Is(err, ErrWrite) || errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EROFS) {
		t.Errorf("EROFS: %v, want ErrWrite with the errno, not a permission error", err)
	}

	// Nothing to write, nothing to check.
	asked = fakeAccess(t, syscall.EACCES)
	if err := writeTree(t, nil).CheckWriteAccess(); err != nil || len(*asked) != 0 {
		t.Errorf("empty tree: %v, asked about %v", err, *asked)
	}
}

func TestIsLive(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	dir := t.TempDir()
	procLink, sysLink := filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	for target, link := range map[string]string{"/proc": procLink, "/sys": sysLink} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	fixture := writeTree(t, nil)
	for _, tt := range []struct {
		proc, sys string
		want      bool
	}{
		{"/proc", "/sys", true},
		{"/proc/", "//sys", true},
		{procLink, sysLink, true},
		{fixture.proc, fixture.sys, false},
		{"/proc", fixture.sys, false},
		{procLink, fixture.sys, false},
		{fixture.proc, "/sys", false},
		{"/sys", "/proc", false},
	} {
		fs, err := NewFS(tt.proc, tt.sys)
		if err != nil {
			t.Fatal(err)
		}
		if got := fs.IsLive(); got != tt.want {
			t.Errorf("NewFS(%s, %s).IsLive() = %v, want %v", tt.proc, tt.sys, got, tt.want)
		}
	}
	if (FS{}).IsLive() {
		t.Error("the zero FS is live")
	}
}

// unprivilegedEnv names the tree TestUnprivileged's child checks.
const unprivilegedEnv = "IRQSHIFT_SYSFS_TEST_UNPRIVILEGED_TREE"

// TestUnprivileged runs the checks of checkUnprivileged for real, in a
// process that may not write the tree: this one when it is not root, else
// a copy of the test binary run as nobody (uid 65534). The tree's writable
// files are mode 0464, so neither its owner nor others may write them,
// and they still have a write bit for CheckWriteAccess to pick.
func TestUnprivileged(t *testing.T) {
	if dir := os.Getenv(unprivilegedEnv); dir != "" {
		checkUnprivileged(t, dir)
		return
	}
	dir, err := os.MkdirTemp("", "sysfs-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for rel, mode := range map[string]os.FileMode{
		"proc/irq/11/smp_affinity_list":      0o444,
		"proc/irq/13/smp_affinity_list":      0o464,
		"sys/devices/system/cpu/cpu1/online": 0o464,
	} {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if accessWrite(filepath.Join(dir, "proc/irq/13/smp_affinity_list")) == nil {
			t.Skip("this process may write a 0464 file it owns (CAP_DAC_OVERRIDE?)")
		}
		checkUnprivileged(t, dir)
		return
	}

	exe := filepath.Join(dir, "sysfs.test")
	if err := copyExecutable(exe); err != nil {
		t.Skipf("cannot copy the test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^TestUnprivileged$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedEnv+"="+dir, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		t.Skipf("cannot run the test binary as nobody: %v", err)
	case err != nil:
		t.Fatalf("as nobody: %v\n%s", err, out)
	case !strings.Contains(string(out), "--- PASS: TestUnprivileged"):
		t.Fatalf("the child did not run the test:\n%s", out)
	}
	t.Logf("as nobody:\n%s", out)

	// Root, on the same tree: EPERM is the kernel's refusal, and the
	// files are writable.
	fs, err := NewFS(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	ro := fs.AffinityListPath(11)
	if got := writeClass(ro, &os.PathError{Op: "write", Path: ro, Err: syscall.EPERM}); got != ErrUnmovable {
		t.Errorf("root, EPERM on a 0444 file: class %v, want ErrUnmovable", got)
	}
	if err := fs.CheckWriteAccess(); err != nil {
		t.Errorf("root: CheckWriteAccess = %v", err)
	}
}

// checkUnprivileged runs in a process that may not write the tree at dir.
func checkUnprivileged(t *testing.T, dir string) {
	fs, err := NewFS(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WriteAffinity(13, NewCPUSet(2))
	if !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EACCES) || errors.Is(err, ErrUnmovable) || WriteClassName(err) != "permission" {
		t.Errorf("WriteAffinity: %v, want ErrPermission and EACCES, not unmovable", err)
	}
	err = fs.WriteAffinity(11, NewCPUSet(2))
	if !errors.Is(err, ErrPermission) {
		t.Errorf("WriteAffinity of a 0444 file: %v, want ErrPermission", err)
	}
	// An EPERM where faccessat says we may not write: the process, not
	// the IRQ.
	path := fs.AffinityListPath(13)
	if got := writeClass(path, &os.PathError{Op: "write", Path: path, Err: syscall.EPERM}); got != ErrPermission {
		t.Errorf("EPERM without privilege: class %v, want ErrPermission", got)
	}
	err = fs.SetCPUOnline(1, false)
	if !errors.Is(err, ErrPermission) || !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("SetCPUOnline: %v, want ErrWrite, ErrPermission and EACCES", err)
	}
	if err := fs.SetCPUOnline(2, false); errors.Is(err, ErrPermission) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetCPUOnline of a CPU without the file: %v, want not-exist only", err)
	}
	err = fs.CheckWriteAccess()
	want := "writing IRQ affinity needs root (" + path + ": permission denied)"
	if !errors.Is(err, ErrPermission) || err.Error() != want {
		t.Errorf("CheckWriteAccess = %v, want %q", err, want)
	}
}

// copyExecutable copies the running test binary to path, mode 0755.
func copyExecutable(path string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
