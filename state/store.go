package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/internal/regfile"
	"github.com/irqshift/irqshift/internal/replacefile"
	"github.com/irqshift/irqshift/sysfs"
)

// maxStateSize bounds the state file read: Prune keeps a real one far
// below it (a few hundred bytes per IRQ).
const maxStateSize = 64 << 20

// claimTries bounds how long ClaimDaemon waits for a holder of the daemon
// file that names no live process: a DaemonRunning probe (which holds it
// for a few microseconds), or a daemon between its flock and its PID write.
const claimTries = 100

// Store is the state file at one path, with the files beside it:
//
//	<path>         the state (JSON), replaced atomically by Save
//	<path>.lock    flock(2) held by Lock around a Load–modify–Save
//	<path>.daemon  flock(2) held by the running daemon, with its PID
//	<path>.bad     the last unreadable state file, kept by Load
//
// None of them is ever opened unless it is a regular file (or, for the
// state itself, a symbolic link to one): not a device such as /dev/null,
// not a FIFO, a directory or a socket. A Store is safe for concurrent use;
// Lock excludes other Stores on the same path in this process and in
// others.
type Store struct {
	// path is the state file as the operator spelled it, for messages;
	// real is the file itself: symbolic links at its end resolved, so
	// that every spelling of one state shares one lock and one daemon
	// claim.
	path, real string

	mu sync.Mutex
	// seen is the state file as the last Load or Save left it.
	seen fileID
	// refuse is set when the last Load found a file written by a newer
	// irqshift or one that is not irqshift's; Save refuses while it is.
	refuse error
	// unusable is set when the last Load found an unusable file of
	// irqshift's and left it in place: Save keeps it aside first.
	unusable bool
}

// fileID tells whether a file was replaced or modified.
type fileID struct {
	valid    bool // a Load or Save recorded it
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{valid: true, exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// OpenStore returns the Store at path. It opens nothing. It resolves the
// symbolic links at the end of path, so that the lock and the daemon claim
// follow the file and not the spelling of its path: a link to the state
// and the state itself are one owner. It refuses, with an error wrapping
// ErrStatePath:
//
//   - a path that exists and is not a regular file (a link to /dev/null
//     too), and likewise a lock or daemon file beside it that is not one
//     (those are never followed);
//   - a symbolic link to a file that does not exist: irqshift never
//     creates a file, or its directories, at the far end of a link;
//   - a file with more than one name (hard links): Save replaces the file,
//     which would split its names into two states with two locks.
func OpenStore(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("state: empty path")
	}
	if err := checkRegular(path, true); err != nil {
		return nil, err
	}
	real, err := resolveLinks(path)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if real != path {
		if _, err := os.Lstat(real); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is a symbolic link to %s, which does not exist: irqshift creates no file at the end of a link, %w", path, real, ErrStatePath)
		}
	}
	if err := checkRegular(real, false); err != nil {
		return nil, err
	}
	if err := checkOneName(real); err != nil {
		return nil, err
	}
	st := &Store{path: path, real: real}
	// A file that is not irqshift's is refused before anything is created
	// beside it (the lock, the daemon claim).
	if head, err := readHead(real); err == nil && !looksOurs(head) {
		return nil, st.notOurs(head)
	}
	for _, aux := range []string{st.lockPath(), st.daemonPath(), st.statusPath()} {
		if err := checkRegular(aux, false); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// checkOneName refuses a state file with more than one hard link.
func checkOneName(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // missing: Load and Save look again
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("%s has %d names (hard links): irqshift replaces its state file on every save, which would split them, %w", path, st.Nlink, ErrStatePath)
	}
	return nil
}

// Path returns the state file's path as given to OpenStore.
func (st *Store) Path() string { return st.path }

// RealPath returns the state file itself: Path with the symbolic links at
// its end resolved. The lock and daemon files are beside it, and it is
// what a watch of the state must follow.
func (st *Store) RealPath() string { return st.real }

func (st *Store) lockPath() string   { return st.real + ".lock" }
func (st *Store) daemonPath() string { return st.real + ".daemon" }

// Lock takes the exclusive lock on the state file (flock(2) on
// <path>.lock, created 0600 and its directory 0755 if missing), waiting
// for its holder to release it. It returns an error wrapping ctx.Err()
// soon after ctx is done. unlock releases the lock; calling it again does
// nothing.
func (st *Store) Lock(ctx context.Context) (unlock func(), err error) {
	name := st.lockPath()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting for the state lock %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	fd, err := openAux(name, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		return nil, err
	}
	delay := time.Millisecond
	for {
		err := flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "flock", Path: name, Err: err}
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			unix.Close(fd)
			return nil, fmt.Errorf("waiting for the state lock %s: %w", name, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, 8*time.Millisecond)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = unix.Flock(fd, unix.LOCK_UN)
			unix.Close(fd)
		})
	}, nil
}

// Load reads the state file and changes nothing, whatever it finds.
//
//   - Missing: an empty state (NewSaved) and no error.
//   - Not irqshift's (it does not begin as every state file irqshift
//     writes does, with {"version": N): an empty state and an error
//     wrapping ErrNotOurs. The file is left exactly as it is, and Save
//     refuses to replace it: it may be anything (a config file given by
//     mistake, another program's file behind a link).
//   - Irqshift's but unusable (torn, invalid values, over 64 MiB): an empty
//     state and an error wrapping ErrBadState. LoadForUpdate keeps such a
//     file aside; Load leaves it.
//   - Written by a newer irqshift (a higher version, a field or a drain
//     source this one does not know): the state as far as understood and
//     an error wrapping ErrNewerState; Save then refuses until a Load reads
//     a file this irqshift understands (or finds none).
//   - Not a regular file: an empty state and an error wrapping
//     ErrStatePath, without opening it.
func (st *Store) Load() (Saved, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.loadLocked(false)
}

// LoadForUpdate is Load for a writer that holds the lock: an unusable
// file of irqshift's is renamed to <file>.bad (or .bad.1, .bad.2, …: never
// over an earlier one), so nothing is lost and Save may write a new one.
// The error then names the file it was kept as.
func (st *Store) LoadForUpdate() (Saved, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.loadLocked(true)
}

func (st *Store) loadLocked(setAside bool) (Saved, error) {
	s, id, err := st.read(setAside)
	st.seen = id
	st.refuse = nil
	if errors.Is(err, ErrNewerState) || errors.Is(err, ErrNotOurs) {
		st.refuse = err
	}
	st.unusable = errors.Is(err, ErrBadState) && !setAside
	return s, err
}

// read reads and decodes the state file; id is what was read (invalid when
// nothing could be). setAside keeps an unusable file of irqshift's aside.
func (st *Store) read(setAside bool) (s Saved, id fileID, err error) {
	fi, err := os.Stat(st.real)
	if errors.Is(err, fs.ErrNotExist) {
		return NewSaved(), fileID{valid: true}, nil
	}
	if err != nil {
		return NewSaved(), fileID{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if !fi.Mode().IsRegular() {
		return NewSaved(), fileID{}, notRegular(st.real, fi.Mode(), true)
	}
	// O_NONBLOCK: a FIFO swapped in since the Stat opens at once instead of
	// waiting for a writer, and fstat then refuses it.
	f, err := os.OpenFile(st.real, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return NewSaved(), fileID{valid: true}, nil
	}
	if err != nil {
		return NewSaved(), fileID{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return NewSaved(), fileID{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if !fi.Mode().IsRegular() {
		return NewSaved(), fileID{}, notRegular(st.real, fi.Mode(), true)
	}
	id = idOf(fi)
	// The head is read first: a file that is not irqshift's is refused
	// before its size or content is judged.
	head := make([]byte, ownHeadSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return NewSaved(), fileID{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if !looksOurs(head[:n]) {
		return NewSaved(), id, st.notOurs(head[:n])
	}
	var cause error
	if fi.Size() > maxStateSize {
		cause = fmt.Errorf("larger than %d MiB", maxStateSize>>20)
	} else {
		rest, err := io.ReadAll(io.LimitReader(f, maxStateSize+1-int64(n)))
		data := append(head[:n], rest...)
		switch {
		case err != nil:
			// An I/O error says nothing about the content: keep it in place.
			return NewSaved(), fileID{}, fmt.Errorf("%w: %w", ErrBadState, err)
		case len(data) > maxStateSize:
			cause = fmt.Errorf("larger than %d MiB", maxStateSize>>20)
		default:
			s, cause = decodeState(data)
		}
	}
	switch {
	case cause == nil:
		return s, id, nil
	case errors.Is(cause, ErrNewerState):
		return s, id, fmt.Errorf("%s: %w", st.path, cause)
	case !setAside:
		return NewSaved(), id, fmt.Errorf("%w %s: %v; a writing command will keep it aside as %s.bad", ErrBadState, st.path, cause, st.real)
	}
	kept, kerr := keepAside(st.real, fi)
	if kerr != nil {
		return NewSaved(), id, fmt.Errorf("%w %s: %v (could not keep it aside: %v)", ErrBadState, st.path, cause, kerr)
	}
	return NewSaved(), fileID{valid: true}, fmt.Errorf("%w %s: %v; kept it as %s", ErrBadState, st.path, cause, kept)
}

// ownHeadSize is how much of a file looksOurs needs: room for the
// whitespace json.MarshalIndent or a hand edit puts before the version.
const ownHeadSize = 256

// looksOurs reports whether a file begins as every state file irqshift
// writes does: a JSON object whose first key is "version" with a number.
// Only such a file may ever be set aside; anything else is not irqshift's
// to touch.
func looksOurs(head []byte) bool {
	rest := bytes.TrimLeft(head, " \t\r\n")
	for _, want := range []string{"{", `"version"`, ":"} {
		if !bytes.HasPrefix(rest, []byte(want)) {
			return false
		}
		rest = bytes.TrimLeft(rest[len(want):], " \t\r\n")
	}
	return len(rest) > 0 && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == '-')
}

// readHead reads the first bytes of a regular file without blocking.
func readHead(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	head := make([]byte, ownHeadSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return head[:n], nil
}

// notOurs is the error for a state path that holds a file irqshift did not
// write.
func (st *Store) notOurs(head []byte) error {
	what := "is empty"
	if len(head) > 0 {
		line, _, _ := bytes.Cut(head, []byte("\n"))
		what = "begins with " + quote.Quote(string(line))
	}
	name := st.path
	if st.real != st.path {
		name += " (" + st.real + ")"
	}
	return fmt.Errorf("%s %s, %w: irqshift leaves it exactly as it is", name, what, ErrNotOurs)
}

// decodeState decodes a state file. An error wrapping ErrNewerState comes
// with the state as far as understood; any other error means unusable.
func decodeState(data []byte) (Saved, error) {
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return NewSaved(), err
	}
	version := 0
	if len(head.Version) > 0 {
		if err := json.Unmarshal(head.Version, &version); err != nil {
			return NewSaved(), fmt.Errorf("version: %w", err)
		}
	}
	var s Saved
	lenient := json.Unmarshal(data, &s)
	s.normalize()
	if version > FormatVersion {
		// Whatever did not decode is the newer format's business.
		s.Version = version
		return s, fmt.Errorf("version %d (this irqshift knows up to %d): %w", version, FormatVersion, ErrNewerState)
	}
	if lenient != nil {
		return NewSaved(), lenient
	}
	if version < 1 {
		return NewSaved(), fmt.Errorf("version %d, this irqshift reads 1 to %d", version, FormatVersion)
	}
	for cpu := range s.Drained {
		if cpu < 0 || cpu >= sysfs.MaxCPUs {
			return NewSaved(), fmt.Errorf("drained CPU %d out of range", cpu)
		}
	}
	// The lenient decoding worked, so the strict one fails only on a field
	// this irqshift does not know: a newer one added it.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var strict Saved
	if err := dec.Decode(&strict); err != nil {
		return s, fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "json: "), ErrNewerState)
	}
	for cpu, src := range s.Drained {
		if !src.known() {
			return s, fmt.Errorf("drained CPU %d: unknown source %q: %w", cpu, src, ErrNewerState)
		}
	}
	return s, nil
}

// keepAside renames the unusable state file to <file>.bad, or .bad.1,
// .bad.2, … when that exists: a file kept aside earlier is never replaced.
// It does so only if the file is still the one read (fi).
func keepAside(path string, fi fs.FileInfo) (string, error) {
	cur, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if !os.SameFile(cur, fi) {
		return "", errors.New("it was replaced while being read")
	}
	for i := range maxKeptAside {
		bad := path + ".bad"
		if i > 0 {
			bad += "." + strconv.Itoa(i)
		}
		err := renameNoReplace(path, bad)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		replacefile.SyncDir(filepath.Dir(path))
		return bad, nil
	}
	return "", fmt.Errorf("%s.bad to .bad.%d all exist: remove the ones you do not need", path, maxKeptAside-1)
}

// maxKeptAside bounds the unusable files kept beside the state.
const maxKeptAside = 100

// renameNoReplace renames old to new unless new exists (fs.ErrExist). A
// file system without RENAME_NOREPLACE gets a hard link and an unlink,
// which fail the same way on an existing name.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	switch err {
	case nil:
		return nil
	case unix.EEXIST:
		return &fs.PathError{Op: "rename", Path: new, Err: fs.ErrExist}
	case unix.EINVAL, unix.ENOSYS:
		if err := os.Link(old, new); err != nil {
			return err
		}
		return os.Remove(old)
	}
	return &fs.PathError{Op: "rename", Path: old, Err: err}
}

// Save writes the state atomically: a temporary file in the same
// directory, fsync, rename over the old one, fsync of the directory. A
// crash leaves either the old file or the new one, never a torn one. The
// file replaced is the real one (RealPath): a link to it stays a link.
//
// It refuses, with an error wrapping ErrNewerState, while the last Load
// found a file written by a newer irqshift, and with one wrapping
// ErrNotOurs while the last Load found a file that is not irqshift's; it
// checks any file it has not seen (changed since this Store's last Load or
// Save) the same way before replacing it, and keeps an unusable file of
// irqshift's aside first (LoadForUpdate). It refuses, with an error
// wrapping ErrStatePath, a path that is not a regular file, and never
// writes through one.
func (st *Store) Save(s Saved) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refuse != nil {
		return fmt.Errorf("not saving the state: %w", st.refuse)
	}
	if err := checkRegular(st.real, false); err != nil {
		return err
	}
	if st.unusable || st.changedLocked() {
		_, err := st.loadLocked(true)
		if errors.Is(err, ErrNewerState) || errors.Is(err, ErrStatePath) || errors.Is(err, ErrNotOurs) {
			return fmt.Errorf("not saving the state: %w", err)
		}
		// An unusable file was kept aside: replace it.
	}
	s.Version = FormatVersion
	s.normalize()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	fi, err := writeReplacing(st.real, append(data, '\n'))
	if err != nil {
		return err
	}
	st.seen = idOf(fi)
	return nil
}

// writeReplacing replaces target with data (internal/replacefile),
// never what is not a regular file: that is checked again just before the
// rename. It returns the new file's information.
func writeReplacing(target string, data []byte) (fs.FileInfo, error) {
	fi, err := replacefile.Write(target, data, func(tmp string) error {
		// The last look before the rename: never replace what became a
		// device, a FIFO, a directory or a link.
		if err := checkRegular(target, false); err != nil {
			return err
		}
		return os.Rename(tmp, target)
	})
	if err != nil && !errors.Is(err, ErrStatePath) {
		return nil, fmt.Errorf("state: %w", err)
	}
	return fi, err
}

// Changed reports whether the state file was replaced, modified, created
// or removed since this Store's last Load or Save (by device, inode, size
// and modification time; one stat(2)). It is true before the first Load or
// Save.
func (st *Store) Changed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.changedLocked()
}

func (st *Store) changedLocked() bool {
	if !st.seen.valid {
		return true
	}
	fi, err := os.Stat(st.real)
	if errors.Is(err, fs.ErrNotExist) {
		return st.seen.exists
	}
	if err != nil {
		return true
	}
	return idOf(fi) != st.seen
}

// DaemonRunningError is the error of ClaimDaemon when another daemon holds
// the claim. It wraps ErrDaemonRunning.
type DaemonRunningError struct {
	// Path is the state file's path.
	Path string
	// PID is the holder's process ID, 0 if unknown.
	PID int
}

func (e *DaemonRunningError) Error() string {
	pid := "PID unknown"
	if e.PID > 0 {
		pid = "PID " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("irqshift watch is already running on %s (%s)", e.Path, pid)
}

// Unwrap returns ErrDaemonRunning.
func (e *DaemonRunningError) Unwrap() error { return ErrDaemonRunning }

// ClaimDaemon takes the daemon's claim on the state file: an exclusive
// flock(2) on <path>.daemon, which then holds this process's PID, for as
// long as the daemon runs (the kernel drops it if the process dies). When
// another process or Store holds it, it returns a *DaemonRunningError
// (wrapping ErrDaemonRunning) naming its PID. release empties the file and
// drops the claim; calling it again does nothing.
func (st *Store) ClaimDaemon() (release func(), err error) {
	name := st.daemonPath()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	fd, err := openAux(name, unix.O_RDWR|unix.O_CREAT, 0o644)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		err := flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "flock", Path: name, Err: err}
		}
		// A live PID is a daemon. Otherwise it may be a DaemonRunning probe,
		// or a daemon about to write its PID: look again shortly.
		pid := readPID(fd)
		if (pid > 0 && processAlive(pid)) || try >= claimTries {
			unix.Close(fd)
			return nil, &DaemonRunningError{Path: st.path, PID: pid}
		}
		time.Sleep(2 * time.Millisecond)
	}
	content := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := unix.Ftruncate(fd, 0); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "truncate", Path: name, Err: err}
	}
	if _, err := unix.Pwrite(fd, content, 0); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "write", Path: name, Err: err}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// The file stays: removing it would let a daemon starting now
			// lock a file that another one then replaces.
			_ = unix.Ftruncate(fd, 0)
			_ = unix.Flock(fd, unix.LOCK_UN)
			unix.Close(fd)
		})
	}, nil
}

// DaemonRunning reports whether a daemon holds the claim on the state file,
// and its PID (0 if it has not written it yet), without taking the claim.
func (st *Store) DaemonRunning() (pid int, running bool) {
	fd, err := openAux(st.daemonPath(), unix.O_RDONLY, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	switch err := flock(fd, unix.LOCK_SH|unix.LOCK_NB); err {
	case nil:
		_ = unix.Flock(fd, unix.LOCK_UN)
		return 0, false
	case unix.EWOULDBLOCK:
	default:
		return 0, false
	}
	for range 10 {
		if pid = readPID(fd); pid > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return pid, true
}

// readPID reads the PID in the daemon file; 0 if there is none.
func readPID(fd int) int {
	var buf [32]byte
	n, err := unix.Pread(fd, buf[:], 0)
	if err != nil || n <= 0 {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// openAux opens the lock or daemon file: refused unless a regular file,
// before opening it (never a device or FIFO) and after (fstat, against a
// swap in between). Symbolic links are not followed.
func openAux(name string, flags int, perm uint32) (int, error) {
	if err := checkRegular(name, false); err != nil {
		return -1, err
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ELOOP {
		return -1, fmt.Errorf("%s is a symbolic link, %w", name, ErrStatePath)
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var stat unix.Stat_t
	if err := unix.Fstat(fd, &stat); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if stat.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is %s, %w", name, statKind(stat.Mode), ErrStatePath)
	}
	return fd, nil
}

func flock(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); err != unix.EINTR {
			return err
		}
	}
}

// checkRegular refuses, with an error wrapping ErrStatePath, a path that
// exists and is not a regular file. follow says whether a symbolic link to
// a regular file is fine.
func checkRegular(path string, follow bool) error {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if fi.Mode().IsRegular() {
		return nil
	}
	return notRegular(path, fi.Mode(), follow)
}

// notRegular says what path is instead of a regular file.
func notRegular(path string, mode fs.FileMode, followed bool) error {
	kind := regfile.Kind(mode)
	if followed {
		if target, err := os.Readlink(path); err == nil {
			return fmt.Errorf("%s is a symbolic link to %s, %s, %w", path, target, kind, ErrStatePath)
		}
	}
	return fmt.Errorf("%s is %s, %w", path, kind, ErrStatePath)
}

func statKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "an irregular file"
}

// resolveLinks follows symbolic links at the end of path, to a file that
// is not one or does not exist.
func resolveLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink == 0) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", &fs.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
}
