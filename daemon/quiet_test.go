package daemon

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineLog collects the messages a logger writes.
type lineLog struct {
	mu    sync.Mutex
	msgs  []string
	added chan struct{}
}

func (l *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lineLog) WithGroup(string) slog.Handler            { return l }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return nil
}

func (l *lineLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestQuietRelease: a burst of settles gives memory back once, after the burst, and a daemon that
// never settles never does: the release is armed by settles only, so an idle daemon has no timer.
func TestQuietRelease(t *testing.T) {
	log := &lineLog{added: make(chan struct{}, 1)}
	q := &quietRelease{after: 20 * time.Millisecond, log: slog.New(log)}
	if q.timer != nil {
		t.Fatal("a timer before any settle")
	}
	for range 5 {
		q.settled()
	}
	deadline := time.After(10 * time.Second) // a hang guard, not a speed check
	for log.count("quiet: memory given back") == 0 {
		select {
		case <-log.added:
		case <-deadline:
			t.Fatal("no release within 10 s of a burst of settles")
		}
	}
	if n := log.count("quiet: memory given back"); n != 1 {
		t.Errorf("a burst of 5 settles gave memory back %d times, want once", n)
	}
	// Once released, nothing is armed until the next settle.
	q.mu.Lock()
	armed := q.timer.Stop()
	q.mu.Unlock()
	if armed {
		t.Error("the release timer is still armed after it ran: an idle daemon would wake for it")
	}
}

// TestNewArmsQuietRelease: the daemon New builds gives memory back after its settles (OnSettle).
func TestNewArmsQuietRelease(t *testing.T) {
	d, err := New(Config{Coexist: true, CheckAccess: func() error { return nil }, VerifyWindow: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d.OnSettle == nil {
		t.Fatal("New sets no OnSettle: nothing gives the settles' memory back when the daemon is quiet")
	}
}

// TestQuietReleaseHeldByEvents: an event from the Source stops a pending release (a settle is
// coming), and the settle after it arms it again.
func TestQuietReleaseHeldByEvents(t *testing.T) {
	q := &quietRelease{after: time.Hour, log: slog.New(slog.DiscardHandler)}
	q.hold() // before any settle: nothing to stop
	q.settled()
	q.hold()
	q.mu.Lock()
	armed := q.timer.Stop()
	q.mu.Unlock()
	if armed {
		t.Fatal("the release is still armed after an event")
	}
	q.settled()
	q.mu.Lock()
	armed = q.timer.Stop()
	q.mu.Unlock()
	if !armed {
		t.Fatal("the settle after an event did not arm the release again")
	}
}
