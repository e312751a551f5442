package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Mode says what a Session may do.
type Mode int

const (
	// Read only reads the state: no lock, never a change to any file.
	Read Mode = iota
	// Write holds the lock from Open to Close, may keep an unusable file
	// of irqshift's aside, and commits.
	Write
)

// DefaultLockWait is how long a command waits for the state lock that
// another irqshift holds (the daemon holds it only while it settles).
const DefaultLockWait = 30 * time.Second

// ErrLockUnavailable means the lock file cannot be made or locked, while
// nobody holds it: a read-only file system, no space, no permission.
var ErrLockUnavailable = errors.New("cannot take the state lock")

// ErrInterrupted means the context ended while a Session waited for the
// lock: nothing was read or written.
var ErrInterrupted = errors.New("interrupted")

// Options tune Open.
type Options struct {
	// Logger receives the warnings: an unusable or newer file that Load
	// goes on with, a lock another irqshift holds. nil discards them.
	Logger *slog.Logger
	// LockWait bounds the wait for the lock of a Write session, and makes
	// it say, after a moment, that it waits for another irqshift. 0 waits
	// silently until ctx ends: the daemon waits for a command to finish.
	LockWait time.Duration
}

// Session is one transaction on the state: the lock of a writer, the
// loads, the commit. A Session of a nil Store keeps no state: Load gives
// an empty one and Commit saves nothing.
type Session struct {
	store  *Store
	mode   Mode
	opts   Options
	unlock func()
}

// Open starts a Session. A Write session takes the lock first, waiting as
// opts say; the errors are ErrInterrupted (ctx ended), a lock held after
// LockWait, or a lock file that cannot be made (a read-only file system),
// each saying what to do.
func (st *Store) Open(ctx context.Context, mode Mode, opts Options) (*Session, error) {
	s := &Session{store: st, mode: mode, opts: opts}
	if st == nil || mode == Read {
		return s, nil
	}
	unlock, err := st.lockFor(ctx, opts)
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

func (s *Session) log() *slog.Logger {
	if s.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.opts.Logger
}

// lockFor takes the lock as opts say.
func (st *Store) lockFor(ctx context.Context, opts Options) (func(), error) {
	interrupted := func() error {
		return fmt.Errorf("%w: while waiting for the state lock", ErrInterrupted)
	}
	if opts.LockWait <= 0 {
		unlock, err := st.Lock(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, interrupted()
		}
		return unlock, err
	}
	quick, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	unlock, err := st.Lock(quick)
	cancel()
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, interrupted()
	case !errors.Is(err, context.DeadlineExceeded):
		// Not held by anyone: the lock file cannot be made or locked (a
		// read-only file system, no space, no permission).
		return nil, fmt.Errorf("%w: %w", ErrLockUnavailable, err)
	}
	if opts.Logger != nil {
		opts.Logger.Warn("waiting for the state lock another irqshift holds", "lock", st.lockPath())
	}
	bounded, cancel := context.WithTimeout(ctx, opts.LockWait)
	defer cancel()
	unlock, err = st.Lock(bounded)
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, interrupted()
	case bounded.Err() != nil:
		return nil, fmt.Errorf("the state lock %s is still held by another irqshift after %s", st.lockPath(), opts.LockWait)
	}
	return nil, err
}

// Changed reports whether the state file changed since this Store's last
// Load or Commit (Store.Changed); false for a nil Store, whose state
// lives in memory only.
func (s *Session) Changed() bool {
	if s.store == nil {
		return false
	}
	return s.store.Changed()
}

// Load reads the state and answers its errors the same way for every
// caller:
//
//   - not irqshift's, not a regular file: an error (nothing can be kept);
//   - from a newer irqshift: an error for a writer, which must not replace
//     it; a reader goes on with what it understands, with a warning;
//   - unusable but irqshift's: a writer keeps it aside and starts afresh,
//     a reader shows an empty state; both with a warning.
func (s *Session) Load() (Saved, error) {
	if s.store == nil {
		return NewSaved(), nil
	}
	var saved Saved
	var err error
	if s.mode == Write {
		saved, err = s.store.LoadForUpdate()
	} else {
		saved, err = s.store.Load()
	}
	path := s.store.Path()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotOurs), errors.Is(err, ErrStatePath):
		return NewSaved(), err
	case errors.Is(err, ErrNewerState) && s.mode == Write:
		return NewSaved(), err
	case errors.Is(err, ErrNewerState):
		s.log().Warn("state file written by a newer irqshift; showing what this one understands of it", "path", path, "err", err)
	case s.mode == Write:
		s.log().Warn("state file unusable; starting from a fresh state", "path", path, "err", err)
	default:
		s.log().Warn("state file unusable; showing no pins or drains", "path", path, "err", err)
	}
	return saved, nil
}

// Commit saves the state of a Write session: first it drops what refers
// to IRQs that are gone (Saved.Prune with present, the keys of the last
// snapshot; nil prunes nothing). It refuses, and saves nothing, what Save
// refuses.
func (s *Session) Commit(saved Saved, present map[string]bool) error {
	if s.store == nil {
		return nil
	}
	if s.mode != Write {
		return errors.New("state: commit of a read-only session")
	}
	saved.Prune(present)
	return s.store.Save(saved)
}

// DaemonRunning reports whether a daemon holds the claim on the state
// (Store.DaemonRunning): then its bans (Saved.DaemonBanned) hold.
func (s *Session) DaemonRunning() bool {
	if s.store == nil {
		return false
	}
	_, running := s.store.DaemonRunning()
	return running
}

// Close ends the Session: it lets go of the lock. Calling it again does
// nothing.
func (s *Session) Close() {
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}
