package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Settings are the operator's configuration (affinity.Settings), resolved
// once from flags, environment and config file by the caller.
type Settings = affinity.Settings

// DefaultLockWait is how long a command waits for the state lock that
// another irqshift holds (the daemon holds it only while it settles).
const DefaultLockWait = state.DefaultLockWait

// Env is what every operation runs against.
type Env struct {
	FS sysfs.FS
	// Kernel receives IRQ writes and Hotplug CPU online writes; nil means
	// FS. Tests put the simulator here.
	Kernel  affinity.Kernel
	Hotplug affinity.Hotplug
	// Store is the state file; nil keeps no state (pins cannot be set).
	Store    *state.Store
	Settings Settings
	Logger   *slog.Logger
	// LockWait bounds the wait for the state lock; 0 is DefaultLockWait.
	LockWait time.Duration
	// CheckAccess tells whether this process may write the kernel's
	// files; nil asks FS. It runs before the lock is taken or anything read.
	CheckAccess func() error
	// Clock stamps the states rates are measured between, and Wait lets a
	// sampling window pass; nil are the wall clock and a sleep. Tests pass
	// a clock they advance with the simulator's counts.
	Clock func() time.Time
	Wait  func(ctx context.Context, window time.Duration) error
}

// checkAccess fails when this process may not write the kernel's files.
func (env *Env) checkAccess() error {
	check := env.CheckAccess
	if check == nil {
		check = env.FS.CheckWriteAccess
	}
	return check()
}

// sampleRates measures every IRQ's rate over window (nil for a window of
// 0: the plan then counts only). It takes no lock: an operation samples
// before it opens its session, so that a daemon waiting for the lock is
// not held up by the window.
func (env *Env) sampleRates(ctx context.Context, window time.Duration) (affinity.Rates, error) {
	if window <= 0 {
		return nil, nil
	}
	engine := affinity.NewEngine(affinity.EngineConfig{FS: env.FS, Clock: env.Clock, Logger: env.Logger})
	if _, err := engine.Sample(ctx, window, env.Wait); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: while sampling interrupt rates", ErrInterrupted)
		}
		return nil, fmt.Errorf("sampling interrupt rates: %w", err)
	}
	return engine.Rates(), nil
}

func (env *Env) logger() *slog.Logger {
	if env.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}

// session is one operation: its state.Session (the lock of a writing
// operation, held until close) and the engine restored from the state.
type session struct {
	env     *Env
	state   *state.Session
	engine  *affinity.Engine
	writing bool
	// last is the last snapshot loaded: its IRQs bound the saved state.
	last *affinity.State
	// daemonBanned and daemonBannedBy are the running daemon's record,
	// saved back unchanged.
	daemonBanned   sysfs.CPUSet
	daemonBannedBy map[affinity.BanSource]sysfs.CPUSet
}

// openSampled is open after measuring the IRQs' rates over window (see
// sampleRates): a writing operation checks the privilege first, so that a
// user who may not write learns it at once, not after the window.
func (env *Env) openSampled(ctx context.Context, writing bool, window time.Duration) (*session, error) {
	if writing && window > 0 {
		if err := env.checkAccess(); err != nil {
			return nil, err
		}
	}
	rates, err := env.sampleRates(ctx, window)
	if err != nil {
		return nil, err
	}
	s, err := env.open(ctx, writing)
	if err != nil {
		return nil, err
	}
	s.engine.SetRates(rates)
	return s, nil
}

// open starts an operation. A writing one checks the privilege first,
// then takes the state lock and reads the state under it.
func (env *Env) open(ctx context.Context, writing bool) (*session, error) {
	s := &session{env: env, writing: writing}
	mode := state.Read
	if writing {
		if err := env.checkAccess(); err != nil {
			return nil, err
		}
		mode = state.Write
	}
	wait := env.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	sess, err := env.Store.Open(ctx, mode, state.Options{Logger: env.Logger, LockWait: wait})
	if errors.Is(err, state.ErrInterrupted) {
		return nil, fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	if err != nil {
		return nil, err
	}
	s.state = sess
	saved, err := sess.Load()
	if err != nil {
		sess.Close()
		return nil, err
	}
	s.daemonBanned, s.daemonBannedBy = saved.DaemonBanned, saved.DaemonBannedBy
	banned := env.Settings.Banned
	if sess.DaemonRunning() {
		// The daemon's bans come from its own flags and file: a command
		// run beside it honours them, or the two would undo each other.
		banned.Daemon = banned.Daemon.Union(saved.DaemonBanned)
		banned.DaemonBy = saved.DaemonBannedBy
	}
	banned.Partitions = env.isolatedPartitions()
	settings := env.Settings
	settings.Banned = banned
	s.engine = affinity.NewEngine(affinity.EngineConfig{
		FS:      env.FS,
		Kernel:  env.Kernel,
		Hotplug: env.Hotplug,
		// Only writing operations learn pins: they can probe a new pin
		// (a managed queue looks like one on 6.1) and save it. list and
		// dry runs show the pins already recorded.
		TrackPins: writing && env.Store != nil,
		Logger:    env.Logger,
		Clock:     env.Clock,
	}.With(settings))
	s.engine.Restore(saved)
	return s, nil
}

// load snapshots and classifies; for a writing operation it also probes
// newly learned pins, so managed IRQs are not taken for pins.
func (s *session) load() (*affinity.State, error) {
	st, err := s.loadOnly()
	if err != nil {
		return nil, err
	}
	if s.writing {
		s.engine.ProbePins(st)
	}
	return st, nil
}

// loadOnly snapshots and classifies without probing: for checks of bad
// input, which must come before any write.
func (s *session) loadOnly() (*affinity.State, error) {
	st, err := s.engine.Load()
	if err != nil {
		return nil, err
	}
	s.last = st
	return st, nil
}

// close commits the state of a writing operation and lets go of the lock.
// A state that cannot be saved fails the operation: the operator's intent
// would be lost.
func (s *session) close(err *error) {
	defer s.release()
	if !s.writing {
		return
	}
	if errors.Is(*err, affinity.ErrBadCPU) || errors.Is(*err, ErrBadRequest) {
		return // bad input changes nothing, not even the state file
	}
	saved := s.engine.Saved()
	saved.DaemonBanned, saved.DaemonBannedBy = s.daemonBanned, s.daemonBannedBy
	var present map[string]bool
	if s.last != nil {
		present = s.last.Keys()
	}
	if serr := s.state.Commit(saved, present); serr != nil {
		*err = errors.Join(*err, fmt.Errorf("%w: %w", ErrStateNotSaved, serr))
	}
}

func (s *session) release() { s.state.Close() }

// isolatedPartitions reads the CPUs of the isolated cgroup v2 cpuset
// partitions, banned like isolcpus ones: none where the kernel has no
// such file (a warning when it cannot be read).
func (env *Env) isolatedPartitions() sysfs.CPUSet {
	root, err := env.FS.CgroupRoot()
	if err == nil {
		var set sysfs.CPUSet
		if set, err = env.FS.IsolatedPartitions(root); err == nil {
			return set
		}
	}
	if !errors.Is(err, sysfs.ErrNoIsolatedFile) && !errors.Is(err, os.ErrNotExist) {
		env.logger().Warn("cannot read the isolated cpuset partitions; not banning them", "err", err)
	}
	return sysfs.CPUSet{}
}
