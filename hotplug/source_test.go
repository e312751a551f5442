package hotplug

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeConn is a Conn whose datagrams and errors the test pushes.
type fakeConn struct {
	msgs      chan fakeMsg
	closed    chan struct{}
	closeOnce sync.Once
	receiving atomic.Int32 // Receive calls in progress
}

type fakeMsg struct {
	b   []byte
	err error
}

func newFakeConn() *fakeConn {
	return &fakeConn{msgs: make(chan fakeMsg), closed: make(chan struct{})}
}

func (c *fakeConn) Receive(ctx context.Context) ([]byte, error) {
	c.receiving.Add(1)
	defer c.receiving.Add(-1)
	select {
	case m := <-c.msgs:
		return m.b, m.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closed:
		return nil, errors.New("fake: Receive on closed conn")
	}
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// push hands one datagram (or error) to the watcher's Receive.
func (c *fakeConn) push(t *testing.T, b []byte, err error) {
	t.Helper()
	select {
	case c.msgs <- fakeMsg{b, err}:
	case <-time.After(2 * time.Second):
		t.Fatal("the watcher did not call Receive")
	}
}

// onlineFile is an injected ReadOnline that counts its calls.
type onlineFile struct {
	mu    sync.Mutex
	text  string
	err   error
	reads atomic.Int64
}

func (f *onlineFile) read() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads.Add(1) // counted once the text is read
	return f.text, f.err
}

func (f *onlineFile) set(text string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.text, f.err = text, err
}

// running is a Watcher running in a goroutine.
type running struct {
	events chan Event
	errc   chan error
	cancel context.CancelFunc
}

func start(t *testing.T, w *Watcher) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{events: make(chan Event), errc: make(chan error, 1), cancel: cancel}
	go func() { r.errc <- w.Run(ctx, r.events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(2 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *running) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case err := <-r.errc:
		t.Fatalf("Run returned %v while an event was expected", err)
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	panic("unreachable")
}

func (r *running) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-r.events:
		t.Fatalf("unexpected event %+v", ev)
	case err := <-r.errc:
		t.Fatalf("Run returned %v", err)
	case <-time.After(d):
	}
}

// quietTick makes the watcher run its periodic check and asserts that the
// check sends no event. It ticks twice: the second tick is taken only once
// the watcher is done with the first, and after the second tick's read the
// watcher has nothing left to do (the same text as the first read, which
// changed nothing). So when quietTick returns, a change of online is seen
// by the next tick only.
func (r *running) quietTick(t *testing.T, ticks chan<- time.Time, online *onlineFile) {
	t.Helper()
	want := online.reads.Load() + 2
	for range 2 {
		select {
		case ticks <- time.Now():
		case ev := <-r.events:
			t.Fatalf("unexpected event %+v", ev)
		case err := <-r.errc:
			t.Fatalf("Run returned %v", err)
		case <-time.After(2 * time.Second):
			t.Fatal("the watcher does not take ticks")
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for online.reads.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d reads of the online CPUs, want %d", online.reads.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// tick makes the watcher run its periodic check once.
func (r *running) tick(t *testing.T, ticks chan<- time.Time) {
	t.Helper()
	select {
	case ticks <- time.Now():
	case <-time.After(2 * time.Second):
		t.Fatal("the watcher does not take ticks")
	}
}

func wantResync(t *testing.T, ev Event, reason string) {
	t.Helper()
	if !ev.Resync || ev.Reason != reason || ev.CPU != -1 || ev.Action != "" || ev.Received.IsZero() {
		t.Fatalf("got %+v, want a %q resync", ev, reason)
	}
}

func wantCPU(t *testing.T, ev Event, action Action, cpu int, seq uint64) {
	t.Helper()
	if ev.Resync || ev.Action != action || ev.CPU != cpu || ev.Seqnum != seq || ev.Received.IsZero() {
		t.Fatalf("got %+v, want %s of CPU %d, seqnum %d", ev, action, cpu, seq)
	}
}

// fakeWatcher is a Watcher on conn with the periodic check off.
func fakeWatcher(conn *fakeConn) *Watcher {
	return &Watcher{Dial: func() (Conn, error) { return conn, nil }}
}

func TestWatcherStartResync(t *testing.T) {
	conn := newFakeConn()
	dials := 0
	w := fakeWatcher(conn)
	w.Dial = func() (Conn, error) { dials++; return conn, nil }
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	r.none(t, 20*time.Millisecond)
	if dials != 1 {
		t.Errorf("Dial called %d times", dials)
	}
}

func TestWatcherCPUEvents(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	before := time.Now()
	conn.push(t, []byte(kernelOffline), nil)
	ev := r.next(t)
	wantCPU(t, ev, Offline, 2, 897)
	if ev.Received.Before(before) || ev.Received.After(time.Now()) {
		t.Errorf("Received %v is not when the uevent was read", ev.Received)
	}
	// kernelOnline carries the same SEQNUM: not a gap.
	conn.push(t, []byte(kernelOnline), nil)
	wantCPU(t, r.next(t), Online, 2, 897)
	r.none(t, 20*time.Millisecond)
}

func TestWatcherConsecutiveSeqnumsNoResync(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	conn.push(t, memUevent(100), nil)
	conn.push(t, cpuUevent("offline", 3, 101), nil)
	wantCPU(t, r.next(t), Offline, 3, 101)
	conn.push(t, memUevent(102), nil)
	conn.push(t, memUevent(103), nil)
	conn.push(t, cpuUevent("online", 3, 104), nil)
	wantCPU(t, r.next(t), Online, 3, 104)
	r.none(t, 20*time.Millisecond)
}

func TestWatcherSeqnumGap(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	// The first uevent after start has nothing to compare with.
	conn.push(t, memUevent(100), nil)
	// 101 was lost: the gap is seen on a uevent of any subsystem.
	conn.push(t, memUevent(102), nil)
	ev := r.next(t)
	wantResync(t, ev, ReasonSeqnumGap)
	if ev.Seqnum != 102 {
		t.Errorf("gap resync has Seqnum %d, want 102", ev.Seqnum)
	}
	conn.push(t, memUevent(103), nil)
	r.none(t, 20*time.Millisecond)

	// A CPU uevent that reveals a gap: the resync comes first, then the event.
	conn.push(t, cpuUevent("offline", 1, 110), nil)
	wantResync(t, r.next(t), ReasonSeqnumGap)
	wantCPU(t, r.next(t), Offline, 1, 110)

	// Out of order (two uevents broadcast concurrently): not a gap.
	conn.push(t, memUevent(112), nil)
	wantResync(t, r.next(t), ReasonSeqnumGap) // 111 missing so far
	conn.push(t, memUevent(111), nil)
	conn.push(t, memUevent(113), nil)
	r.none(t, 20*time.Millisecond)
}

func TestWatcherENOBUFS(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	conn.push(t, memUevent(50), nil)
	// As Listener reports it, and a bare errno from another Conn.
	for _, err := range []error{fmt.Errorf("%w: %w", ErrOverrun, syscall.ENOBUFS), syscall.ENOBUFS} {
		conn.push(t, nil, err)
		wantResync(t, r.next(t), ReasonENOBUFS)
	}
	// The loop goes on.
	conn.push(t, memUevent(51), nil)
	conn.push(t, cpuUevent("offline", 2, 52), nil)
	wantCPU(t, r.next(t), Offline, 2, 52)
	r.none(t, 20*time.Millisecond)
}

func TestWatcherSkipsMalformed(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	conn.push(t, memUevent(10), nil)
	conn.push(t, libudevMessage(), nil)
	conn.push(t, []byte("garbage"), nil)
	conn.push(t, []byte(kernelOffline[:100]), nil)
	conn.push(t, nil, fmt.Errorf("%w: truncated", ErrMalformed))
	conn.push(t, memUevent(11), nil)
	r.none(t, 20*time.Millisecond)
	conn.push(t, cpuUevent("online", 0, 12), nil)
	wantCPU(t, r.next(t), Online, 0, 12)
}

func TestWatcherFatalReceiveError(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)

	boom := errors.New("boom")
	conn.push(t, nil, boom)
	select {
	case err := <-r.errc:
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want it to wrap %v", err, boom)
		}
		r.errc <- err
	case <-time.After(time.Second):
		t.Fatal("Run did not return")
	}
	if !conn.isClosed() {
		t.Error("conn not closed")
	}
}

func TestWatcherDialError(t *testing.T) {
	dialErr := errors.New("no netlink here")
	w := &Watcher{Dial: func() (Conn, error) { return nil, dialErr }}
	events := make(chan Event, 1)
	if err := w.Run(context.Background(), events); !errors.Is(err, dialErr) {
		t.Errorf("Run = %v, want %v", err, dialErr)
	}
	if len(events) != 0 {
		t.Errorf("event %+v after a failed dial", <-events)
	}
}

// manualWatcher is a Watcher on conn whose periodic check runs when the
// test sends a tick, reading online.
func manualWatcher(conn *fakeConn, online *onlineFile) (*Watcher, chan time.Time) {
	ticks := make(chan time.Time)
	w := fakeWatcher(conn)
	w.CheckInterval = time.Hour
	w.ReadOnline = online.read
	w.ticks = ticks
	return w, ticks
}

func TestWatcherPeriodic(t *testing.T) {
	conn := newFakeConn()
	online := &onlineFile{text: "0-3\n"}
	w, ticks := manualWatcher(conn, online)
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	if n := online.reads.Load(); n != 1 {
		t.Errorf("%d reads at start, want 1", n)
	}

	// Idle: one read per check, no events.
	for range 3 {
		r.quietTick(t, ticks, online)
	}
	if n := online.reads.Load(); n != 7 {
		t.Errorf("%d reads after start and 6 checks, want 7", n)
	}

	// CPU 2 went offline without a uevent.
	online.set("0-1,3\n", nil)
	r.tick(t, ticks)
	wantResync(t, r.next(t), ReasonPeriodic)
	r.quietTick(t, ticks, online)

	// The same set spelled differently is no change.
	online.set("0,1,3", nil)
	r.quietTick(t, ticks, online)

	// A change announced by a uevent is not reported again.
	conn.push(t, cpuUevent("offline", 1, 200), nil)
	wantCPU(t, r.next(t), Offline, 1, 200)
	online.set("0,3\n", nil)
	r.quietTick(t, ticks, online)
	conn.push(t, cpuUevent("online", 1, 201), nil)
	wantCPU(t, r.next(t), Online, 1, 201)
	online.set("0-1,3\n", nil)
	r.quietTick(t, ticks, online)

	// Failed reads are not fatal and report nothing.
	online.set("", errors.New("EIO"))
	r.quietTick(t, ticks, online)
	online.set("garbage", nil)
	r.quietTick(t, ticks, online)
	// Back, with CPU 2 online again.
	online.set("0-3\n", nil)
	r.tick(t, ticks)
	wantResync(t, r.next(t), ReasonPeriodic)
	r.quietTick(t, ticks, online)
}

func TestWatcherResyncRefreshesOnline(t *testing.T) {
	conn := newFakeConn()
	online := &onlineFile{text: "0-3"}
	w, ticks := manualWatcher(conn, online)
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)

	// Uevents were dropped, among them CPU 3 going offline: the ENOBUFS
	// resync covers it, the next check must not report it again.
	online.set("0-2", nil)
	conn.push(t, nil, fmt.Errorf("%w: %w", ErrOverrun, syscall.ENOBUFS))
	wantResync(t, r.next(t), ReasonENOBUFS)
	r.quietTick(t, ticks, online)

	// Same after a seqnum gap.
	conn.push(t, memUevent(300), nil)
	online.set("0-1", nil)
	conn.push(t, memUevent(302), nil)
	wantResync(t, r.next(t), ReasonSeqnumGap)
	r.quietTick(t, ticks, online)

	// And a CPU event lost in the gap is reported by neither path twice.
	online.set("0-2", nil)
	conn.push(t, cpuUevent("online", 2, 305), nil)
	wantResync(t, r.next(t), ReasonSeqnumGap)
	wantCPU(t, r.next(t), Online, 2, 305)
	r.quietTick(t, ticks, online)
}

func TestWatcherPeriodicDisabled(t *testing.T) {
	conn := newFakeConn()
	online := &onlineFile{text: "0-3"}
	w := fakeWatcher(conn)
	w.ReadOnline = online.read // CheckInterval 0
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	conn.push(t, cpuUevent("offline", 1, 1), nil)
	wantCPU(t, r.next(t), Offline, 1, 1)
	r.none(t, 20*time.Millisecond)
	if n := online.reads.Load(); n != 0 {
		t.Errorf("online file read %d times with the check off", n)
	}
}

func TestWatcherStartReadError(t *testing.T) {
	conn := newFakeConn()
	w := fakeWatcher(conn)
	w.CheckInterval = time.Second
	w.ReadOnline = func() (string, error) { return "", os.ErrPermission }
	err := w.Run(context.Background(), make(chan Event, 1))
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("Run = %v, want a permission error", err)
	}
	if !conn.isClosed() {
		t.Error("conn not closed")
	}
}

func TestWatcherOnlinePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "online")
	if err := os.WriteFile(path, []byte("0-7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := fakeWatcher(newFakeConn())
	w.CheckInterval = 2 * time.Millisecond
	w.OnlinePath = path
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	r.none(t, 20*time.Millisecond)
	if err := os.WriteFile(path, []byte("0-6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantResync(t, r.next(t), ReasonPeriodic)
}

func TestNewWatcherDefaults(t *testing.T) {
	w := NewWatcher()
	if w.CheckInterval != DefaultCheckInterval || w.Dial != nil || w.ReadOnline != nil || w.OnlinePath != "" {
		t.Errorf("NewWatcher() = %+v", w)
	}
	if DefaultCheckInterval != 30*time.Second || DefaultOnlinePath != "/sys/devices/system/cpu/online" {
		t.Error("defaults changed")
	}
}

// settleGoroutines waits until no more than n goroutines run.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatcherCancel(t *testing.T) {
	for _, tc := range []struct {
		name string
		// idle: cancel while the watcher waits in Receive; otherwise
		// while it is blocked sending an event nobody reads.
		idle bool
	}{{"waiting in Receive", true}, {"blocked sending", false}} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			conn := newFakeConn()
			w := fakeWatcher(conn)
			w.CheckInterval = time.Millisecond
			w.ReadOnline = (&onlineFile{text: "0-1"}).read
			ctx, cancel := context.WithCancel(context.Background())
			events := make(chan Event)
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx, events) }()
			wantResync(t, <-events, ReasonStart)
			if tc.idle {
				for conn.receiving.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
			} else {
				conn.push(t, cpuUevent("offline", 1, 1), nil) // never read
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v after cancel, want nil", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Run did not return within 1s of cancel")
			}
			if !conn.isClosed() {
				t.Error("conn not closed")
			}
			if n := conn.receiving.Load(); n != 0 {
				t.Errorf("%d Receive calls still running after Run returned", n)
			}
			settleGoroutines(t, base)
		})
	}
}

func TestWatcherCancelledBeforeStart(t *testing.T) {
	conn := newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fakeWatcher(conn).Run(ctx, make(chan Event)); err != nil {
		t.Errorf("Run = %v", err)
	}
	if !conn.isClosed() {
		t.Error("conn not closed")
	}
}

// TestWatcherOnEvent: OnEvent runs before each event the Watcher sends (resyncs included), and
// not for a uevent it drops.
func TestWatcherOnEvent(t *testing.T) {
	conn := newFakeConn()
	w := fakeWatcher(conn)
	var calls atomic.Int32
	w.OnEvent = func() { calls.Add(1) }
	r := start(t, w)
	wantResync(t, r.next(t), ReasonStart)
	if n := calls.Load(); n != 1 {
		t.Fatalf("OnEvent called %d times for the start resync, want 1", n)
	}
	conn.push(t, memUevent(100), nil)
	conn.push(t, cpuUevent("offline", 3, 101), nil)
	wantCPU(t, r.next(t), Offline, 3, 101)
	if n := calls.Load(); n != 2 {
		t.Errorf("OnEvent called %d times after a memory uevent and a CPU one, want 2", n)
	}
}

// TestWatcherDeviceBind: a driver's bind uevent becomes a Bound event
// (CPU -1, its DEVPATH); unbind and add do not.
func TestWatcherDeviceBind(t *testing.T) {
	conn := newFakeConn()
	r := start(t, fakeWatcher(conn))
	wantResync(t, r.next(t), ReasonStart)
	conn.push(t, uevent("unbind@/devices/pci0000:00/0000:00:02.0", "ACTION=unbind",
		"DEVPATH=/devices/pci0000:00/0000:00:02.0", "SUBSYSTEM=pci", "SEQNUM=10"), nil)
	conn.push(t, uevent("add@/devices/pci0000:00/0000:00:02.0/virtio1", "ACTION=add",
		"DEVPATH=/devices/pci0000:00/0000:00:02.0/virtio1", "SUBSYSTEM=virtio", "SEQNUM=11"), nil)
	conn.push(t, uevent("bind@/devices/pci0000:00/0000:00:02.0", "ACTION=bind",
		"DEVPATH=/devices/pci0000:00/0000:00:02.0", "SUBSYSTEM=pci", "DRIVER=virtio-pci", "SEQNUM=12"), nil)
	ev := r.next(t)
	if ev.Action != Bound || ev.CPU != -1 || ev.Resync || ev.Device != "/devices/pci0000:00/0000:00:02.0" || ev.Seqnum != 12 || ev.Received.IsZero() {
		t.Errorf("bind uevent gave %+v, want a Bound event of /devices/pci0000:00/0000:00:02.0 (seqnum 12)", ev)
	}
	r.none(t, 20*time.Millisecond)
}
