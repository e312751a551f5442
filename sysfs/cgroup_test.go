package sysfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A hybrid layout (systemd's, cgroup v1 controllers with cgroup2 at
// .../unified) and the unified one, as /proc/self/mountinfo prints them.
const (
	mountsHybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	mountsUnified = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
60 25 0:26 /kubepods /sys/fs/cgroup/pod rw shared:9 - cgroup2 cgroup2 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
61 22 0:40 / /mnt/my\040disk rw - ext4 /dev/vdb rw
`
)

func TestParseMountInfo(t *testing.T) {
	mounts, err := ParseMountInfo([]byte(mountsUnified))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 5 || mounts[2] != (Mount{Root: "/kubepods", Point: "/sys/fs/cgroup/pod", Type: "cgroup2"}) ||
		mounts[4].Point != "/mnt/my disk" || mounts[4].Type != "ext4" {
		t.Errorf("mounts %+v", mounts)
	}
	for _, bad := range []string{"1 2 3 / /x rw", "1 2 0:1 / /x rw shared:1 -", `1 2 0:1 / /x\04 rw - ext4 a b`, `1 2 0:1 / /x\999 rw - ext4 a b`} {
		if _, err := ParseMountInfo([]byte(bad + "\n")); !errors.Is(err, ErrFileParse) {
			t.Errorf("%q: %v, want ErrFileParse", bad, err)
		}
	}
}

func TestCgroupRootAndIsolated(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"proc/self/mountinfo":                mountsUnified,
		"sys/fs/cgroup/cpuset.cpus.isolated": "2-3,8\n",
	})
	root, err := fs.CgroupRoot()
	if err != nil || root != fs.SysPath("fs", "cgroup") {
		t.Fatalf("CgroupRoot = %q, %v; want %s", root, err, fs.SysPath("fs", "cgroup"))
	}
	set, err := fs.IsolatedPartitions(root)
	if err != nil || set.String() != "2-3,8" {
		t.Errorf("IsolatedPartitions = %s, %v", set, err)
	}
	if err := os.WriteFile(filepath.Join(root, "cpuset.cpus.isolated"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if set, err := fs.IsolatedPartitions(root); err != nil || !set.IsEmpty() {
		t.Errorf("empty file: %s, %v", set, err)
	}
	if err := os.WriteFile(filepath.Join(root, "cpuset.cpus.isolated"), []byte("2-x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.IsolatedPartitions(root); err == nil || errors.Is(err, ErrNoIsolatedFile) {
		t.Errorf("malformed file: %v, want a parse error", err)
	}

	// Hybrid: cgroup2 has no cpuset controller, so no such file.
	hybrid := writeTree(t, map[string]string{"proc/self/mountinfo": mountsHybrid})
	root, err = hybrid.CgroupRoot()
	if err != nil || root != hybrid.SysPath("fs", "cgroup", "unified") {
		t.Fatalf("hybrid CgroupRoot = %q, %v", root, err)
	}
	if _, err := hybrid.IsolatedPartitions(root); !errors.Is(err, ErrNoIsolatedFile) {
		t.Errorf("hybrid: %v, want ErrNoIsolatedFile", err)
	}
	none := writeTree(t, map[string]string{"proc/self/mountinfo": "22 1 0:21 / / rw - ext4 /dev/vda rw\n"})
	if _, err := none.CgroupRoot(); !errors.Is(err, ErrNoIsolatedFile) {
		t.Errorf("no cgroup2: %v, want ErrNoIsolatedFile", err)
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte(mountsUnified))
	f.Add([]byte(mountsHybrid))
	f.Fuzz(func(t *testing.T, data []byte) {
		mounts, err := ParseMountInfo(data)
		if err == nil {
			for _, m := range mounts {
				if m.Type == "" {
					t.Fatalf("mount without a type: %+v", m)
				}
			}
		}
	})
}

func TestIsolatedReader(t *testing.T) {
	fs := writeTree(t, map[string]string{"sys/fs/cgroup/cpuset.cpus.isolated": "\n"})
	root := fs.SysPath("fs", "cgroup")
	r, err := fs.OpenIsolatedPartitions(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	path := filepath.Join(root, "cpuset.cpus.isolated")
	for _, step := range []struct{ content, want string }{{"\n", ""}, {"2-3\n", "2-3"}, {"2-3\n", "2-3"}, {"\n", ""}} {
		// Rewritten in place, as the kernel's file changes under an open descriptor.
		if err := os.WriteFile(path, []byte(step.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if set, err := r.Read(); err != nil || set.String() != step.want {
			t.Errorf("after %q: %s, %v; want %s", step.content, set, err, step.want)
		}
	}
	if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(); err == nil {
		t.Error("malformed content: no error")
	}
	if _, err := writeTree(t, nil).OpenIsolatedPartitions(root + "-none"); !errors.Is(err, ErrNoIsolatedFile) {
		t.Errorf("missing file: %v, want ErrNoIsolatedFile", err)
	}
}
