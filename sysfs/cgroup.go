package sysfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/internal/quote"
)

// ErrNoIsolatedFile means the kernel gives no root cpuset.cpus.isolated to
// read: no cgroup v2 mount, the cpuset controller bound to a v1 hierarchy
// (a hybrid layout), or a kernel older than 6.7, which lacks the file.
// Isolated partitions are then not seen; it is not a failure.
var ErrNoIsolatedFile = errors.New("no cgroup v2 cpuset.cpus.isolated")

// Mount is one line of /proc/self/mountinfo (proc_pid_mountinfo(5)).
type Mount struct {
	// Root is the path within the file system mounted here ("/" unless
	// a bind mount or a cgroup namespace shows a subtree).
	Root string
	// Point is where it is mounted, unescaped.
	Point string
	// Type is the file system type ("cgroup2").
	Type string
}

// ParseMountInfo parses mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTIONS
// [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS" per line, with space, tab,
// newline and backslash in ROOT and POINT escaped as \040, \011, \012 and
// \134. A line it cannot read gives an error wrapping ErrFileParse.
func ParseMountInfo(data []byte) ([]Mount, error) {
	var out []Mount
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fields := strings.Fields(string(line))
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 7 || sep < 0 || sep+1 >= len(fields) {
			return nil, fmt.Errorf("%w: mountinfo line %d: %s", ErrFileParse, n+1, quote.Bytes(line))
		}
		root, err1 := unescapeMount(fields[3])
		point, err2 := unescapeMount(fields[4])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%w: mountinfo line %d: %v", ErrFileParse, n+1, err)
		}
		out = append(out, Mount{Root: root, Point: point, Type: fields[sep+1]})
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes (seq_path's "\ooo").
func unescapeMount(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("bad escape in %s", quote.Quote(s))
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %s", quote.Quote(s))
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// CgroupRoot finds the root of the cgroup v2 hierarchy: on a live system
// <sys>/fs/cgroup when it is such a root (also through a pod's /host/sys),
// else the cgroup2 mount of <proc>/self/mountinfo whose Root is "/" (a
// cgroup namespace shows a subtree, whose files do not hold the machine's
// partitions), /sys/fs/cgroup first where there are several. On a fixture
// tree a mount point under /sys is taken inside its sys root. It returns
// ErrNoIsolatedFile when there is none.
func (fs FS) CgroupRoot() (string, error) {
	// A live sys root mounted elsewhere with its submounts (a pod's hostPath
	// /sys at /host/sys) holds the host's cgroup2 hierarchy, whose root has
	// cpuset.cpus.isolated, while this process's own mounts may show only
	// its cgroup namespace: a subtree without that root-only file. The root
	// of a cgroup2 hierarchy is its inode 1 (kernfs), a namespace's is not.
	if fs.IsLive() {
		if p := fs.SysPath("fs", "cgroup"); isRootOf(p, unix.CGROUP2_SUPER_MAGIC) {
			return p, nil
		}
	}
	data, err := readFile(fs.ProcPath("self", "mountinfo"))
	if err != nil {
		return "", err
	}
	mounts, err := ParseMountInfo(data)
	if err != nil {
		return "", err
	}
	best := ""
	for _, m := range mounts {
		if m.Type != "cgroup2" || m.Root != "/" {
			continue
		}
		if best == "" || m.Point == "/sys/fs/cgroup" {
			best = m.Point
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: no cgroup2 mount in %s", ErrNoIsolatedFile, fs.ProcPath("self", "mountinfo"))
	}
	if !fs.IsLive() {
		rel, under := strings.CutPrefix(best, "/sys/")
		if !under {
			return "", fmt.Errorf("%w: cgroup2 mount %s is outside this tree's /sys", ErrNoIsolatedFile, quote.Quote(best))
		}
		best = fs.SysPath(filepath.FromSlash(rel))
	}
	return best, nil
}

// IsolatedPartitions reads the root's cpuset.cpus.isolated under the
// cgroup v2 root: the CPUs of every isolated cpuset partition
// (`cpuset.cpus.partition = isolated`), which the kernel takes out of the
// scheduler's balancing but whose IRQs it leaves where they are. It
// returns ErrNoIsolatedFile where the kernel has no such file.
func (fs FS) IsolatedPartitions(cgroupRoot string) (CPUSet, error) {
	r, err := fs.OpenIsolatedPartitions(cgroupRoot)
	if err != nil {
		return CPUSet{}, err
	}
	defer r.Close()
	return r.Read()
}

// IsolatedReader reads the root's cpuset.cpus.isolated again and again
// through one open file, with pread(2) at offset 0: the daemon polls it
// (the kernel notifies no change of it), and in the arm64 VM a pread on a
// kept descriptor took a third of an open, read and close.
type IsolatedReader struct {
	f    *os.File
	buf  []byte
	last []byte
	set  CPUSet
}

// OpenIsolatedPartitions opens cgroupRoot's cpuset.cpus.isolated for
// IsolatedReader.Read; ErrNoIsolatedFile where the kernel has none.
func (fs FS) OpenIsolatedPartitions(cgroupRoot string) (*IsolatedReader, error) {
	path := filepath.Join(cgroupRoot, "cpuset.cpus.isolated")
	f, err := os.Open(path)
	if isNotExist(err) {
		return nil, fmt.Errorf("%w: %s", ErrNoIsolatedFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	return &IsolatedReader{f: f, buf: make([]byte, 4096)}, nil
}

// Read returns the CPUs of the isolated partitions now. Content equal to
// the last read's is not parsed again.
func (r *IsolatedReader) Read() (CPUSet, error) {
	n, err := r.f.ReadAt(r.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return CPUSet{}, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	if n == len(r.buf) {
		// A cpulist longer than a page: grow and read again.
		r.buf = make([]byte, 2*len(r.buf))
		return r.Read()
	}
	data := r.buf[:n]
	if r.last != nil && bytes.Equal(data, r.last) {
		return r.set, nil
	}
	set, err := ParseCPUList(string(data))
	if err != nil {
		return CPUSet{}, fmt.Errorf("%s: %w", r.f.Name(), err)
	}
	r.last, r.set = append(r.last[:0], data...), set
	return set, nil
}

// Close closes the file.
func (r *IsolatedReader) Close() error { return r.f.Close() }
