//go:build linux

package hotplug

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelGroup is the multicast group of NETLINK_KOBJECT_UEVENT on which the
// kernel sends uevents. Group 2 is udev's re-broadcast.
const kernelGroup = 1

// DefaultReceiveBuffer is the receive buffer Listen asks for. The kernel
// doubles it to 16 MiB of accounting, and a 484-byte CPU uevent is charged
// about 1.3 KiB (measured: 102 such datagrams fill 128 KiB), so about
// 12,000 uevents fit: enough for the burst of a driver probing many devices
// while the daemon is busy moving IRQs. Memory is used only while datagrams
// are queued.
const DefaultReceiveBuffer = 8 << 20

// maxDatagram bounds a uevent: the kernel's environment buffer is 2048 bytes
// (UEVENT_BUFFER_SIZE) and the header adds the action and devpath.
const maxDatagram = 16 << 10

// ListenConfig configures Listen.
type ListenConfig struct {
	// ReceiveBuffer is the socket receive buffer in bytes; 0 means
	// DefaultReceiveBuffer. It is set with SO_RCVBUFFORCE, which needs
	// CAP_NET_ADMIN, else with SO_RCVBUF, which the kernel caps at
	// net.core.rmem_max. (The kernel doubles the value for bookkeeping.)
	ReceiveBuffer int
}

// Listener is a NETLINK_KOBJECT_UEVENT socket bound to the kernel's
// multicast group. It implements Conn.
//
// The socket is non-blocking and registered with the Go runtime's network
// poller (through os.NewFile), so a Receive waiting for the next uevent
// parks its goroutine instead of a thread, and is cancelled by moving the
// read deadline to the past when its context is done. That leaves no
// goroutine or thread behind, needs no periodic wake-up while idle (unlike
// SO_RCVTIMEO polling) and keeps the descriptor valid until Close (unlike
// closing the fd from another goroutine to unblock a read).
type Listener struct {
	f      *os.File
	rc     syscall.RawConn
	buf    []byte
	rcvbuf int
	forced bool
	// ignored counts datagrams dropped because they were not from the kernel.
	ignored atomic.Uint64
}

// Listen opens a uevent listener with the default configuration.
func Listen() (*Listener, error) {
	return ListenConfig{}.Listen()
}

// Listen opens a NETLINK_KOBJECT_UEVENT socket, sizes its receive buffer and
// binds it to the kernel's multicast group.
//
// No privilege is needed: the kernel lets any user receive uevents. Errors
// name the failing step and keep the errno (errors.Is(err, unix.EPERM)).
func (c ListenConfig) Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, listenError("socket", err)
	}
	return newListener(fd, c.ReceiveBuffer)
}

// newListener sets up fd and takes it over: on error it is closed.
func newListener(fd, size int) (*Listener, error) {
	if size <= 0 {
		size = DefaultReceiveBuffer
	}
	l := &Listener{buf: make([]byte, maxDatagram), forced: true}
	// Size the buffer before joining the group, so that no burst meets the
	// small default queue.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err != nil {
		l.forced = false
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			unix.Close(fd)
			return nil, listenError("setsockopt SO_RCVBUF on", err)
		}
	}
	if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		l.rcvbuf = got
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		unix.Close(fd)
		return nil, listenError("bind to multicast group 1 of", err)
	}
	l.f = os.NewFile(uintptr(fd), "netlink-kobject-uevent")
	rc, err := l.f.SyscallConn()
	if err != nil {
		l.f.Close()
		return nil, listenError("register", err)
	}
	l.rc = rc
	return l, nil
}

// listenError says which step failed and, for the errors a sandbox gives,
// what to check.
func listenError(op string, err error) error {
	hint := ""
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EPROTONOSUPPORT):
		hint = " (AF_NETLINK refused: a systemd unit needs RestrictAddressFamilies=AF_NETLINK; some sandboxes lack kobject uevents)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		hint = " (denied by a seccomp filter or LSM policy: no capability is needed to receive uevents)"
	}
	return fmt.Errorf("hotplug: %s NETLINK_KOBJECT_UEVENT socket: %w%s", op, err, hint)
}

// ReceiveBuffer returns the receive buffer the kernel granted, as
// SO_RCVBUF reports it (twice the requested size), and whether it was
// forced past net.core.rmem_max with CAP_NET_ADMIN.
func (l *Listener) ReceiveBuffer() (bytes int, forced bool) {
	return l.rcvbuf, l.forced
}

// Receive waits for the next datagram sent by the kernel and returns it; the
// slice is valid until the next call. Datagrams from any other sender (a
// netlink source address with a non-zero port id) are skipped.
//
// Errors: ctx.Err() once ctx is done; an error wrapping ErrOverrun and
// unix.ENOBUFS when the kernel dropped uevents because the queue was full
// (the socket stays usable); an error wrapping ErrMalformed for a datagram
// larger than the buffer. Anything else means the socket is unusable.
// Receive must not be called concurrently with itself.
func (l *Listener) Receive(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		_ = l.f.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				// MSG_TRUNC makes recvfrom return the datagram's real length.
				n, from, rerr = unix.Recvfrom(int(fd), l.buf, unix.MSG_TRUNC)
				if rerr != unix.EINTR {
					break
				}
			}
			return rerr != unix.EAGAIN
		})
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A deadline left by an earlier call's context, which fired
			// after that call returned: this ctx is live, so wait on.
			if err := l.f.SetReadDeadline(time.Time{}); err != nil {
				return nil, fmt.Errorf("hotplug: receive: %w", err)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("hotplug: receive: %w", err)
		case errors.Is(rerr, unix.ENOBUFS):
			return nil, fmt.Errorf("%w: %w", ErrOverrun, rerr)
		case rerr != nil:
			return nil, fmt.Errorf("hotplug: receive: %w", rerr)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			l.ignored.Add(1)
			continue
		}
		if n > len(l.buf) {
			return nil, fmt.Errorf("%w: %d-byte datagram truncated to %d bytes", ErrMalformed, n, len(l.buf))
		}
		return l.buf[:n], nil
	}
}

// Close closes the socket. A Receive blocked on it returns an error.
func (l *Listener) Close() error {
	return l.f.Close()
}

// dialKernel is the Watcher's default Dial.
func dialKernel() (Conn, error) {
	l, err := Listen()
	if err != nil {
		return nil, err
	}
	return l, nil
}
