package sysfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readSmall reads a small kernel file into buf with the fewest system
// calls: open, read until EOF, close (and fstat when mode is wanted). The
// snapshot reads three files for each of thousands of IRQs, where
// os.ReadFile's extra fstat, read and poller calls dominated the time.
// Files longer than buf grow it. Errors are *os.PathError, as os.ReadFile
// gives.
//
// The files it reads (/proc/irq/N/smp_affinity_list,
// effective_affinity_list and node, sysfs attributes such as numa_node)
// are made whole by one show() call (single_open, kernfs), and a read
// returns all of them that fits: a read that returns less than it asked
// for and ends in a newline has the whole file, and the read that would
// return 0 is skipped. Anything else (a longer file, one without its
// newline) reads on until EOF.
func readSmall(path string, buf []byte, wantMode bool) (data []byte, mode os.FileMode, err error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: unix.EINVAL}
	}
	return readSmallZ(append([]byte(path), 0), buf, wantMode)
}

// readSmallZ is readSmall of a path given NUL-terminated, which it opens
// without copying it.
func readSmallZ(pathz []byte, buf []byte, wantMode bool) (data []byte, mode os.FileMode, err error) {
	fd, err := openZ(pathz, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: zString(pathz), Err: err}
	}
	defer unix.Close(fd)
	if wantMode {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, 0, &os.PathError{Op: "fstat", Path: zString(pathz), Err: err}
		}
		mode = os.FileMode(st.Mode & 0o777)
	}
	data = buf[:0]
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		room := cap(data) - len(data)
		n, err := unix.Read(fd, data[len(data):cap(data)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, 0, &os.PathError{Op: "read", Path: zString(pathz), Err: err}
		}
		if n == 0 {
			return data, mode, nil
		}
		data = data[:len(data)+n]
		if len(data) > 1<<20 {
			return nil, 0, &os.PathError{Op: "read", Path: zString(pathz), Err: fmt.Errorf("file larger than 1 MiB")}
		}
		if n < room && data[len(data)-1] == '\n' {
			return data, mode, nil // all of a file shown at once
		}
	}
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

// openZ opens the NUL-terminated path pathz read-only, as unix.Open does
// but without its copy of the path; flags are added (O_DIRECTORY).
func openZ(pathz []byte, flags int) (int, error) {
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&pathz[0])),
			uintptr(unix.O_RDONLY|unix.O_CLOEXEC|flags), 0, 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
	}
}

// zString is the NUL-terminated pathz as a string, for errors.
func zString(pathz []byte) string { return string(pathz[:len(pathz)-1]) }

// irqPath builds /proc/irq/N/<name>, NUL-terminated, in one reused buffer:
// the snapshot opens three files of each of thousands of IRQs, and each
// path built as a string cost two allocations (the string and open(2)'s
// copy of it).
type irqPath struct {
	b   []byte
	dir int // len(b) of "<proc>/irq/N/"
}

// reset points p at IRQ irq under the proc root proc.
func (p *irqPath) reset(proc string, irq int) {
	p.b = append(append(p.b[:0], proc...), "/irq/"...)
	p.b = append(strconv.AppendInt(p.b, int64(irq), 10), '/')
	p.dir = len(p.b)
}

// file returns the NUL-terminated path of name in the IRQ's directory,
// valid until the next call.
func (p *irqPath) file(name string) []byte {
	p.b = append(append(p.b[:p.dir], name...), 0)
	return p.b
}
