//go:build linux

package filewatch

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hang guards only: nothing here asserts how fast a notification arrives.
const fwHang = 10 * time.Second

// fwRun is a Watcher running in the background with an unbuffered channel, as the daemon
// uses it, and a log of its watch attempts. Its first path is a sentinel file in a directory of
// its own: events reach Run in order, so once the sentinel's notification arrives, every change
// made before the sentinel was written has been sent. That makes "what arrived for a change"
// exact without waiting for a time.
type fwRun struct {
	changed  chan string
	tries    chan fwTry
	errc     chan error
	cancel   context.CancelFunc
	sentinel string
	n        int
}

type fwTry struct {
	dir string
	ok  bool
}

func startFileWatcher(t *testing.T, poll time.Duration, paths ...string) *fwRun {
	t.Helper()
	r := &fwRun{changed: make(chan string), tries: make(chan fwTry, 1<<14), errc: make(chan error, 1),
		sentinel: filepath.Join(t.TempDir(), "sentinel")}
	w := &Watcher{Paths: append([]string{r.sentinel}, paths...), PollInterval: poll, Watching: func(dir string, ok bool) {
		select {
		case r.tries <- fwTry{dir, ok}:
		default: // the test stopped looking
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.errc <- w.Run(ctx, r.changed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			r.errc <- nil
		case <-time.After(fwHang):
			t.Errorf("Run did not return within %v of cancel", fwHang)
		}
	})
	r.waitWatch(t, filepath.Dir(r.sentinel), true)
	return r
}

// waitWatch waits until Run has tried to watch dir with the outcome ok.
func (r *fwRun) waitWatch(t *testing.T, dir string, ok bool) {
	t.Helper()
	timeout := time.After(fwHang)
	for {
		select {
		case tr := <-r.tries:
			if tr.dir == dir && tr.ok == ok {
				return
			}
		case err := <-r.errc:
			t.Fatalf("Run returned %v while waiting for the watch of %s", err, dir)
		case <-timeout:
			t.Fatalf("no watch attempt of %s with ok=%v within %v", dir, ok, fwHang)
		}
	}
}

// next returns the next notification.
func (r *fwRun) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case p := <-r.changed:
		return p
	case err := <-r.errc:
		t.Fatalf("%s: Run returned %v", what, err)
	case <-time.After(fwHang):
		t.Fatalf("%s: no notification within %v", what, fwHang)
	}
	return ""
}

// expectThrough reads notifications until want arrives and returns those before it, each of
// which must be in allowed.
func (r *fwRun) expectThrough(t *testing.T, what, want string, allowed ...string) []string {
	t.Helper()
	var before []string
	for {
		got := r.next(t, what)
		if got == want {
			return before
		}
		if !slices.Contains(allowed, got) {
			t.Fatalf("%s: notified %q before %q, want only %q", what, got, want, allowed)
		}
		before = append(before, got)
	}
}

// changes writes the sentinel and returns the set of paths notified before it, sorted: what
// every change since the previous call caused.
func (r *fwRun) changes(t *testing.T, what string) []string {
	t.Helper()
	r.n++
	// By rename: one event (IN_MOVED_TO) per call. A write that creates the file would be two
	// (IN_CREATE, IN_CLOSE_WRITE), and the second could come back as the next call's sentinel.
	renameOver(t, r.sentinel, strconv.Itoa(r.n))
	var got []string
	for {
		p := r.next(t, what)
		if p == r.sentinel {
			slices.Sort(got)
			return slices.Compact(got)
		}
		got = append(got, p)
	}
}

// expect checks that the changes since the previous call notified exactly want.
func (r *fwRun) expect(t *testing.T, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := r.changes(t, what); !slices.Equal(got, want) {
		t.Fatalf("%s: notified %q, want %q", what, got, want)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver writes text to a temporary file next to path and renames it over path, as
// `sed -i` and irqshift's state file do.
func renameOver(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, text)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileWatcherWriteInPlace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "irqbalance")
	writeFile(t, p, "IRQBALANCE_BANNED_CPULIST=\n")
	r := startFileWatcher(t, 0, p)
	r.waitWatch(t, dir, true)
	r.expect(t, "nothing changed yet")
	for i, text := range []string{"IRQBALANCE_BANNED_CPULIST=3\n", "IRQBALANCE_BANNED_CPULIST=2-3\n", ""} {
		writeFile(t, p, text)
		r.expect(t, "write "+strconv.Itoa(i+1), p)
	}
	// Appending (O_APPEND, no truncation) is a write too.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("# more\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "append", p)
	// Reading it is no change.
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "read")
}

func TestFileWatcherRenameOver(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	writeFile(t, p, "{}")
	r := startFileWatcher(t, 0, p)
	r.waitWatch(t, dir, true)
	for i := range 3 {
		renameOver(t, p, `{"pins":{}}`)
		r.expect(t, "rename over "+strconv.Itoa(i+1), p)
	}
	// The temporary file alone is not the watched file.
	writeFile(t, p+".tmp", "{}")
	r.expect(t, "temporary file written")
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "temporary file renamed over", p)
}

func TestFileWatcherCreateAfterStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "crio.conf")
	q := filepath.Join(dir, "other.conf")
	r := startFileWatcher(t, 0, p, q)
	r.waitWatch(t, dir, true)
	writeFile(t, p, "[crio]\n")
	r.expect(t, "create", p)
	renameOver(t, q, "x")
	r.expect(t, "create by rename", q)
	// An empty file created and closed without a write.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	r.expect(t, "remove, create read-only", p)
}

func TestFileWatcherRemoveAndRenameAway(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	writeFile(t, p, "{}")
	r := startFileWatcher(t, 0, p)
	r.waitWatch(t, dir, true)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "remove", p)
	writeFile(t, p, "{}")
	r.expect(t, "create again", p)
	if err := os.Rename(p, filepath.Join(dir, "state.json.old")); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "rename away", p)
	// Changes to the file under its new name are not the watched path's.
	writeFile(t, filepath.Join(dir, "state.json.old"), "{}")
	r.expect(t, "write the renamed file")
	writeFile(t, p, "{}")
	r.expect(t, "create after rename away", p)
}

func TestFileWatcherParentCreatedAfterStart(t *testing.T) {
	root := t.TempDir()
	// Two levels missing, like /etc/sysconfig/irqbalance on a system without /etc/sysconfig.
	dir := filepath.Join(root, "etc", "sysconfig")
	p := filepath.Join(dir, "irqbalance")
	r := startFileWatcher(t, 10*time.Millisecond, p)
	r.waitWatch(t, dir, false)
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Tried again while the directory is still missing: the poll goes on.
	r.waitWatch(t, dir, false)
	r.expect(t, "parent of the directory created")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "IRQBALANCE_BANNED_CPULIST=3\n")
	// Seen by inotify (the watch was set before the write) or as a file that exists when the
	// watch is set: either way it arrives, once the watch is in place.
	r.waitWatch(t, dir, true)
	r.expect(t, "file in a directory created after start", p)
	// From now on through inotify.
	writeFile(t, p, "IRQBALANCE_BANNED_CPULIST=2\n")
	r.expect(t, "write after the watch", p)
	renameOver(t, p, "IRQBALANCE_BANNED_CPULIST=1\n")
	r.expect(t, "rename over after the watch", p)
}

func TestFileWatcherParentCreatedEmpty(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sysconfig")
	p := filepath.Join(dir, "irqbalance")
	r := startFileWatcher(t, 10*time.Millisecond, p)
	r.waitWatch(t, dir, false)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, true)
	r.expect(t, "directory created, no file in it")
	writeFile(t, p, "x")
	r.expect(t, "file created", p)
}

func TestFileWatcherParentRemovedAndRecreated(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "conf.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.conf")
	writeFile(t, p, "1")
	r := startFileWatcher(t, 10*time.Millisecond, p)
	r.waitWatch(t, dir, true)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, false)
	r.expect(t, "remove file and directory", p)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "2")
	r.waitWatch(t, dir, true)
	r.expect(t, "file in the re-created directory", p)
	writeFile(t, p, "3")
	r.expect(t, "write in the re-created directory", p)
}

func TestFileWatcherParentRenamedAway(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "conf.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.conf")
	writeFile(t, p, "1")
	r := startFileWatcher(t, 10*time.Millisecond, p)
	r.waitWatch(t, dir, true)
	moved := filepath.Join(root, "conf.d.old")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, false)
	r.expect(t, "directory renamed away", p)
	// The watch does not follow the old directory to its new name.
	writeFile(t, filepath.Join(moved, "a.conf"), "old")
	r.expect(t, "write in the renamed directory")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, true)
	r.expect(t, "new empty directory")
	writeFile(t, filepath.Join(moved, "a.conf"), "old again")
	writeFile(t, p, "new")
	r.expect(t, "file in the new directory", p)
}

func TestFileWatcherTwoFilesSameDirectory(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.conf")
	b := filepath.Join(dir, "b.conf")
	writeFile(t, a, "a")
	r := startFileWatcher(t, 0, a, b)
	r.waitWatch(t, dir, true)
	writeFile(t, a, "a2")
	r.expect(t, "write a", a)
	writeFile(t, b, "b")
	r.expect(t, "create b", b)
	renameOver(t, a, "a3")
	r.expect(t, "rename over a", a)
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "remove b", b)
	writeFile(t, a, "a4")
	writeFile(t, b, "b2")
	r.expect(t, "both", a, b)
	// b renamed to a: b is gone, a replaced.
	if err := os.Rename(b, a); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "rename b over a", a, b)

	// Other files in the directory send nothing.
	writeFile(t, filepath.Join(dir, "c.conf"), "c")
	renameOver(t, filepath.Join(dir, "a.conf.bak"), "x")
	if err := os.Remove(filepath.Join(dir, "c.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "a.conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "unrelated files")
}

func TestFileWatcherDirectoriesAndDuplicates(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	a := filepath.Join(d1, "a")
	b := filepath.Join(d2, "b")
	r := startFileWatcher(t, 0, a, b, a)
	r.waitWatch(t, d1, true)
	r.waitWatch(t, d2, true)
	writeFile(t, b, "b")
	r.expect(t, "b in the second directory", b)
	writeFile(t, a, "a")
	r.expect(t, "a in the first directory (listed twice)", a)
}

func TestFileWatcherCoalesces(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	b := filepath.Join(dir, "b")
	r := startFileWatcher(t, 0, a, b)
	r.waitWatch(t, dir, true)
	// Nobody receives while a changes many times: Run keeps it pending once, and b, changed
	// last, still arrives (the last change of a burst is never dropped).
	const writes = 50
	for i := range writes {
		writeFile(t, a, strconv.Itoa(i))
	}
	writeFile(t, b, "last")
	before := r.expectThrough(t, "burst", b, a)
	if len(before) == 0 {
		t.Fatalf("no notification for %s before %s", a, b)
	}
	t.Logf("%d writes of a: %d notification(s) of a before b's", writes, len(before))
	r.changes(t, "drain the burst")
	// After that, a change is reported again.
	writeFile(t, a, "after")
	r.expect(t, "write after the burst", a)
}

func TestFileWatcherCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	changed := make(chan string) // never received from
	w := &Watcher{Paths: []string{p, filepath.Join(dir, "missing", "x")}, PollInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, changed) }()
	// Changes wait to be sent (nobody receives); cancel must still end Run.
	for range 3 {
		writeFile(t, p, "{}")
		time.Sleep(10 * time.Millisecond) // lets Run see some of them; not a timing assertion
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(fwHang):
		t.Fatalf("Run did not return within %v of cancel with a send pending", fwHang)
	}
	// Its reader goroutine has ended too (not left blocked in read).
	for end := time.Now().Add(fwHang); runtime.NumGoroutine() > before; {
		if time.Now().After(end) {
			t.Fatalf("%d goroutines after Run returned, %d before it started", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Cancelled before it starts: returns nil.
	if err := w.Run(ctx, changed); err != nil {
		t.Fatalf("Run with a done ctx = %v, want nil", err)
	}
	// No paths: waits for ctx.
	if err := (&Watcher{}).Run(ctx, changed); err != nil {
		t.Fatalf("Run without paths = %v, want nil", err)
	}
}

func TestFileWatcherBadPaths(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, p := range []string{"", "/", ".", "a/.."} {
		w := &Watcher{Paths: []string{"/tmp/x", p}}
		if err := w.Run(ctx, make(chan string)); err == nil {
			t.Errorf("Paths %q: Run = nil, want an error", p)
		}
	}
}

func TestFileWatcherRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := startFileWatcher(t, 0, "state.json")
	r.waitWatch(t, ".", true)
	writeFile(t, filepath.Join(dir, "state.json"), "{}")
	r.expect(t, "relative path", "state.json")
}

// Changing a file's attributes (touch, chmod) is no change of its content.
func TestFileWatcherAttributesOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "irqbalance")
	writeFile(t, p, "IRQBALANCE_BANNED_CPULIST=3\n")
	r := startFileWatcher(t, 0, p)
	r.waitWatch(t, dir, true)
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "chmod and touch")
}

// A file written in place is reported once it is closed, not at its truncation nor at each
// write(2): CRI-O rewrites /etc/sysconfig/irqbalance with os.WriteFile, and a notification at
// the truncation would have the daemon read it empty, which bans nothing. This is why the
// package uses inotify directly: fsnotify cannot ask for IN_CLOSE_WRITE (see the package doc).
func TestFileWatcherReportsAtClose(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "irqbalance")
	writeFile(t, p, "IRQBALANCE_BANNED_CPULIST=3\n")
	r := startFileWatcher(t, 0, p)
	r.waitWatch(t, dir, true)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0) // as os.WriteFile
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.expect(t, "truncated, still open")
	if _, err := f.WriteString("IRQBALANCE_BANNED_CPULIST="); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "first write, still open")
	if _, err := f.WriteString("2-3\n"); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "last write, still open")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "closed", p)
}

// A parent that is a file is not watched (an inotify watch on it would follow the file); it is
// tried again until it is a directory.
func TestFileWatcherParentIsAFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sysconfig")
	p := filepath.Join(dir, "irqbalance")
	writeFile(t, dir, "not a directory")
	r := startFileWatcher(t, 10*time.Millisecond, p)
	r.waitWatch(t, dir, false)
	writeFile(t, dir, "still not a directory")
	r.waitWatch(t, dir, false)
	r.expect(t, "the file that is in the way written")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, true)
	r.expect(t, "directory in its place")
	writeFile(t, p, "x")
	r.expect(t, "file created", p)
}

// Two paths to the same directory, one through a symlink: the kernel has one watch for the
// directory, and each path still gets its files' notifications.
func TestFileWatcherSymlinkedDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "real")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a")
	b := filepath.Join(link, "b")
	for _, order := range [][]string{{a, b}, {b, a}} {
		r := startFileWatcher(t, 10*time.Millisecond, order...)
		r.waitWatch(t, filepath.Dir(order[1]), true)
		writeFile(t, filepath.Join(dir, "b"), "b")
		r.expect(t, "b through the real directory", b)
		writeFile(t, filepath.Join(link, "a"), "a")
		r.expect(t, "a through the symlink", a)
		renameOver(t, b, "b2")
		r.expect(t, "rename over b", b)
		r.cancel()
	}
	// The directory removed: both paths are reported, and followed again once it is back.
	r := startFileWatcher(t, 10*time.Millisecond, a, b)
	r.waitWatch(t, link, true)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, link, false)
	r.expect(t, "directory removed", a, b)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, link, true)
	r.expect(t, "directory back, empty")
	writeFile(t, b, "b3")
	r.expect(t, "b in the new directory", b)
	writeFile(t, a, "a3")
	r.expect(t, "a in the new directory", a)
}

// inotifyBytes encodes events as the kernel's read(2) returns them (names NUL-padded to 16).
func inotifyBytes(evs ...inotifyEvent) []byte {
	var b []byte
	for _, ev := range evs {
		n := 0
		if ev.name != "" {
			n = (len(ev.name) + 1 + 15) / 16 * 16
		}
		h := make([]byte, unix.SizeofInotifyEvent)
		binary.NativeEndian.PutUint32(h[0:], uint32(ev.wd))
		binary.NativeEndian.PutUint32(h[4:], ev.mask)
		binary.NativeEndian.PutUint32(h[12:], uint32(n))
		name := make([]byte, n)
		copy(name, ev.name)
		b = append(append(b, h...), name...)
	}
	return b
}

func TestParseInotify(t *testing.T) {
	want := []inotifyEvent{
		{wd: 1, mask: unix.IN_CLOSE_WRITE, name: "state.json"},
		{wd: -1, mask: unix.IN_Q_OVERFLOW},
		{wd: 2, mask: unix.IN_MOVED_TO, name: "a-name-of-exactly-32-bytes-12345"},
		{wd: 2, mask: unix.IN_IGNORED},
	}
	got, err := parseInotify(inotifyBytes(want...))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseInotify = %+v, %v, want %+v", got, err, want)
	}
	b := inotifyBytes(want[0])
	for _, cut := range []int{1, unix.SizeofInotifyEvent - 1, unix.SizeofInotifyEvent + 3} {
		if _, err := parseInotify(b[:cut]); err == nil {
			t.Errorf("parseInotify of %d bytes: no error", cut)
		}
	}
}

// An IN_Q_OVERFLOW (the kernel dropped events) queues every path, in every directory.
func TestFileWatcherOverflowSendsEveryPath(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	paths := []string{filepath.Join(d1, "a"), filepath.Join(d1, "b"), filepath.Join(d2, "c"), filepath.Join(t.TempDir(), "missing", "d")}
	dirs, err := groupPaths(paths)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	s := &fileWatch{fd: fd, log: slog.New(slog.DiscardHandler), dirs: dirs, byWD: map[int][]*watchedDir{}}
	for _, d := range dirs {
		s.watch(d, false)
	}
	if s.pending.len() != 0 {
		t.Fatalf("pending %v before any event", s.pending.order)
	}
	s.handle([]inotifyEvent{{wd: -1, mask: unix.IN_Q_OVERFLOW}})
	if !slices.Equal(s.pending.order, paths) {
		t.Fatalf("after IN_Q_OVERFLOW pending %v, want %v", s.pending.order, paths)
	}
	// The watched directories are still watched, under the same descriptors.
	for _, d := range dirs[:2] {
		if d.wd < 0 || !slices.Contains(s.byWD[d.wd], d) {
			t.Errorf("%s not watched after the overflow (wd %d)", d.dir, d.wd)
		}
	}
	// An event for a file of Paths queues it; one for another name does not.
	s.pending = pendingPaths{}
	s.handle([]inotifyEvent{{wd: int32(dirs[0].wd), mask: unix.IN_CREATE, name: "zzz"}, {wd: int32(dirs[0].wd), mask: unix.IN_MOVED_FROM, name: "b"}})
	if !slices.Equal(s.pending.order, []string{paths[1]}) {
		t.Fatalf("pending %v, want [%s]", s.pending.order, paths[1])
	}
}

// TestFileWatcherAnyFile: "dir/*" reports a change to any entry of dir (a rules directory):
// a file written, renamed over, created and removed; and the directory's creation after start,
// once watched, since what is in it then is news.
func TestFileWatcherAnyFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "rules.d")
	every := filepath.Join(dir, AnyFile)
	r := startFileWatcher(t, 10*time.Millisecond, every)
	r.waitWatch(t, dir, false)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitWatch(t, dir, true)
	r.expect(t, "directory created", every)
	writeFile(t, filepath.Join(dir, "10-nic.toml"), "[[rule]]\n")
	r.expect(t, "a file written", every)
	renameOver(t, filepath.Join(dir, "20-rng.toml"), "[[rule]]\n")
	r.expect(t, "a file renamed over", every)
	if err := os.Remove(filepath.Join(dir, "10-nic.toml")); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "a file removed", every)
	// Another directory's files are not this path's.
	writeFile(t, filepath.Join(root, "other.toml"), "x")
	r.expect(t, "a file beside the directory")
}
