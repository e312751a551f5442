package sysfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// readSmall reads a small kernel file into buf with the fewest system
// calls: open, read until EOF, close (and fstat when mode is wanted). The
// snapshot reads two files for each of thousands of IRQs, where os.ReadFile's
// extra fstat, read and poller calls dominated the time. Files longer than
// buf grow it. Errors are *os.PathError, as os.ReadFile gives.
func readSmall(path string, buf []byte, wantMode bool) (data []byte, mode os.FileMode, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if wantMode {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, 0, &os.PathError{Op: "fstat", Path: path, Err: err}
		}
		mode = os.FileMode(st.Mode & 0o777)
	}
	data = buf[:0]
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := unix.Read(fd, data[len(data):cap(data)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return data, mode, nil
		}
		data = data[:len(data)+n]
		if len(data) > 1<<20 {
			return nil, 0, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("file larger than 1 MiB")}
		}
	}
}
