// Package regfile reads and checks files that must be regular files: the
// operator's configuration, ban and state files. A path given by mistake
// can name a FIFO (a read waits for ever), a device (/dev/zero never ends)
// or a directory; every such path is refused before it is opened, without
// blocking, and what is read is bounded.
//
// It imports nothing of irqshift's, so that every layer can use it.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrTooLarge means Read found more than its bound.
var ErrTooLarge = errors.New("file too large")

// NotRegularError means a path that must name a regular file (after
// symbolic links) names something else: a FIFO, a device, a directory, a
// socket.
type NotRegularError struct {
	Path string
	// Kind says what it is: "a FIFO", "a character device", ...
	Kind string
	// Target is where Path links to, when it is a symbolic link.
	Target string
}

func (e *NotRegularError) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("%s is a symbolic link to %s, %s, not a regular file", e.Path, e.Target, e.Kind)
	}
	return fmt.Sprintf("%s is %s, not a regular file", e.Path, e.Kind)
}

func notRegular(path string, mode fs.FileMode) error {
	e := &NotRegularError{Path: path, Kind: Kind(mode)}
	if target, err := os.Readlink(path); err == nil {
		e.Target = target
	}
	return e
}

// Kind names the type of a file that is not a regular one, for messages:
// "a FIFO", "a character device", ...
func Kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeDir != 0:
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// Check returns a *NotRegularError when path exists and is not
// a regular file once symbolic links are followed; nil when it is one or
// does not exist (the caller decides what a missing file means), and the
// error of stat(2) otherwise.
func Check(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return notRegular(path, info.Mode())
	}
	return nil
}

// Read reads path, following symbolic links, when it is a
// regular file of at most limit bytes. Anything else is refused without
// blocking and without reading it: a read of a FIFO waits for a writer
// (for ever, and a signal does not end it), one of /dev/zero never ends,
// and merely opening some devices acts (a watchdog starts counting). So
// the path is stat'ed first and only a regular file is opened; it is
// opened with O_NONBLOCK, in case a FIFO was put there since, and fstat'ed
// again. A missing file is an error wrapping fs.ErrNotExist, a
// non-regular one a *NotRegularError, one larger than limit wraps
// ErrTooLarge.
func Read(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	tooLarge := fmt.Errorf("%s is larger than %s: %w", path, sizeText(limit), ErrTooLarge)
	if info.Size() > limit {
		return nil, tooLarge
	}
	// Read one byte past the bound: a file that grew since the fstat, or
	// one whose size the file system does not report (procfs says 0), is
	// still bounded.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge
	}
	return data, nil
}

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
