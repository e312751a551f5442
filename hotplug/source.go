package hotplug

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// Source delivers CPU hotplug events until ctx is done.
type Source interface {
	Run(ctx context.Context, events chan<- Event) error
}

// Conn is a connection to the kernel's uevents; Listener is the real one.
type Conn interface {
	// Receive waits for the next datagram sent by the kernel and returns
	// it; the slice need only stay valid until the next call. It returns
	// ctx.Err() once ctx is done, an error wrapping ErrOverrun when the
	// kernel dropped uevents, and an error wrapping ErrMalformed for a
	// datagram it could not read whole. Other errors are fatal.
	Receive(ctx context.Context) ([]byte, error)
	// Close releases the connection. The Watcher calls it after its last
	// Receive has returned.
	Close() error
}

// ErrOverrun means the kernel dropped uevents because the receive queue was
// full (ENOBUFS). The connection stays usable, but the state must be read
// again.
var ErrOverrun = errors.New("hotplug: uevent receive queue overrun, kernel dropped uevents")

// DefaultCheckInterval is the Watcher's default CheckInterval.
const DefaultCheckInterval = 30 * time.Second

// DefaultOnlinePath is the file listing the online CPUs.
const DefaultOnlinePath = "/sys/devices/system/cpu/online"

// Watcher is the Source on a uevent Conn. It emits, in this order of
// discovery:
//
//   - a Resync with Reason ReasonStart once the connection is open;
//   - an Event per CPU uevent (online or offline), and one per driver bind
//     (Action Bound, CPU -1);
//   - a Resync with ReasonENOBUFS when the kernel dropped uevents;
//   - a Resync with ReasonSeqnumGap when a uevent's SEQNUM (a counter shared
//     by all subsystems) is not the previous one plus one, so a uevent was
//     lost without ENOBUFS (or went to another network namespace);
//   - a Resync with ReasonPeriodic when a periodic read of the online CPU
//     list finds a set that differs from the one last read, updated by
//     the CPU events delivered since. This catches hotplug that sends no
//     uevent (and the case where uevents are not delivered at all). When
//     nothing changes, the check costs one read of one small file.
//
// The zero Watcher listens on the real socket with the periodic check off;
// NewWatcher turns it on at DefaultCheckInterval. Set fields before Run; a
// Watcher may be run again after Run returns.
type Watcher struct {
	// Dial opens the connection; nil means Listen.
	Dial func() (Conn, error)
	// CheckInterval is the period of the online-CPU check; 0 disables it.
	CheckInterval time.Duration
	// ReadOnline returns the online CPU list (cpulist syntax, "0-1,3").
	// nil means reading OnlinePath.
	ReadOnline func() (string, error)
	// OnlinePath is read when ReadOnline is nil; "" means DefaultOnlinePath.
	// A daemon with a --path.sysfs flag sets it under that root.
	OnlinePath string
	// Logger receives debug lines about skipped datagrams and warnings
	// about failed periodic reads; nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, is called just before each event is sent: the
	// daemon holds back work meant for quiet times (giving memory back)
	// while a settle may be coming.
	OnEvent func()

	// ticks, when set by a test, replaces the ticker of the periodic check.
	ticks <-chan time.Time
}

var _ Source = (*Watcher)(nil)

// NewWatcher returns a Watcher on the real uevent socket that checks the
// online CPUs every DefaultCheckInterval.
func NewWatcher() *Watcher {
	return &Watcher{CheckInterval: DefaultCheckInterval}
}

// received is one Receive result, handed from the reading goroutine to Run.
type received struct {
	u   Uevent
	err error
	at  time.Time
}

// Run opens the connection and sends events until ctx is done, then returns
// nil. It returns an error if the connection cannot be opened, if the
// first read of the online CPUs fails (when the check is on), or if the
// connection fails with an error other than an overrun or a malformed
// datagram. Sends block: a consumer that falls behind makes the socket
// queue fill, and the kernel's ENOBUFS then turns into a Resync. Run does
// not close events. When Run returns, the goroutine it started has ended
// and the connection is closed.
func (w *Watcher) Run(ctx context.Context, events chan<- Event) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dial := w.Dial
	if dial == nil {
		dial = dialKernel
	}
	conn, err := dial()
	if err != nil {
		return err
	}
	defer conn.Close()

	// Read the online CPUs after the socket is open, so that a change
	// between the two is seen by one or the other.
	check := w.CheckInterval > 0
	var online cpuset.Set
	if check {
		if online, err = w.readOnline(); err != nil {
			return err
		}
	}
	send := func(ev Event) bool {
		if w.OnEvent != nil {
			w.OnEvent()
		}
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	resync := func(reason string, seq uint64) bool {
		return send(Event{CPU: -1, Seqnum: seq, Received: time.Now(), Resync: true, Reason: reason})
	}
	// refresh re-reads the online CPUs just before a resync is emitted for
	// another reason, so that the periodic check does not report the
	// changes that the resync covers. Before, not after: the consumer reads
	// the state after this read, so whatever changes later differs from it.
	refresh := func() {
		if !check {
			return
		}
		set, err := w.readOnline()
		if err != nil {
			log.Warn("hotplug: cannot read the online CPUs", "err", err)
			return
		}
		online = set
	}
	if !resync(ReasonStart, 0) {
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	recv := make(chan received)
	done := make(chan struct{})
	go func() {
		defer close(done)
		receiveLoop(ctx, conn, recv)
	}()
	// Runs before conn.Close: the reader is out of Receive when it closes.
	defer func() {
		cancel()
		<-done
	}()

	var tick <-chan time.Time
	switch {
	case check && w.ticks != nil:
		tick = w.ticks
	case check:
		t := time.NewTicker(w.CheckInterval)
		defer t.Stop()
		tick = t.C
	}
	var lastSeq uint64 // 0: none seen yet; the kernel's first is 1.
	for {
		select {
		case <-ctx.Done():
			return nil

		case r := <-recv:
			switch {
			case errors.Is(r.err, ErrOverrun) || errors.Is(r.err, syscall.ENOBUFS):
				refresh()
				if !resync(ReasonENOBUFS, 0) {
					return nil
				}
				continue
			case errors.Is(r.err, ErrMalformed):
				log.Debug("hotplug: skipping datagram", "err", r.err)
				continue
			case r.err != nil:
				return fmt.Errorf("hotplug: receiving uevents: %w", r.err)
			}
			u := r.u
			if lastSeq != 0 && u.Seqnum > lastSeq+1 {
				log.Debug("hotplug: uevent seqnum gap", "after", lastSeq, "seqnum", u.Seqnum)
				refresh()
				if !resync(ReasonSeqnumGap, u.Seqnum) {
					return nil
				}
			}
			// A smaller or equal SEQNUM (two uevents broadcast out of
			// order) is not a gap; keep the highest.
			lastSeq = max(lastSeq, u.Seqnum)
			ev, ok := CPUEvent(u)
			if !ok {
				if ev, ok = DeviceEvent(u); ok {
					ev.Received = r.at
					if !send(ev) {
						return nil
					}
				}
				continue
			}
			ev.Received = r.at
			if check {
				if ev.Action == Online {
					online = online.With(ev.CPU)
				} else {
					online = online.Without(ev.CPU)
				}
			}
			if !send(ev) {
				return nil
			}

		case <-tick:
			set, err := w.readOnline()
			if err != nil {
				log.Warn("hotplug: cannot read the online CPUs", "err", err)
				continue
			}
			if set.Equal(online) {
				continue
			}
			log.Debug("hotplug: online CPUs changed without a uevent", "was", online, "now", set)
			online = set
			if !resync(ReasonPeriodic, 0) {
				return nil
			}
		}
	}
}

// receiveLoop reads from conn and hands each parsed uevent or error to out
// until ctx is done or conn fails.
func receiveLoop(ctx context.Context, conn Conn, out chan<- received) {
	for {
		b, err := conn.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		r := received{err: err, at: time.Now()}
		if err == nil {
			r.u, r.err = ParseUevent(b)
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, ErrOverrun) && !errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, ErrMalformed) {
			return
		}
	}
}

// readOnline reads and parses the online CPU list.
func (w *Watcher) readOnline() (cpuset.Set, error) {
	var text string
	if w.ReadOnline != nil {
		s, err := w.ReadOnline()
		if err != nil {
			return cpuset.Set{}, fmt.Errorf("hotplug: reading the online CPUs: %w", err)
		}
		text = s
	} else {
		path := w.OnlinePath
		if path == "" {
			path = DefaultOnlinePath
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return cpuset.Set{}, fmt.Errorf("hotplug: reading the online CPUs: %w", err)
		}
		text = string(data)
	}
	set, err := cpuset.ParseList(text)
	if err != nil {
		return cpuset.Set{}, fmt.Errorf("hotplug: online CPUs: %w", err)
	}
	return set, nil
}
