// Package fifotest helps the tests of code that must never block on a
// FIFO or read a device for ever: it makes a FIFO that unblocks at
// cleanup, and runs a call under a hang guard. It imports nothing of
// irqshift's and only tests import it.
package fifotest

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HangGuard bounds a call that must not block. It is a guard against a
// hang, not a speed check: the calls it guards take microseconds.
const HangGuard = 20 * time.Second

// Make makes a FIFO at path (the test is skipped where it cannot be made).
// Code that opens or reads it may block when it is broken: at cleanup the
// FIFO's other end is opened, so that such a call returns and the test's
// goroutine ends.
func Make(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

// Within runs f and fails the test when it has not returned after
// HangGuard: a read of a FIFO without a writer blocks for ever, and one
// of /dev/zero never ends.
func Within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(HangGuard):
		t.Fatalf("%s did not return within %s", what, HangGuard)
	}
}

// WithinErr is Within for a call that returns an error, which it returns.
func WithinErr(t *testing.T, what string, f func() error) error {
	t.Helper()
	var err error
	Within(t, what, func() { err = f() })
	return err
}
