//go:build linux

package filewatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// changeMask are the events on a directory entry that change the file at a watched path.
const changeMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM

// goneMask are the events that end a directory's watch: the directory was removed (its watch
// then gets IN_IGNORED), renamed away (IN_MOVE_SELF: the watch would follow it to its new
// name), or its file system unmounted.
const goneMask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_UNMOUNT | unix.IN_IGNORED

// dirMask is what Run asks inotify for on each parent directory. IN_ONLYDIR refuses a path
// that is not a directory (ENOTDIR, tried again later like a missing one).
const dirMask = changeMask | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// inotifyReadSize holds many events; the kernel needs room for at least one with a name of
// NAME_MAX bytes (unix.SizeofInotifyEvent + 256).
const inotifyReadSize = 64 << 10

// inotifyEvent is one struct inotify_event with its name.
type inotifyEvent struct {
	wd   int32
	mask uint32
	name string
}

// parseInotify splits one read(2) of an inotify descriptor into events. The kernel only returns
// whole events; a short one means the buffer was not what the kernel wrote.
func parseInotify(b []byte) ([]inotifyEvent, error) {
	var evs []inotifyEvent
	for len(b) > 0 {
		if len(b) < unix.SizeofInotifyEvent {
			return evs, fmt.Errorf("filewatch: inotify: %d bytes left, an event header is %d", len(b), unix.SizeofInotifyEvent)
		}
		wd := int32(binary.NativeEndian.Uint32(b[0:4]))
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := int(binary.NativeEndian.Uint32(b[12:16]))
		b = b[unix.SizeofInotifyEvent:]
		if n > len(b) {
			return evs, fmt.Errorf("filewatch: inotify: event name of %d bytes, %d left", n, len(b))
		}
		name := b[:n]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i] // NUL-padded
		}
		evs = append(evs, inotifyEvent{wd: wd, mask: mask, name: string(name)})
		b = b[n:]
	}
	return evs, nil
}

// inotifyRead is one read of the inotify descriptor, handed from the reading goroutine to Run.
type inotifyRead struct {
	events []inotifyEvent
	err    error
}

// fileWatch is the state of one Run: the inotify descriptor, the directories and the paths
// waiting to be sent. Only Run's goroutine uses it.
type fileWatch struct {
	fd       int
	log      *slog.Logger
	dirs     []*watchedDir
	byWD     map[int][]*watchedDir // a directory reached by two paths has one watch descriptor
	pending  pendingPaths
	watching func(dir string, ok bool)
}

// watch adds the inotify watch of d. With queueExisting (d could not be watched before), the
// files already there are queued: they may have been written before the watch was set.
func (s *fileWatch) watch(d *watchedDir, queueExisting bool) bool {
	wd, err := unix.InotifyAddWatch(s.fd, d.dir, dirMask)
	if err != nil {
		if msg := err.Error(); msg != d.err {
			d.err = msg
			if errors.Is(err, unix.ENOENT) {
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
	d.wd = wd
	s.byWD[wd] = append(s.byWD[wd], d)
	if queueExisting {
		for _, f := range d.files {
			// The directory exists now: for AnyFile, whatever is in it is news.
			if _, err := os.Lstat(filepath.Join(d.dir, f.base)); err == nil || f.base == AnyFile {
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
		if d.wd < 0 {
			return true
		}
	}
	return false
}

// detach ends the watch wd: every path under it is queued (its directory went away, or was
// replaced), and each directory is watched again at once if its path exists, else later.
func (s *fileWatch) detach(wd int) {
	ds := s.byWD[wd]
	if ds == nil {
		return // already detached, e.g. the IN_IGNORED after IN_DELETE_SELF
	}
	delete(s.byWD, wd)
	// After IN_MOVE_SELF the watch still holds the moved directory; elsewhere this fails
	// harmlessly (EINVAL: the kernel removed it).
	_, _ = unix.InotifyRmWatch(s.fd, uint32(wd))
	for _, d := range ds {
		d.wd = -1
		s.log.Debug("filewatch: watched directory went away", "dir", d.dir)
		s.pending.addDir(d)
		s.watch(d, true)
	}
}

// revalidate re-adds the watch of every watched directory after a queue overflow, which may
// have dropped an IN_DELETE_SELF or IN_MOVE_SELF: adding the same directory again returns its
// descriptor, another directory now at the path gets a new one.
func (s *fileWatch) revalidate() {
	for _, d := range s.dirs {
		if d.wd < 0 {
			continue
		}
		if wd, err := unix.InotifyAddWatch(s.fd, d.dir, dirMask); err == nil && wd == d.wd {
			continue
		}
		// Gone, or another directory is at the path now (already watched by the call above:
		// detach's watch of it gets that descriptor again).
		s.detach(d.wd)
	}
}

// handle applies one read's events.
func (s *fileWatch) handle(evs []inotifyEvent) {
	for _, ev := range evs {
		switch {
		case ev.mask&unix.IN_Q_OVERFLOW != 0:
			s.log.Warn("filewatch: inotify event queue overflowed; reporting every watched file")
			for _, d := range s.dirs {
				s.pending.addDir(d)
			}
			s.revalidate()
		case ev.mask&goneMask != 0:
			s.detach(int(ev.wd))
		case ev.mask&changeMask != 0 && ev.name != "":
			for _, d := range s.byWD[int(ev.wd)] {
				for _, f := range d.files {
					if f.matches(ev.name) {
						s.pending.add(f.path)
					}
				}
			}
		}
	}
}

// Run watches the files until ctx is done, sending a path of Paths on changed after each
// change to that file (see Watcher), and returns nil then. The send never blocks Run past
// ctx. It returns an error when a path is empty or names no file ("/", "."), when the inotify
// descriptor cannot be created, or when reading it fails. With no Paths it waits for ctx.
// Run does not close changed. When Run returns, the goroutine it started has ended and the
// descriptor is closed.
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

	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("filewatch: inotify_init1: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's poller: a Read waiting
	// for events parks its goroutine, and a read deadline in the past ends it.
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()

	s := &fileWatch{fd: fd, log: log, dirs: dirs, byWD: map[int][]*watchedDir{}, watching: w.Watching}
	for _, d := range dirs {
		s.watch(d, false)
	}

	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(rctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	reads := make(chan inotifyRead)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, inotifyReadSize)
		for {
			n, err := f.Read(buf)
			if rctx.Err() != nil {
				return
			}
			var r inotifyRead
			if err != nil {
				r.err = fmt.Errorf("filewatch: reading inotify events: %w", err)
			} else {
				r.events, r.err = parseInotify(buf[:n])
			}
			select {
			case reads <- r:
			case <-rctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	// Runs before f.Close: the reader is out of Read when the descriptor closes.
	defer func() {
		cancel()
		<-done
	}()

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
		case r := <-reads:
			s.handle(r.events)
			if r.err != nil {
				return r.err
			}
		case <-pollC:
			poll = nil
			for _, d := range s.dirs {
				if d.wd < 0 {
					s.watch(d, true)
				}
			}
		}
	}
}
