package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped message says
// which file and what was wrong with it.
var (
	// ErrFileRead means a kernel file could not be read.
	ErrFileRead = errors.New("cannot read kernel file")
	// ErrFileParse means a kernel file was read but its content was not in
	// a format irqshift understands.
	ErrFileParse = errors.New("cannot parse kernel file")
)

// FS is a root for the proc and sys file systems. The zero value is not
// usable; build one with NewFS.
type FS struct {
	proc string
	sys  string
}

// NewFS returns an FS rooted at procRoot (normally /proc) and sysRoot
// (normally /sys). Both must be existing directories.
func NewFS(procRoot, sysRoot string) (FS, error) {
	for _, dir := range []string{procRoot, sysRoot} {
		info, err := os.Stat(dir)
		if err != nil {
			return FS{}, fmt.Errorf("%w: %w", ErrFileRead, err)
		}
		if !info.IsDir() {
			return FS{}, fmt.Errorf("%w: %s is not a directory", ErrFileRead, dir)
		}
	}
	return FS{proc: filepath.Clean(procRoot), sys: filepath.Clean(sysRoot)}, nil
}

// ProcPath joins elem onto the proc root: ProcPath("irq", "13") is /proc/irq/13.
func (fs FS) ProcPath(elem ...string) string {
	return filepath.Join(append([]string{fs.proc}, elem...)...)
}

// SysPath joins elem onto the sys root.
func (fs FS) SysPath(elem ...string) string {
	return filepath.Join(append([]string{fs.sys}, elem...)...)
}

// IsLive reports whether fs is the running kernel's proc and sys file
// systems, as this process sees them, rather than a fixture tree. The
// live-only paths (eBPF confirmation, the default state file and config,
// the cgroup v2 root as mounted) depend on it, and writing commands refuse
// non-root users early on it.
//
// A root is live when it is the same directory as /proc (or /sys), as the
// file system says (os.SameFile: a symlink or a bind mount of the same
// mount counts), or when it is another mount of the same kernel's file
// system, as in a container that mounts the host's /proc at /host/proc:
// since Linux 5.8 every procfs mount is its own superblock, so os.SameFile
// says no there. Such a proc root counts when (liveProcRoot):
//   - statfs(2) says procfs (PROC_SUPER_MAGIC): the kernel sets f_type from
//     the superblock, so no fixture tree, FUSE or overlay can claim it, and
//     every procfs on the machine is the running kernel's;
//   - it is that procfs's root directory (inode 1), not a subdirectory such
//     as /proc/self;
//   - its self/status says, in NSpid, that this process has one PID there
//     and that it is os.Getpid(): the procfs belongs to this process's PID
//     namespace, so its PIDs are the ones this process sees. A procfs of an
//     ancestor namespace (the host's /proc in a container without hostPID)
//     lists several PIDs and is not live.
//
// A sys root counts when statfs(2) says sysfs (SYSFS_MAGIC) and it is a
// sysfs root directory (inode 1, the kernfs root): every sysfs is the
// running kernel's, whichever network namespace it was mounted in.
func (fs FS) IsLive() bool {
	return (sameDir(fs.proc, "/proc") || liveProcRoot(fs.proc)) &&
		(sameDir(fs.sys, "/sys") || liveSysRoot(fs.sys))
}

// sameDir reports whether the paths a and b name the same existing file.
func sameDir(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(ai, bi)
}

// rootIno is the inode number of the root directory of procfs
// (PROC_ROOT_INO) and of every kernfs file system, sysfs included (the
// first ID of the root's IDR).
const rootIno = 1

// isRootOf reports whether dir is the root directory of a file system of
// type magic, per statfs(2) and stat(2).
func isRootOf(dir string, magic int64) bool {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil || int64(sfs.Type) != magic {
		return false
	}
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && st.Ino == rootIno && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// liveProcRoot reports whether dir is the root of a procfs of this
// process's PID namespace (see IsLive).
func liveProcRoot(dir string) bool {
	if dir == "" || !isRootOf(dir, unix.PROC_SUPER_MAGIC) {
		return false
	}
	status, err := os.ReadFile(filepath.Join(dir, "self", "status"))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			pids := strings.Fields(rest)
			return len(pids) == 1 && pids[0] == strconv.Itoa(os.Getpid())
		}
	}
	// No NSpid: a kernel before 4.1, which irqshift does not run on.
	return false
}

// liveSysRoot reports whether dir is the root of a sysfs (see IsLive).
func liveSysRoot(dir string) bool {
	return dir != "" && isRootOf(dir, unix.SYSFS_MAGIC)
}

// CheckWriteAccess asks the kernel whether this process may write the IRQ
// affinity files and the CPU online files of this root, before anything is
// written: faccessat(2) with AT_EACCESS (effective IDs and capabilities)
// on /proc/irq/N/smp_affinity_list of the lowest-numbered IRQ whose file
// has a write permission bit (6.12 makes those of per-CPU and managed IRQs
// 0444, which only says the kernel will refuse), and on the first
// cpuN/online that exists. A refusal gives an error wrapping ErrPermission
// and the errno, which says what to do. A root with no such file has
// nothing to check and gives nil.
func (fs FS) CheckWriteAccess() error {
	paths := make([]string, 0, 2)
	if p, err := fs.firstWritableAffinity(); err != nil {
		return err
	} else if p != "" {
		paths = append(paths, p)
	}
	if p, err := fs.firstCPUOnline(); err != nil {
		return err
	} else if p != "" {
		paths = append(paths, p)
	}
	for _, path := range paths {
		err := accessWrite(path)
		switch {
		case err == nil, errors.Is(err, os.ErrNotExist):
			// Freed or unplugged since it was listed: nothing to say.
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return WriteAccessError(path, err)
		default:
			return fmt.Errorf("%w: access %s: %w", ErrWrite, path, err)
		}
	}
	return nil
}

// WriteAccessError is the error CheckWriteAccess gives when the kernel
// says (err, EACCES or EPERM) that this process may not write path, an
// IRQ affinity or a CPU online file. It wraps ErrPermission and err. The
// simulator's CheckWriteAccess gives the same.
func WriteAccessError(path string, err error) error {
	return &accessError{path: path, err: err}
}

type accessError struct {
	path string
	err  error
}

func (e *accessError) Error() string {
	what := "IRQ affinity"
	if filepath.Base(e.path) == "online" {
		what = "CPU online state"
	}
	return fmt.Sprintf("writing %s needs root (%s: %v)", what, e.path, e.err)
}

func (e *accessError) Unwrap() []error { return []error{ErrPermission, e.err} }

// firstWritableAffinity returns the smp_affinity_list of the lowest IRQ
// whose file has a write bit, or "" when there is none (or no /proc/irq).
func (fs FS) firstWritableAffinity() (string, error) {
	entries, err := os.ReadDir(fs.ProcPath("irq"))
	if isNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	var irqs []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= 0 && e.IsDir() {
			irqs = append(irqs, n)
		}
	}
	slices.Sort(irqs)
	for _, irq := range irqs {
		path := fs.AffinityListPath(irq)
		if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o222 != 0 {
			return path, nil
		}
	}
	return "", nil
}

// firstCPUOnline returns the online file of the lowest-numbered CPU that
// has one, or "" when none does.
func (fs FS) firstCPUOnline() (string, error) {
	entries, err := os.ReadDir(fs.SysPath(CPUDir))
	if isNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	var cpus []int
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "cpu")
		if n, err := strconv.Atoi(name); ok && err == nil && n >= 0 && name[0] != '+' {
			cpus = append(cpus, n)
		}
	}
	slices.Sort(cpus)
	for _, cpu := range cpus {
		path := fs.CPUOnlinePath(cpu)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", nil
}

// readFile reads a whole kernel file, wrapping failures in ErrFileRead.
// Kernel files report a size of 4096 or 0, so os.ReadFile's growth loop,
// not the size, decides how much is read: there is no length limit.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	return data, nil
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist)
}
