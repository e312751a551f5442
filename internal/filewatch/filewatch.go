// Package filewatch tells a daemon when one of a few files may have changed, so that it reads
// them again: irqshift's state file, and irqbalance-style ban files such as
// /etc/sysconfig/irqbalance that CRI-O and tuned rewrite. It imports nothing of irqshift's.
//
// It watches the parent directory of each file, never the file: a watch on a file follows its
// inode, so it goes deaf when the file is replaced by a rename (how irqshift's state file and
// `sed -i` write), and a file that does not exist yet cannot be watched at all. A watch on the
// directory sees every way the content at the path can change, whichever inode is there. A
// directory that does not exist yet (/etc/sysconfig on Debian) is polled until it does.
//
// It uses inotify directly rather than github.com/fsnotify/fsnotify: fsnotify (v1.10.1) cannot
// ask for IN_CLOSE_WRITE and always reports IN_MODIFY, at each write(2) and at the truncation
// of an open with O_TRUNC. CRI-O rewrites /etc/sysconfig/irqbalance in place (os.WriteFile), so
// a notification at the truncation has the daemon read an empty file, which bans nothing: in a
// test of 2,000 such writes the reader found the file empty after 42% of them with fsnotify,
// never with IN_CLOSE_WRITE (TestFileWatcherReportsAtClose).
package filewatch

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// AnyFile, as the last element of a path, watches every entry of its directory.
const AnyFile = "*"

// DefaultPollInterval is the Watcher's default PollInterval.
const DefaultPollInterval = time.Second

// Watcher reports changes to a few files, such as CRI-O's or irqbalance's configuration and
// irqshift's own state file, so that the daemon re-reads them.
//
// It watches the parent directory of each file with inotify and matches the base name, so it
// sees every way a file's content at that path can change: written in place (IN_CLOSE_WRITE;
// how CRI-O writes), replaced by a file renamed over it (IN_MOVED_TO; how irqshift's state file
// and `sed -i` write, a temporary file then rename(2)), created (IN_CREATE), removed (IN_DELETE)
// or renamed away (IN_MOVED_FROM). A file opened for writing is reported when it is closed, not
// per write(2) nor at its truncation. A change of attributes alone (chmod, touch) is no change.
// A symlink at the path is reported when the link itself changes, not its target. Two paths to
// one directory (through a symlink) share its watch, and each gets its files' notifications.
//
// A parent directory that does not exist (e.g. /etc/sysconfig on Debian), is not a directory,
// or cannot be watched is tried again every PollInterval until it can; once it is watched, its
// files that exist then are reported (they may have been written before the watch was set). A
// watched directory that is removed, renamed away or unmounted is reported for each of its
// files and then treated the same way. When the kernel's event queue overflows
// (IN_Q_OVERFLOW), every path is reported.
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
	// Relative paths are relative to the working directory at the time of Run. A path whose
	// last element is AnyFile ("dir/*") stands for every entry of dir: a change to any of
	// them is reported as that path (a directory of rules files).
	Paths []string
	// Logger receives debug lines about directories that do not exist (yet) and warnings
	// about directories that cannot be watched and queue overflows; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often a parent directory that cannot be watched is tried again;
	// 0 means DefaultPollInterval.
	PollInterval time.Duration

	// Watching, when set, is called by Run (on its goroutine) each time it tries to
	// watch dir: ok reports whether the inotify watch is in place.
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
	wd    int    // inotify watch descriptor, -1 while the directory is not watched
	err   string // last error of watching it, to log each distinct one once
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
			d = &watchedDir{dir: dir, wd: -1}
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

// matches reports whether a change to the entry name of its directory concerns f.
func (f watchedFile) matches(name string) bool { return f.base == name || f.base == AnyFile }

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
