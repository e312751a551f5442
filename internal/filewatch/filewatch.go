// Package filewatch tells a daemon when one of a few files may have changed, so that it reads
// them again: irqshift's state file, and irqbalance-style ban files such as
// /etc/sysconfig/irqbalance that CRI-O and tuned rewrite. It is a policy over
// github.com/fsnotify/fsnotify (inotify on Linux) and imports nothing of irqshift's.
//
// It watches the parent directory of each file, never the file: a watch on a file follows its
// inode, so it goes deaf when the file is replaced by a rename (how irqshift's state file and
// `sed -i` write), and a file that does not exist yet cannot be watched at all. A watch on the
// directory sees every way the content at the path can change (written in place, renamed
// over, created, removed, renamed away), whichever inode is there. A directory that does not
// exist yet (/etc/sysconfig on Debian) is polled until it does.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultPollInterval is the Watcher's default PollInterval.
const DefaultPollInterval = time.Second

// Watcher reports changes to a few files.
//
// It watches the parent directory of each file and matches the base name, so it sees the file
// written in place (fsnotify Write, each write(2) and truncation: fsnotify offers no event for
// the close after a write), replaced by a file renamed over it (Create), created (Create),
// removed (Remove) or renamed away (Rename). A change of attributes alone (chmod, touch) is no
// change. A symlink at the path is reported when the link itself changes, not its target.
//
// A parent directory that does not exist (e.g. /etc/sysconfig on Debian), is not a directory,
// or cannot be watched is tried again every PollInterval until it can; once it is watched, its
// files that exist then are reported (they may have been written before the watch was set). A
// watched directory that is removed or renamed away is reported for each of its files and then
// treated the same way. When the kernel's event queue overflows, every path is reported and
// every directory watched again.
//
// Notifications are coalesced per path: while the receiver is busy, changes to a path that is
// already waiting to be sent add nothing, and a change after a send queues the path again, so
// the last change of a burst is always followed by a notification. Nothing is sent for the
// files as they are when Run starts: read them after starting Run (a change in between is
// reported, and the extra read is harmless).
//
// Set the fields before Run; a Watcher may be run again after Run returns.
type Watcher struct {
	// Paths are the files to watch. Each notification is one of these strings as given.
	// Relative paths are relative to the working directory at the time of Run.
	Paths []string
	// Logger receives debug lines about directories that do not exist (yet) and warnings
	// about directories that cannot be watched and queue overflows; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often a parent directory that cannot be watched is tried again;
	// 0 means DefaultPollInterval.
	PollInterval time.Duration

	// Watching, when set, is called by Run (on its goroutine) each time it tries to
	// watch dir: ok reports whether the watch is in place.
	Watching func(dir string, ok bool)
}

// watchedFile is one entry of Paths: the string to send and the name to match.
type watchedFile struct {
	path string // as given in Paths
	base string
}

// watchedDir is a parent directory and the files of Paths in it.
type watchedDir struct {
	dir   string
	files []watchedFile
	// key is the fsnotify watch whose events are this directory's, "" while it is not
	// watched: dir, or the path of another entry that is the same directory (through a
	// symlink; the kernel has one watch per directory, and fsnotify names its events after
	// the path first added).
	key string
	fi  os.FileInfo // the directory watched, to find such a second path to it
	err string      // last error of watching it, to log each distinct one once
}

// groupPaths checks paths and groups them by parent directory, in the order given; duplicate
// strings are dropped.
func groupPaths(paths []string) ([]*watchedDir, error) {
	var dirs []*watchedDir
	byDir := map[string]*watchedDir{}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if p == "" {
			return nil, fmt.Errorf("filewatch: empty path")
		}
		clean := filepath.Clean(p)
		base := filepath.Base(clean)
		if base == "/" || base == "." || base == ".." {
			return nil, fmt.Errorf("filewatch: %q is not a file path", p)
		}
		dir := filepath.Dir(clean)
		d := byDir[dir]
		if d == nil {
			d = &watchedDir{dir: dir}
			byDir[dir] = d
			dirs = append(dirs, d)
		}
		d.files = append(d.files, watchedFile{path: p, base: base})
	}
	return dirs, nil
}

// pendingPaths is the set of paths waiting to be sent, in the order they were first changed.
type pendingPaths struct {
	order []string
	in    map[string]bool
}

func (q *pendingPaths) add(p string) {
	if q.in == nil {
		q.in = map[string]bool{}
	}
	if q.in[p] {
		return
	}
	q.in[p] = true
	q.order = append(q.order, p)
}

func (q *pendingPaths) addDir(d *watchedDir) {
	for _, f := range d.files {
		q.add(f.path)
	}
}

func (q *pendingPaths) len() int { return len(q.order) }

func (q *pendingPaths) first() string { return q.order[0] }

func (q *pendingPaths) pop() {
	delete(q.in, q.order[0])
	q.order = q.order[1:]
}

// fileWatch is the state of one Run. Only Run's goroutine uses it.
type fileWatch struct {
	fw       *fsnotify.Watcher
	log      *slog.Logger
	dirs     []*watchedDir
	pending  pendingPaths
	watching func(dir string, ok bool)
}

// watch adds the watch of d. With queueExisting (d was not watched before), the files already
// there are queued: they may have been written before the watch was set.
func (s *fileWatch) watch(d *watchedDir, queueExisting bool) bool {
	fi, err := os.Stat(d.dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s: not a directory", d.dir)
	}
	if err == nil {
		err = s.fw.Add(d.dir)
	}
	if err != nil {
		if msg := err.Error(); msg != d.err {
			d.err = msg
			if errors.Is(err, fs.ErrNotExist) {
				s.log.Debug("filewatch: directory of watched files does not exist; checking it periodically", "dir", d.dir)
			} else {
				s.log.Warn("filewatch: cannot watch the directory of watched files; checking it periodically", "dir", d.dir, "err", err)
			}
		}
		if s.watching != nil {
			s.watching(d.dir, false)
		}
		return false
	}
	if d.err != "" {
		s.log.Debug("filewatch: watching directory", "dir", d.dir)
	}
	d.err = ""
	d.key, d.fi = d.dir, fi
	if !slices.Contains(s.fw.WatchList(), d.dir) {
		// Another path to this directory was added first: its events carry that path.
		for _, e := range s.dirs {
			if e != d && e.key != "" && os.SameFile(e.fi, fi) {
				d.key = e.key
				break
			}
		}
	}
	if queueExisting {
		for _, f := range d.files {
			if _, err := os.Lstat(filepath.Join(d.dir, f.base)); err == nil {
				s.pending.add(f.path)
			}
		}
	}
	if s.watching != nil {
		s.watching(d.dir, true)
	}
	return true
}

// missing reports whether a directory is not watched.
func (s *fileWatch) missing() bool {
	for _, d := range s.dirs {
		if d.key == "" {
			return true
		}
	}
	return false
}

// detach ends the watch key: every path under it is queued (its directory went away, or was
// replaced), and each directory is watched again at once if its path exists, else later.
func (s *fileWatch) detach(key string) {
	// fsnotify has already dropped the watch of a directory removed or renamed away; this
	// ends the watch when the event came from the watch of its parent, or after an overflow.
	_ = s.fw.Remove(key)
	var gone []*watchedDir
	for _, d := range s.dirs {
		if d.key == key {
			d.key = ""
			s.log.Debug("filewatch: watched directory went away", "dir", d.dir)
			s.pending.addDir(d)
			gone = append(gone, d)
		}
	}
	for _, d := range gone {
		s.watch(d, true)
	}
}

// resync reports every path and watches every directory again, after the kernel dropped
// events: one of them may have been a watched directory's removal, or its replacement.
func (s *fileWatch) resync() {
	var keys []string
	for _, d := range s.dirs {
		s.pending.addDir(d)
		if d.key != "" && !slices.Contains(keys, d.key) {
			keys = append(keys, d.key)
		}
	}
	for _, key := range keys {
		s.detach(key)
	}
}

// handle applies one event. Name is a watched directory's key joined with the name of the
// entry in it, or the key alone for the directory itself.
func (s *fileWatch) handle(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Create | fsnotify.Write | fsnotify.Remove | fsnotify.Rename) {
		return // Chmod alone
	}
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	for _, d := range s.dirs {
		if d.key != dir {
			continue
		}
		for _, f := range d.files {
			if f.base == base {
				s.pending.add(f.path)
			}
		}
	}
	if ev.Has(fsnotify.Remove | fsnotify.Rename) {
		for _, d := range s.dirs {
			if d.key == ev.Name {
				s.detach(ev.Name)
				break
			}
		}
	}
}

// handleError applies an error of fsnotify and returns the errors that end Run: reading the
// inotify descriptor failed.
func (s *fileWatch) handleError(err error) error {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, fsnotify.ErrEventOverflow):
		s.log.Warn("filewatch: the event queue overflowed; reporting every watched file")
	case errors.As(err, &pathErr), errors.Is(err, io.EOF):
		return fmt.Errorf("filewatch: reading events: %w", err)
	default:
		// Removing the watch of a directory that was renamed away and then removed.
		s.log.Warn("filewatch: error from the watcher; reporting every watched file", "err", err)
	}
	s.resync()
	return nil
}

// Run watches the files until ctx is done, sending a path of Paths on changed after each
// change to that file (see Watcher), and returns nil then. The send never blocks Run past
// ctx. It returns an error when a path is empty or names no file ("/", "."), when the watcher
// cannot be created (inotify_init1), or when reading its events fails. With no Paths it waits
// for ctx. Run does not close changed. When Run returns, the watcher is closed and its
// goroutine has ended.
func (w *Watcher) Run(ctx context.Context, changed chan<- string) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dirs, err := groupPaths(w.Paths)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		<-ctx.Done()
		return nil
	}
	interval := w.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("filewatch: %w", err)
	}
	defer fw.Close()

	s := &fileWatch{fw: fw, log: log, dirs: dirs, watching: w.Watching}
	for _, d := range dirs {
		s.watch(d, false)
	}

	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		if poll == nil && s.missing() {
			poll = time.NewTimer(interval)
		}
		var pollC <-chan time.Time
		if poll != nil {
			pollC = poll.C
		}
		var out chan<- string
		var next string
		if s.pending.len() > 0 {
			out, next = changed, s.pending.first()
		}
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case out <- next:
			s.pending.pop()
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("filewatch: the watcher stopped")
			}
			s.handle(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("filewatch: the watcher stopped")
			}
			if err := s.handleError(err); err != nil {
				return err
			}
		case <-pollC:
			poll = nil
			for _, d := range s.dirs {
				if d.key == "" {
					s.watch(d, true)
				}
			}
		}
	}
}
