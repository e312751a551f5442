//go:build linux

package hotplug

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a real listener or skips the test when this host (a
// container, a sandbox) does not offer one.
func listen(t *testing.T, cfg ListenConfig) *Listener {
	t.Helper()
	l, err := cfg.Listen()
	if err != nil {
		for _, errno := range []unix.Errno{unix.EPERM, unix.EACCES, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT} {
			if errors.Is(err, errno) {
				t.Skipf("no uevent socket here: %v", err)
			}
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// portID is the netlink port id the kernel gave the listener.
func (l *Listener) portID(t *testing.T) uint32 {
	t.Helper()
	var sa unix.Sockaddr
	var err error
	if cerr := l.rc.Control(func(fd uintptr) { sa, err = unix.Getsockname(int(fd)) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrNetlink).Pid
}

func TestListenerCancel(t *testing.T) {
	l := listen(t, ListenConfig{})
	size, forced := l.ReceiveBuffer()
	t.Logf("receive buffer %d bytes, forced %v", size, forced)
	if size < DefaultReceiveBuffer && forced {
		t.Errorf("receive buffer %d with SO_RCVBUFFORCE, asked for %d", size, DefaultReceiveBuffer)
	}

	// Deadlines: each Receive ends with its context and leaves the socket
	// usable for the next, whatever the timing of the previous cancel.
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
		start := time.Now()
		b, err := l.Receive(ctx)
		cancel()
		switch {
		case err == nil:
			t.Logf("a uevent of this host arrived meanwhile: %.80q", b)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Receive = %v, want the context's error", err)
		case time.Since(start) > time.Second:
			t.Fatalf("Receive took %v to see its deadline", time.Since(start))
		}
	}
}

func TestWatcherOnKernelSocketCancel(t *testing.T) {
	// Open the socket as Run would, to skip rather than fail in sandboxes.
	listen(t, ListenConfig{}).Close()

	base := runtime.NumGoroutine()
	w := NewWatcher() // the real socket and /sys/devices/system/cpu/online
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 16)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, events) }()
	select {
	case ev := <-events:
		wantResync(t, ev, ReasonStart)
	case err := <-done:
		t.Fatalf("Run = %v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("no start resync")
	}
	time.Sleep(50 * time.Millisecond) // let the reader block in recvfrom
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
		t.Logf("Run returned %v after cancel", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
	settleGoroutines(t, base)
}

// netnsPair is a listener and an injector in a network namespace of their
// own, so that multicast goes only between them: nothing these tests send
// reaches another listener of the host. The sockets are made on a thread
// moved to a new namespace and stay there when used from other threads; the
// thread is left locked, so the runtime discards it.
func netnsPair(t *testing.T, cfg ListenConfig) (*Listener, *injector) {
	t.Helper()
	type result struct {
		l       *Listener
		in      *injector
		err     error
		unshare error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			res <- result{unshare: err}
			return
		}
		l, err := cfg.Listen()
		if err != nil {
			res <- result{err: err}
			return
		}
		in, err := openInjector()
		if err != nil {
			l.Close()
			res <- result{err: err}
			return
		}
		res <- result{l: l, in: in}
	}()
	r := <-res
	if r.unshare != nil {
		t.Skipf("cannot make a network namespace to inject uevents in: %v", r.unshare)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		r.l.Close()
		unix.Close(r.in.fd)
	})
	return r.l, r.in
}

// injector is a second uevent socket in the listener's namespace that sends
// fake uevents. Its port id is not 0, so the listener must ignore them.
type injector struct{ fd int }

func openInjector() (*injector, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &injector{fd}, nil
}

// unicast sends b to the socket with port id port.
func (in *injector) unicast(t *testing.T, port uint32, b []byte) {
	t.Helper()
	if err := unix.Sendto(in.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port}); err != nil {
		t.Fatal(err)
	}
}

// broadcast sends b to the kernel's group, which needs CAP_NET_ADMIN.
func (in *injector) broadcast(t *testing.T, b []byte) {
	t.Helper()
	err := unix.Sendto(in.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup})
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot send to the uevent group: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// receiveNothing asserts that Receive returns no datagram for d, apart
// from genuine kernel uevents of this host.
func receiveNothing(t *testing.T, l *Listener, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		b, err := l.Receive(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if err != nil {
			t.Fatalf("Receive = %v", err)
		}
		if strings.Contains(string(b), "IRQSHIFT_FAKE") {
			t.Fatalf("Receive returned a datagram not sent by the kernel: %q", b)
		}
	}
}

func fakeCPUUevent(seq uint64) []byte {
	b := cpuUevent("offline", 2, seq)
	return append(b, "IRQSHIFT_FAKE=1\x00"...)
}

func TestListenerIgnoresOtherSenders(t *testing.T) {
	l, in := netnsPair(t, ListenConfig{})
	in.unicast(t, l.portID(t), fakeCPUUevent(1))
	in.broadcast(t, fakeCPUUevent(2))
	receiveNothing(t, l, 100*time.Millisecond)
	if n := l.ignored.Load(); n != 2 {
		t.Errorf("ignored %d datagrams, want 2", n)
	}
}

func TestListenerENOBUFS(t *testing.T) {
	l, in := netnsPair(t, ListenConfig{ReceiveBuffer: 1}) // the kernel's minimum, about two uevents
	size, _ := l.ReceiveBuffer()
	t.Logf("receive buffer %d bytes", size)
	// Messages from a user socket are queued and then ignored, but a full
	// queue makes the kernel drop the rest and flag ENOBUFS, as it does for
	// its own uevents.
	for i := range 20 {
		in.broadcast(t, fakeCPUUevent(uint64(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := l.Receive(ctx)
	if !errors.Is(err, ErrOverrun) || !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("Receive = %v, want ErrOverrun wrapping ENOBUFS", err)
	}
	// The socket is still usable: the queued datagrams are read (and
	// ignored), then Receive waits again.
	receiveNothing(t, l, 50*time.Millisecond)
	if n := l.ignored.Load(); n == 0 || n >= 20 {
		t.Errorf("%d of 20 datagrams were queued, want some but not all", n)
	}
}

func TestWatcherOnKernelSocketENOBUFS(t *testing.T) {
	l, in := netnsPair(t, ListenConfig{ReceiveBuffer: 1})
	w := &Watcher{Dial: func() (Conn, error) { return l, nil }}
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	deadline := time.Now().Add(2 * time.Second)
	for seq := uint64(0); ; seq++ {
		in.broadcast(t, fakeCPUUevent(seq))
		select {
		case ev := <-r.events:
			wantResync(t, ev, ReasonENOBUFS)
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ENOBUFS resync after %d broadcasts", seq)
		}
	}
}

// TestListenerNonRoot opens the socket with the credentials of nobody, on a
// thread of its own (credentials are per thread for the kernel; the
// setresuid system call, unlike syscall.Setuid, changes only the calling
// one).
func TestListenerNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become another user")
	}
	type result struct {
		l      *Listener
		err    error
		setuid error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, 65534, 65534, 65534); errno != 0 {
			res <- result{setuid: errno}
			return
		}
		l, err := Listen()
		res <- result{l: l, err: err}
	}()
	r := <-res
	if r.setuid != nil {
		t.Skipf("setresuid: %v", r.setuid)
	}
	if r.err != nil {
		t.Fatalf("Listen as uid 65534: %v", r.err)
	}
	defer r.l.Close()
	size, forced := r.l.ReceiveBuffer()
	rmemMax := readInt(t, "/proc/sys/net/core/rmem_max")
	t.Logf("as uid 65534: receive buffer %d bytes, forced %v, net.core.rmem_max %d", size, forced, rmemMax)
	if forced {
		t.Error("SO_RCVBUFFORCE succeeded without CAP_NET_ADMIN")
	}
	if want := 2 * min(rmemMax, DefaultReceiveBuffer); size != want {
		t.Errorf("receive buffer %d, want 2 × min(rmem_max, %d) = %d", size, DefaultReceiveBuffer, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.l.Receive(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive = %v", err)
	}
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestListenerSyntheticUevent asks the kernel for a real uevent by writing
// "change UUID" to /dev/null's uevent file. It touches the host (udev, if
// running, re-applies its rules to /dev/null), so it runs only with
// IRQSHIFT_TEST_SYNTH_UEVENT=1. It never touches /sys/devices/system/cpu.
func TestListenerSyntheticUevent(t *testing.T) {
	if os.Getenv("IRQSHIFT_TEST_SYNTH_UEVENT") != "1" {
		t.Skip("set IRQSHIFT_TEST_SYNTH_UEVENT=1 to write to /sys/devices/virtual/mem/null/uevent")
	}
	const file = "/sys/devices/virtual/mem/null/uevent"
	l := listen(t, ListenConfig{})
	var last uint64
	for range 2 {
		var r [16]byte
		rand.Read(r[:])
		r[6] = r[6]&0x0f | 0x40
		r[8] = r[8]&0x3f | 0x80
		uuid := fmt.Sprintf("%x-%x-%x-%x-%x", r[0:4], r[4:6], r[6:8], r[8:10], r[10:16])
		if err := os.WriteFile(file, []byte("change "+uuid), 0); err != nil {
			t.Skipf("cannot trigger a uevent: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var u Uevent
		for u.Env["SYNTH_UUID"] != uuid {
			b, err := l.Receive(ctx)
			if err != nil {
				cancel()
				t.Fatalf("waiting for the uevent of %s: %v", uuid, err)
			}
			if u, err = ParseUevent(b); err != nil {
				cancel()
				t.Fatalf("kernel uevent %q: %v", b, err)
			}
		}
		cancel()
		t.Logf("%s@%s SUBSYSTEM=%s SEQNUM=%d", u.Action, u.DevPath, u.Subsystem, u.Seqnum)
		if u.Action != "change" || u.DevPath != "/devices/virtual/mem/null" || u.Subsystem != "mem" || u.Seqnum <= last {
			t.Errorf("unexpected uevent %+v after SEQNUM %d", u, last)
		}
		if ev, ok := CPUEvent(u); ok {
			t.Errorf("CPUEvent = %+v for /dev/null", ev)
		}
		last = u.Seqnum
	}
}
