package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// DefaultFS is the live kernel's /proc and /sys.
var DefaultFS = FS{proc: "/proc", sys: "/sys"}

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

// IsLive reports whether fs is the running kernel's /proc and /sys rather
// than a fixture tree. Writing commands use it to refuse non-root users early.
func (fs FS) IsLive() bool {
	return fs.proc == "/proc" && fs.sys == "/sys"
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
