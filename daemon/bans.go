package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync/atomic"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/envfile"
	"github.com/irqshift/irqshift/internal/regfile"
	"github.com/irqshift/irqshift/sysfs"
)

// DefaultBanPollInterval is how often Bans re-reads the sources that give
// no notification, when nothing else woke the daemon: one small file
// (cpuset.cpus.isolated, default_smp_affinity) four times a second: the
// kernel notifies no change of cpuset.cpus.isolated (inotify, poll and
// cgroup.events stay silent; measured on 6.12 and 6.1), and a read costs
// what a read of cpu/online does.
const DefaultBanPollInterval = 250 * time.Millisecond

// Bans are the ban sources the daemon follows while it runs, beside its
// configuration: irqbalance-style files that CRI-O and tuned rewrite, the
// isolated cgroup v2 cpuset partitions, and optionally the CPUs missing
// from /proc/irq/default_smp_affinity. A CPU any of them bans leaves the
// allowed set at once, and its IRQs move as on an offline.
type Bans struct {
	FS sysfs.FS
	// Files are the ban files (--ban-file); one that does not exist yet
	// bans nothing until it is created.
	Files []string
	// Partitions follows the root's cpuset.cpus.isolated.
	Partitions bool
	// DefaultAffinity bans the CPUs missing from default_smp_affinity.
	DefaultAffinity bool
	// PollInterval bounds how long a change of a source that gives no
	// notification goes unseen when nothing else wakes the daemon; 0 is
	// DefaultBanPollInterval.
	PollInterval time.Duration
	Logger       *slog.Logger

	isolated *sysfs.IsolatedReader // nil until opened
	noCgroup bool                  // the kernel has no cpuset.cpus.isolated: stop looking
	possible sysfs.CPUSet          // read once, for DefaultAffinity
	last     followed
	read1    bool // the sources were read once
	// readFiles asks the next read to read the ban files: inotify said
	// one changed, or nothing watches them. The polls in between read
	// only the sources that give no notification.
	readFiles bool
	// unwatched: inotify could not watch the ban files, so every poll
	// reads them.
	unwatched atomic.Bool
	// fileProblem is the warning last logged for each ban file that could
	// not be used, so that a file that stays bad is not reported again at
	// every read (every poll, when inotify does not watch the files).
	fileProblem map[string]string
	// partitionsProblem is the reason last logged for not following the
	// isolated partitions ("" when following them): the cgroup root is
	// looked for again at every poll, quietly while the reason stays.
	partitionsProblem string
}

// check refuses, at start, a ban file path that exists and is not a
// regular file (after symbolic links): a FIFO would block the daemon
// before its first settle, a device such as /dev/zero would grow it
// without end, and a directory or socket can never be a ban file. A path
// that does not exist yet is fine: CRI-O creates /etc/sysconfig/irqbalance
// when it first needs it.
func (b *Bans) check() error {
	if b == nil {
		return nil
	}
	for _, path := range b.Files {
		var notRegular *regfile.NotRegularError
		if err := regfile.Check(path); errors.As(err, &notRegular) {
			return fmt.Errorf("--ban-file %w: give the path of an irqbalance environment file (such as /etc/sysconfig/irqbalance)", err)
		}
	}
	return nil
}

// filesChanged asks the next read to read the ban files again.
func (b *Bans) filesChanged() { b.readFiles = true }

// followed is what the sources banned when last read.
type followed struct {
	files      map[string]sysfs.CPUSet
	partitions sysfs.CPUSet
	notDefault sysfs.CPUSet
}

func (f followed) equal(o followed) bool {
	return maps.EqualFunc(f.files, o.files, sysfs.CPUSet.Equal) && f.partitions.Equal(o.partitions) && f.notDefault.Equal(o.notDefault)
}

func (b *Bans) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

func (b *Bans) pollInterval() time.Duration {
	if b.PollInterval > 0 {
		return b.PollInterval
	}
	return DefaultBanPollInterval
}

// polled reports whether some source needs polling (no notification).
func (b *Bans) polled() bool {
	return b != nil && ((b.Partitions && !b.noCgroup) || b.DefaultAffinity || (len(b.Files) > 0 && b.unwatched.Load()))
}

// read reads the sources: the ban files only when they may have changed
// (readFiles), and the polled ones. A ban file that cannot be read or
// parsed keeps what it banned before, with a warning: a half-written or
// mistyped file must not free the CPUs it banned.
func (b *Bans) read() followed {
	f := followed{files: b.last.files}
	if b.readFiles || b.last.files == nil || b.unwatched.Load() {
		f.files = b.readBanFiles()
		b.readFiles = false
	}
	if b.Partitions && !b.noCgroup {
		f.partitions = b.readPartitions()
	}
	if b.DefaultAffinity {
		f.notDefault = b.last.notDefault
		if b.possible.IsEmpty() {
			if cpus, err := b.FS.CPUInfo(); err == nil {
				b.possible = cpus.Possible
			}
		}
		if def, err := b.FS.DefaultAffinity(); err != nil {
			b.log().Warn("cannot read default_smp_affinity; keeping what it banned", "err", err)
		} else if !b.possible.IsEmpty() {
			f.notDefault = b.possible.Difference(def)
		}
	}
	return f
}

// readBanFiles reads the ban files. They are read without blocking and
// bounded (regfile.Read): the path may become a FIFO or a
// device while the daemon runs, and reading one would stop the daemon
// (a FIFO without a writer blocks, and SIGTERM does not end the read) or
// grow it without end (/dev/zero). Such a file, like a malformed one,
// keeps what it banned before.
func (b *Bans) readBanFiles() map[string]sysfs.CPUSet {
	files := make(map[string]sysfs.CPUSet, len(b.Files))
	for _, path := range b.Files {
		data, err := regfile.Read(path, envfile.MaxSize)
		var notRegular *regfile.NotRegularError
		switch {
		case errors.Is(err, os.ErrNotExist):
			b.fileOK(path)
			files[path] = sysfs.CPUSet{}
		case errors.As(err, &notRegular):
			b.fileWarn(path, "ban file is not a regular file; keeping what it banned", err)
			files[path] = b.last.files[path]
		case errors.Is(err, regfile.ErrTooLarge):
			b.fileWarn(path, "malformed ban file; keeping what it banned", err)
			files[path] = b.last.files[path]
		case err != nil:
			b.fileWarn(path, "cannot read ban file; keeping what it banned", err)
			files[path] = b.last.files[path]
		default:
			set, err := affinity.ParseBanFile(path, data)
			if err != nil {
				b.fileWarn(path, "malformed ban file; keeping what it banned", err)
				set = b.last.files[path]
			} else {
				b.fileOK(path)
			}
			files[path] = set
		}
	}
	return files
}

// fileWarn logs msg for the ban file path, unless it is what was last
// logged for it.
func (b *Bans) fileWarn(path, msg string, err error) {
	problem := msg + ": " + err.Error()
	if b.fileProblem[path] == problem {
		return
	}
	if b.fileProblem == nil {
		b.fileProblem = map[string]string{}
	}
	b.fileProblem[path] = problem
	b.log().Warn(msg, "path", path, "err", err)
}

// fileOK notes that the ban file path was read (or is absent), so that a
// later problem with it is logged again.
func (b *Bans) fileOK(path string) { delete(b.fileProblem, path) }

// readPartitions reads the CPUs of the isolated cpuset partitions. Where
// the kernel has no cpuset.cpus.isolated it stops looking. Any other
// failure (mountinfo unreadable, the file unreadable) is retried at every
// read, and logged only when its reason changes and once it works again:
// the reads come four times a second.
func (b *Bans) readPartitions() sysfs.CPUSet {
	if b.isolated == nil {
		root, err := b.FS.CgroupRoot()
		if err == nil {
			b.isolated, err = b.FS.OpenIsolatedPartitions(root)
		}
		if err != nil {
			b.noCgroup = errors.Is(err, sysfs.ErrNoIsolatedFile)
			if b.noCgroup {
				b.log().Info("not following isolated cpuset partitions", "reason", err)
				return sysfs.CPUSet{}
			}
			if problem := "open: " + err.Error(); problem != b.partitionsProblem {
				b.partitionsProblem = problem
				b.log().Info("not following isolated cpuset partitions", "reason", err)
			}
			// A failure that may pass keeps what the partitions banned:
			// freeing their CPUs for a moment would move IRQs onto them.
			return b.last.partitions
		}
	}
	set, err := b.isolated.Read()
	if err != nil {
		if problem := "read: " + err.Error(); problem != b.partitionsProblem {
			b.partitionsProblem = problem
			b.log().Warn("cannot read the isolated cpuset partitions; keeping the last", "err", err)
		}
		b.isolated.Close()
		b.isolated = nil // opened again at the next read
		return b.last.partitions
	}
	if b.partitionsProblem != "" {
		b.partitionsProblem = ""
		b.log().Info("following isolated cpuset partitions", "isolated", set.String())
	}
	return set
}

// apply reads the sources and, when what they ban changed, puts it in
// banned and reports true.
func (b *Bans) apply(banned *affinity.BannedCPUs, force bool) bool {
	f := b.read()
	changed := !f.equal(b.last)
	b.last = f
	if !changed && !force {
		return false
	}
	banned.Files, banned.Partitions, banned.NotDefault = f.files, f.partitions, f.notDefault
	return changed
}

// watch starts following the ban files with inotify and returns a channel
// with a value whenever one may have changed (nil without files).
func (b *Bans) watch(ctx context.Context) <-chan struct{} {
	if b == nil || len(b.Files) == 0 {
		return nil
	}
	return watchFiles(ctx, b.Files, "the ban files", "their changes", b.log(), func() { b.unwatched.Store(true) })
}

// refreshBans re-reads the followed ban sources into the engine's bans,
// and reports whether they changed (force puts them there anyway, after a
// configuration replaced them).
func (d *Daemon) refreshBans(force bool) bool {
	if d.Bans == nil {
		return false
	}
	banned := d.Engine.Banned()
	if force {
		d.Bans.filesChanged()
	}
	first := !d.Bans.read1
	d.Bans.read1 = true
	changed := d.Bans.apply(&banned, force)
	if changed || force {
		d.Engine.SetBanned(banned)
	}
	if first {
		d.log().Info("following ban sources", "files", d.Bans.Files, "partitions", d.Bans.Partitions && !d.Bans.noCgroup,
			"default_smp_affinity", d.Bans.DefaultAffinity, "banned", banned.Configured().String())
		return false
	}
	if changed {
		attrs := []any{}
		sources := banned.Sources(sysfs.CPUInfo{})
		for _, source := range affinity.BanSources {
			if set, ok := sources[source]; ok {
				attrs = append(attrs, string(source), set.String())
			}
		}
		d.log().Info("banned CPUs changed", attrs...)
	}
	return changed
}

// settleBans settles at once when a ban source changed: the CPUs that
// left the allowed set are drained as on an offline, those that joined it
// get IRQs again. The settle reads only what a ban can have changed
// (nothing in the kernel: the last snapshot, refreshed), then, when
// quiet, a full recheck follows.
func (d *Daemon) settleBans(ctx context.Context, since time.Time, quiet bool) {
	if !d.refreshBans(false) {
		return
	}
	if _, err := d.settle(ctx, SettleBans, nil, true, true, since); err != nil {
		d.log().Error("settle failed", "reason", SettleBans, "err", err)
		return
	}
	if quiet {
		d.settleLogged(ctx, SettleRecheck, nil)
	}
}
