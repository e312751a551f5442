package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// Settings are the operator's configuration, resolved once from flags,
// environment and config file by the caller.
type Settings struct {
	Banned        affinity.BannedCPUs
	Policy        affinity.Policy
	IncludePinned bool
	// NUMA keeps each IRQ on its device's NUMA node (--numa local).
	NUMA bool
}

// DefaultLockWait is how long a command waits for the state lock that
// another irqshift holds (the daemon holds it only while it settles).
const DefaultLockWait = 30 * time.Second

// Env is what every operation runs against.
type Env struct {
	FS sysfs.FS
	// Kernel receives IRQ writes and Hotplug CPU online writes; nil means
	// FS. Tests put the simulator here.
	Kernel  affinity.Kernel
	Hotplug affinity.Hotplug
	// Store is the state file; nil keeps no state (pins cannot be set).
	Store    *affinity.Store
	Settings Settings
	Logger   *slog.Logger
	// LockWait bounds the wait for the state lock; 0 is DefaultLockWait.
	LockWait time.Duration
	// CheckAccess tells whether this process may write the kernel's
	// files; nil asks FS. It runs before the lock is taken or anything read.
	CheckAccess func() error
}

func (env *Env) logger() *slog.Logger {
	if env.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}

// session is one operation's view of the state: the engine restored from
// the state file and, for a writing operation, the lock held until close.
type session struct {
	env     *Env
	engine  *affinity.Engine
	writing bool
	unlock  func()
	// last is the last snapshot loaded: its IRQs bound the saved state.
	last *affinity.State
	// daemonBanned and daemonBannedBy are the running daemon's record,
	// saved back unchanged.
	daemonBanned   sysfs.CPUSet
	daemonBannedBy map[string]sysfs.CPUSet
}

// open starts an operation. A writing one checks the privilege first,
// then takes the state lock and reads the state under it.
func (env *Env) open(ctx context.Context, writing bool) (*session, error) {
	s := &session{env: env, writing: writing}
	if writing {
		check := env.CheckAccess
		if check == nil {
			check = env.FS.CheckWriteAccess
		}
		if err := check(); err != nil {
			return nil, err
		}
	}
	saved := affinity.NewSaved()
	daemonBanned := sysfs.CPUSet{}
	var daemonBannedBy map[string]sysfs.CPUSet
	if env.Store != nil {
		if writing {
			unlock, err := env.lock(ctx)
			if err != nil {
				return nil, err
			}
			s.unlock = unlock
		}
		var err error
		if writing {
			saved, err = env.Store.LoadForUpdate()
		} else {
			saved, err = env.Store.Load()
		}
		if err := env.stateLoadError(err, writing); err != nil {
			s.release()
			return nil, err
		}
		s.daemonBanned, s.daemonBannedBy = saved.DaemonBanned, saved.DaemonBannedBy
		if _, running := env.Store.DaemonRunning(); running {
			// The daemon's bans come from its own flags and file: a
			// command run beside it honours them, or the two would undo
			// each other.
			daemonBanned, daemonBannedBy = saved.DaemonBanned, saved.DaemonBannedBy
		}
	}
	banned := env.Settings.Banned
	banned.Daemon = banned.Daemon.Union(daemonBanned)
	banned.DaemonBy = daemonBannedBy
	banned.Partitions = env.isolatedPartitions()
	s.engine = affinity.NewEngine(affinity.EngineConfig{
		FS:            env.FS,
		Kernel:        env.Kernel,
		Hotplug:       env.Hotplug,
		Banned:        banned,
		Policy:        env.Settings.Policy,
		IncludePinned: env.Settings.IncludePinned,
		NUMA:          env.Settings.NUMA,
		// Only writing operations learn pins: they can probe a new pin
		// (a managed queue looks like one on 6.1) and save it. list and
		// dry runs show the pins already recorded.
		TrackPins: writing && env.Store != nil,
		Logger:    env.Logger,
	})
	s.engine.Restore(saved)
	return s, nil
}

// stateLoadError says what a command does with an error of the state
// file's Load: it refuses (the returned error) or goes on with a warning.
func (env *Env) stateLoadError(err error, writing bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, affinity.ErrNotOurs), errors.Is(err, affinity.ErrStatePath):
		return err
	case errors.Is(err, affinity.ErrNewerState) && writing:
		return err
	case errors.Is(err, affinity.ErrNewerState):
		env.logger().Warn("state file written by a newer irqshift; showing what this one understands of it", "path", env.Store.Path(), "err", err)
	case writing:
		env.logger().Warn("state file unusable; starting from a fresh state", "path", env.Store.Path(), "err", err)
	default:
		env.logger().Warn("state file unusable; showing no pins or drains", "path", env.Store.Path(), "err", err)
	}
	return nil
}

// lock takes the state lock, saying so when it has to wait.
func (env *Env) lock(ctx context.Context) (func(), error) {
	wait := env.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	quick, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	unlock, err := env.Store.Lock(quick)
	cancel()
	if err == nil {
		return unlock, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: while waiting for the state lock", ErrInterrupted)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		// Not held by anyone: the lock file cannot be made or locked
		// (a read-only file system, no space, no permission).
		return nil, fmt.Errorf("cannot take the state lock: %w; give --state a path on a writable file system, or --state none", err)
	}
	env.logger().Warn("waiting for the state lock another irqshift holds", "lock", env.Store.Path()+".lock")
	bounded, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err = env.Store.Lock(bounded)
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: while waiting for the state lock", ErrInterrupted)
	case bounded.Err() != nil:
		return nil, fmt.Errorf("the state lock %s.lock is still held by another irqshift after %s", env.Store.Path(), wait)
	}
	return nil, err
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

// close saves the state of a writing operation and lets go of the lock.
// A state that cannot be saved fails the operation: the operator's intent
// would be lost.
func (s *session) close(err *error) {
	defer s.release()
	if !s.writing || s.env.Store == nil {
		return
	}
	if errors.Is(*err, affinity.ErrBadCPU) || errors.Is(*err, ErrBadRequest) {
		return // bad input changes nothing, not even the state file
	}
	saved := s.engine.Saved()
	saved.DaemonBanned, saved.DaemonBannedBy = s.daemonBanned, s.daemonBannedBy
	if s.last != nil {
		saved.Prune(s.last.Keys())
	}
	if serr := s.env.Store.Save(saved); serr != nil {
		*err = errors.Join(*err, fmt.Errorf("%w: %w", ErrStateNotSaved, serr))
	}
}

func (s *session) release() {
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

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
