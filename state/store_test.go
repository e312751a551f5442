package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/sysfs"
)

// hangGuard is only a guard against a hang (a FIFO opened for reading
// blocks): the test passes or fails on what f checks.
const hangGuard = 30 * time.Second

func withHangGuard(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s hung", what)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func openStore(t *testing.T, path string) *Store {
	t.Helper()
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func TestStoreRefusesSpecialPaths(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	subdir := filepath.Join(dir, "dir")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	devnullLink := filepath.Join(dir, "devnull-link")
	if err := os.Symlink("/dev/null", devnullLink); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, fifo + " is a FIFO, not a regular file"},
		{"/dev/null", "/dev/null is a character device, not a regular file"},
		{subdir, subdir + " is a directory, not a regular file"},
		{devnullLink, devnullLink + " is a symbolic link to /dev/null, a character device, not a regular file"},
		{fifoLink, "a FIFO, not a regular file"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			withHangGuard(t, "OpenStore", func() {
				st, err := OpenStore(tc.path)
				if !errors.Is(err, ErrStatePath) || st != nil {
					t.Errorf("OpenStore(%s) = %v, %v; want an error wrapping ErrStatePath", tc.path, st, err)
					return
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
				if _, err := loadState(tc.path); !errors.Is(err, ErrStatePath) {
					t.Errorf("loadState: %v, want ErrStatePath", err)
				}
			})
		})
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is no longer one: %v, %v", fi, err)
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("/dev/null is no longer a device: %v, %v", fi, err)
	}
}

func TestStoreRefusesSpecialAuxFiles(t *testing.T) {
	for _, suffix := range []string{".lock", ".daemon"} {
		t.Run(suffix, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			mkfifo(t, path+suffix)
			withHangGuard(t, "OpenStore", func() {
				_, err := OpenStore(path)
				if !errors.Is(err, ErrStatePath) || !strings.Contains(err.Error(), path+suffix+" is a FIFO") {
					t.Errorf("OpenStore with a FIFO as %s file: %v", suffix, err)
				}
			})
			// A symbolic link, even to a regular file, is not followed.
			if err := os.Remove(path + suffix); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "elsewhere"), "")
			if err := os.Symlink(filepath.Join(dir, "elsewhere"), path+suffix); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenStore(path); !errors.Is(err, ErrStatePath) {
				t.Errorf("OpenStore with a symbolic link as %s file: %v", suffix, err)
			}
		})
	}
}

// A special file swapped in after OpenStore is refused by Load, Save, Lock
// and ClaimDaemon, and left as it is.
func TestStoreSpecialFileSwappedIn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	st := openStore(t, path)
	mkfifo(t, path)
	mkfifo(t, path+".lock")
	mkfifo(t, path+".daemon")
	withHangGuard(t, "Load/Save/Lock/ClaimDaemon on FIFOs", func() {
		if _, err := st.Load(); !errors.Is(err, ErrStatePath) {
			t.Errorf("Load: %v, want ErrStatePath", err)
		}
		if err := st.Save(NewSaved()); !errors.Is(err, ErrStatePath) {
			t.Errorf("Save: %v, want ErrStatePath", err)
		}
		if _, err := st.Lock(context.Background()); !errors.Is(err, ErrStatePath) {
			t.Errorf("Lock: %v, want ErrStatePath", err)
		}
		if _, err := st.ClaimDaemon(); !errors.Is(err, ErrStatePath) {
			t.Errorf("ClaimDaemon: %v, want ErrStatePath", err)
		}
		if _, running := st.DaemonRunning(); running {
			t.Errorf("DaemonRunning with a FIFO as daemon file: true")
		}
	})
	for _, p := range []string{path, path + ".lock", path + ".daemon"} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("%s is no longer a FIFO: %v, %v", p, fi, err)
		}
	}

	// A directory swapped in.
	path2 := filepath.Join(dir, "state2.json")
	st2 := openStore(t, path2)
	if err := os.Mkdir(path2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st2.Save(NewSaved()); !errors.Is(err, ErrStatePath) {
		t.Errorf("Save over a directory: %v, want ErrStatePath", err)
	}
	if fi, err := os.Lstat(path2); err != nil || !fi.IsDir() {
		t.Errorf("the directory was replaced: %v, %v", fi, err)
	}
}

func TestStoreSymlinkToRegularFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "persist", "state.json")
	link := filepath.Join(dir, "state.json")
	if err := openStore(t, target).Save(NewSaved()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, link)
	if st.RealPath() != target {
		t.Errorf("RealPath() = %s, want %s", st.RealPath(), target)
	}
	s := NewSaved()
	s.Pins["21/GICv3/uart"] = Pin{IRQ: 21, CPUs: sysfs.NewCPUSet(2)}
	if err := st.Save(s); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", fi, err)
	}
	back, err := openStore(t, link).Load()
	if err != nil || back.Pins["21/GICv3/uart"].IRQ != 21 {
		t.Errorf("Load through the link: %+v, %v", back, err)
	}
	if back, err := openStore(t, target).Load(); err != nil || back.Pins["21/GICv3/uart"].IRQ != 21 {
		t.Errorf("target not written: %+v, %v", back, err)
	}
}

// TestStoreDanglingLink: a link to a file that does not exist is refused,
// and nothing is created at its far end, not even a directory.
func TestStoreDanglingLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "persist", "state.json")
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(link)
	if !errors.Is(err, ErrStatePath) || st != nil {
		t.Fatalf("OpenStore of a dangling link = %v, %v; want ErrStatePath", st, err)
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q does not say the target does not exist", err)
	}
	if _, err := os.Lstat(filepath.Dir(target)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the target's directory was created: %v", err)
	}
}

// TestStoreHardLinks: a state file with a second name is refused, since a
// save would split the names into two states with two locks.
func TestStoreHardLinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := openStore(t, path).Save(NewSaved()); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, filepath.Join(dir, "alias.json")); err != nil {
		t.Skipf("link: %v", err)
	}
	if _, err := OpenStore(path); !errors.Is(err, ErrStatePath) || !strings.Contains(err.Error(), "hard links") {
		t.Errorf("OpenStore of a file with two names: %v, want ErrStatePath naming hard links", err)
	}
}

// TestStoreLockFollowsTheFile: every spelling of one state (the file, a
// link to it, a path through a linked directory) shares one lock and one
// daemon claim.
func TestStoreLockFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "real", "state.json")
	if err := openStore(t, path).Save(NewSaved()); err != nil {
		t.Fatal(err)
	}
	fileLink := filepath.Join(dir, "alias.json")
	if err := os.Symlink(path, fileLink); err != nil {
		t.Fatal(err)
	}
	relLink := filepath.Join(dir, "real", "rel.json")
	if err := os.Symlink("state.json", relLink); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(dir, "linked")
	if err := os.Symlink(filepath.Join(dir, "real"), dirLink); err != nil {
		t.Fatal(err)
	}
	owner := openStore(t, path)
	unlock, err := owner.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release, err := owner.ClaimDaemon()
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{fileLink, relLink, filepath.Join(dirLink, "state.json"), filepath.Join(dirLink, "rel.json")} {
		other := openStore(t, alias)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if u, err := other.Lock(ctx); err == nil {
			u()
			t.Errorf("%s: took the lock another spelling holds", alias)
		}
		cancel()
		if r, err := other.ClaimDaemon(); !errors.Is(err, ErrDaemonRunning) {
			if err == nil {
				r()
			}
			t.Errorf("%s: ClaimDaemon = %v, want ErrDaemonRunning", alias, err)
		}
		if _, running := other.DaemonRunning(); !running {
			t.Errorf("%s: DaemonRunning = false beside a claim through another spelling", alias)
		}
	}
	unlock()
	release()
	u, err := openStore(t, fileLink).Lock(context.Background())
	if err != nil {
		t.Fatalf("the lock is free again, but: %v", err)
	}
	u()
}

func TestStoreNewerState(t *testing.T) {
	for name, content := range map[string]string{
		"version":       `{"version": 2, "pins": {"21/GICv3/uart": {"irq": 21, "cpus": [2]}}, "shiny": {"x": 1}}`,
		"unknown field": `{"version": 1, "pins": {"21/GICv3/uart": {"irq": 21, "cpus": [2]}}, "shiny": true}`,
		"nested field":  `{"version": 1, "pins": {"21/GICv3/uart": {"irq": 21, "cpus": [2], "why": "nvme"}}}`,
		"drain source":  `{"version": 1, "pins": {"21/GICv3/uart": {"irq": 21, "cpus": [2]}}, "drained": {"3": "maintenance"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			writeFile(t, path, content)
			st := openStore(t, path)
			s, err := st.Load()
			if !errors.Is(err, ErrNewerState) || errors.Is(err, ErrBadState) {
				t.Fatalf("Load: %v, want ErrNewerState", err)
			}
			if !strings.Contains(err.Error(), "written by a newer irqshift: refusing to overwrite it") {
				t.Errorf("error %q", err)
			}
			if s.Pins["21/GICv3/uart"].CPUs.String() != "2" || s.Written == nil || s.Managed == nil || s.Drained == nil {
				t.Errorf("state as far as understood = %+v", s)
			}
			if err := st.Save(s); !errors.Is(err, ErrNewerState) {
				t.Errorf("Save after a newer file: %v, want ErrNewerState", err)
			}
			// A Store that never loaded it looks before it writes.
			if err := openStore(t, path).Save(NewSaved()); !errors.Is(err, ErrNewerState) {
				t.Errorf("Save by a fresh Store: %v, want ErrNewerState", err)
			}
			if err := saveState(path, NewSaved()); !errors.Is(err, ErrNewerState) {
				t.Errorf("saveState: %v, want ErrNewerState", err)
			}
			if got := readBytes(t, path); string(got) != content {
				t.Errorf("file changed:\n%s\nwant\n%s", got, content)
			}
			if _, err := os.Stat(path + ".bad"); err == nil {
				t.Errorf("a newer file was kept aside as .bad")
			}
			// Once the operator removes it, saving works again.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(); err != nil {
				t.Fatal(err)
			}
			if err := st.Save(s); err != nil {
				t.Errorf("Save after the newer file is gone: %v", err)
			}
		})
	}
}

// TestStoreBadState: an unusable file of irqshift's (it begins as every
// state file irqshift writes) is left alone by Load, kept aside by
// LoadForUpdate, never over a file kept aside earlier, and rebuilt.
func TestStoreBadState(t *testing.T) {
	for name, content := range map[string]string{
		"torn":        `{"version": 1, "pins": {"21/GICv3/ua`,
		"torn early":  "{\n  \"version\": 1,\n  \"cur",
		"bad cpu set": `{"version": 1, "pins": {"x": {"irq": 1, "cpus": [-4]}}}`,
		"bad drained": `{"version": 1, "drained": {"-3": "drain"}}`,
		"version 0":   `{"version": 0}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			writeFile(t, path, content)
			st := openStore(t, path)
			if _, err := st.Load(); !errors.Is(err, ErrBadState) || errors.Is(err, ErrNewerState) {
				t.Errorf("Load: %v, want ErrBadState", err)
			}
			if got := readBytes(t, path); string(got) != content {
				t.Errorf("Load changed the file to %q", got)
			}
			if _, err := os.Stat(path + ".bad"); err == nil {
				t.Errorf("Load, which only reads, kept the file aside")
			}
			s, err := st.LoadForUpdate()
			if !errors.Is(err, ErrBadState) || errors.Is(err, ErrNewerState) {
				t.Errorf("LoadForUpdate: %v, want ErrBadState", err)
			}
			if s.Pins == nil || len(s.Pins) != 0 || s.Drained == nil || s.Version != FormatVersion {
				t.Errorf("state after a bad file = %+v, want a fresh one", s)
			}
			if got := readBytes(t, path+".bad"); string(got) != content {
				t.Errorf(".bad = %q, want %q", got, content)
			}
			if err == nil || !strings.Contains(err.Error(), path+".bad") {
				t.Errorf("error %q does not name the .bad file", err)
			}
			s.Pins["22/GICv3/rtc"] = Pin{IRQ: 22, CPUs: sysfs.NewCPUSet(1)}
			if err := st.Save(s); err != nil {
				t.Fatalf("Save after a bad file: %v", err)
			}
			back, err := openStore(t, path).Load()
			if err != nil || back.Pins["22/GICv3/rtc"].IRQ != 22 {
				t.Errorf("rebuilt file: %+v, %v", back, err)
			}
		})
	}
}

// TestStoreKeepsEveryBadFile: a second unusable file is kept as .bad.1,
// never over the first one, and a Save after a read-only Load keeps the
// file aside too.
func TestStoreKeepsEveryBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	first, second := `{"version": 1, "pins": {`, `{"version": 1, "drained": {`
	writeFile(t, path, first)
	if _, err := openStore(t, path).LoadForUpdate(); !errors.Is(err, ErrBadState) {
		t.Fatalf("LoadForUpdate: %v", err)
	}
	writeFile(t, path, second)
	st := openStore(t, path)
	if _, err := st.Load(); !errors.Is(err, ErrBadState) {
		t.Fatalf("Load: %v", err)
	}
	if err := st.Save(NewSaved()); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if got := readBytes(t, path+".bad"); string(got) != first {
		t.Errorf(".bad = %q, want the first file %q", got, first)
	}
	if got := readBytes(t, path+".bad.1"); string(got) != second {
		t.Errorf(".bad.1 = %q, want the second file %q", got, second)
	}
	if _, err := openStore(t, path).Load(); err != nil {
		t.Errorf("rebuilt file: %v", err)
	}
}

// TestStoreNotOurs: a file that irqshift did not write (the config file
// given by mistake, another program's JSON, an empty file) is refused by
// every Load and Save, and left exactly as it was: not renamed, not
// replaced, nothing written beside it.
func TestStoreNotOurs(t *testing.T) {
	for name, content := range map[string]string{
		"config file": "IRQSHIFT_BANNED_CPUS=3\n",
		"not json":    "hello",
		"no version":  `{"pins": {}}`,
		"other first": `{"cursor": {}, "version": 1}`,
		"string":      `{"version": "1"}`,
		"array":       `[1, 2]`,
		"empty":       "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			st := openStore(t, path) // before the file: Load and Save look again
			writeFile(t, path, content)
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if other, err := OpenStore(path); !errors.Is(err, ErrNotOurs) || other != nil {
				t.Errorf("OpenStore: %v, want ErrNotOurs", err)
			}
			if _, err := st.Load(); !errors.Is(err, ErrNotOurs) {
				t.Errorf("Load: %v, want ErrNotOurs", err)
			}
			_, err = st.LoadForUpdate()
			if !errors.Is(err, ErrNotOurs) || errors.Is(err, ErrBadState) {
				t.Errorf("LoadForUpdate: %v, want ErrNotOurs", err)
			}
			if err != nil && !strings.Contains(err.Error(), "leaves it exactly as it is") {
				t.Errorf("error %q does not say the file is left alone", err)
			}
			if err := st.Save(NewSaved()); !errors.Is(err, ErrNotOurs) {
				t.Errorf("Save: %v, want ErrNotOurs", err)
			}
			after, err := os.Stat(path)
			if err != nil || !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
				t.Errorf("the file was replaced or modified: %v", err)
			}
			if got := readBytes(t, path); string(got) != content {
				t.Errorf("content = %q, want %q", got, content)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("files beside it: %v", entries)
			}
		})
	}
}

func TestStoreTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	writeFile(t, path, `{"version": 1}`)
	if err := os.Truncate(path, maxStateSize+1); err != nil { // sparse
		t.Fatal(err)
	}
	st := openStore(t, path)
	if _, err := st.LoadForUpdate(); !errors.Is(err, ErrBadState) {
		t.Errorf("Load of a file over the bound: %v, want ErrBadState", err)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("not kept aside: %v", err)
	}
	if err := st.Save(NewSaved()); err != nil {
		t.Errorf("Save: %v", err)
	}
}

func TestStoreMissingAndRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	st := openStore(t, path)
	if st.Path() != path {
		t.Errorf("Path() = %s", st.Path())
	}
	s, err := st.Load()
	if err != nil || s.Pins == nil || len(s.Pins) != 0 {
		t.Fatalf("missing file: %+v, %v; want empty state, no error", s, err)
	}
	s.Cursor.Next = 3
	s.Pins["21/GICv3/uart"] = Pin{IRQ: 21, CPUs: sysfs.NewCPUSet(2)}
	s.Written["22/GICv3/rtc"] = sysfs.NewCPUSet(1)
	s.Managed["26/ITS-MSI/virtio2-req.2"] = "managed"
	if err := st.Save(s); err != nil {
		t.Fatal(err)
	}
	back, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if back.Cursor.Next != 3 || back.Pins["21/GICv3/uart"].CPUs.String() != "2" || back.Written["22/GICv3/rtc"].String() != "1" ||
		back.Managed["26/ITS-MSI/virtio2-req.2"] != "managed" || back.Version != FormatVersion {
		t.Errorf("round trip = %+v", back)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestLockContention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "state.json")
	a, b := openStore(t, path), openStore(t, path)
	unlockA, err := a.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + ".lock"); err != nil || fi.Mode().Perm()&0o077 != 0 || !fi.Mode().IsRegular() {
		t.Errorf("lock file: %v, %v; want a regular file, mode 0600", fi, err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm()&0o700 != 0o700 {
		t.Errorf("state directory: %v, %v", fi, err)
	}

	var released atomic.Bool
	acquired := make(chan error, 1)
	go func() {
		unlockB, err := b.Lock(context.Background())
		if err == nil {
			if !released.Load() {
				err = errors.New("the second Lock returned while the first held the lock")
			}
			unlockB()
		}
		acquired <- err
	}()
	// Give b time to start waiting; the order is checked by released, not
	// by the time.
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-acquired:
		t.Fatalf("second Lock returned while the first held it: %v", err)
	default:
	}
	released.Store(true)
	unlockA()
	unlockA() // idempotent
	withHangGuard(t, "second Lock", func() {
		if err := <-acquired; err != nil {
			t.Error(err)
		}
	})

	// Cancelled while waiting.
	unlockA, err = a.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	withHangGuard(t, "Lock with a cancelled context", func() {
		unlock, err := b.Lock(ctx)
		if !errors.Is(err, context.Canceled) || unlock != nil {
			t.Errorf("Lock while held, ctx cancelled: %v, want context.Canceled", err)
		}
	})
	// Already cancelled, and with a deadline.
	if _, err := b.Lock(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled ctx: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	withHangGuard(t, "Lock with a deadline", func() {
		if _, err := b.Lock(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock while held, deadline: %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestLockNoLostUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	const workers = 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One Store each, as separate processes would have.
			st, err := OpenStore(path)
			if err != nil {
				errs <- err
				return
			}
			unlock, err := st.Lock(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer unlock()
			s, err := st.Load()
			if err != nil {
				errs <- err
				return
			}
			key := fmt.Sprintf("%d/ITS-MSI/q%d", 100+i, i)
			s.Pins[key] = Pin{IRQ: 100 + i, CPUs: sysfs.NewCPUSet(i % 4)}
			if err := st.Save(s); err != nil {
				errs <- err
			}
		}()
	}
	withHangGuard(t, "20 lockers", wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := openStore(t, path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pins) != workers {
		t.Errorf("%d pins, want %d: %v", len(s.Pins), workers, s.Pins)
	}
}

func TestDaemonClaim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, b := openStore(t, path), openStore(t, path)
	if pid, running := a.DaemonRunning(); running {
		t.Errorf("DaemonRunning before any claim: %d, true", pid)
	}
	release, err := a.ClaimDaemon()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(readBytes(t, path+".daemon"))); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("daemon file holds %q, want our PID", got)
	}
	_, err = b.ClaimDaemon()
	var dre *DaemonRunningError
	if !errors.Is(err, ErrDaemonRunning) || !errors.As(err, &dre) || dre.PID != os.Getpid() {
		t.Fatalf("second ClaimDaemon: %v, want ErrDaemonRunning with PID %d", err, os.Getpid())
	}
	want := fmt.Sprintf("irqshift watch is already running on %s (PID %d)", path, os.Getpid())
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if pid, running := b.DaemonRunning(); !running || pid != os.Getpid() {
		t.Errorf("DaemonRunning = %d, %v; want %d, true", pid, running, os.Getpid())
	}
	// The probe did not take the claim.
	if _, err := b.ClaimDaemon(); !errors.Is(err, ErrDaemonRunning) {
		t.Errorf("ClaimDaemon after a probe: %v", err)
	}
	release()
	release()
	if pid, running := b.DaemonRunning(); running {
		t.Errorf("DaemonRunning after release: %d, true", pid)
	}
	release, err = b.ClaimDaemon()
	if err != nil {
		t.Fatalf("ClaimDaemon after release: %v", err)
	}
	release()
}

func TestStoreChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, b := openStore(t, path), openStore(t, path)
	if !a.Changed() {
		t.Error("Changed before any Load: false")
	}
	if _, err := a.Load(); err != nil {
		t.Fatal(err)
	}
	if a.Changed() {
		t.Error("Changed after Load of a missing file, still missing: true")
	}
	if err := b.Save(NewSaved()); err != nil {
		t.Fatal(err)
	}
	if !a.Changed() {
		t.Error("Changed after another Store created the file: false")
	}
	if b.Changed() {
		t.Error("Changed after its own Save: true")
	}
	if _, err := a.Load(); err != nil {
		t.Fatal(err)
	}
	if a.Changed() {
		t.Error("Changed right after Load: true")
	}
	s := NewSaved()
	s.Pins["21/GICv3/uart"] = Pin{IRQ: 21, CPUs: sysfs.NewCPUSet(2)}
	if err := b.Save(s); err != nil {
		t.Fatal(err)
	}
	if !a.Changed() || b.Changed() {
		t.Errorf("after b's Save: a.Changed = %v (want true), b.Changed = %v (want false)", a.Changed(), b.Changed())
	}
	if err := a.Save(s); err != nil {
		t.Fatal(err)
	}
	if a.Changed() || !b.Changed() {
		t.Errorf("after a's Save: a.Changed = %v (want false), b.Changed = %v (want true)", a.Changed(), b.Changed())
	}
	// An edit in place, with the same size.
	if _, err := b.Load(); err != nil {
		t.Fatal(err)
	}
	data := readBytes(t, path)
	edited := bytes.Replace(data, []byte(`"next": 0`), []byte(`"next": 1`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("nothing to edit in %s", data)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(edited, 0); err != nil {
		t.Fatal(err)
	}
	// Make sure the modification time moves even on a coarse clock.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !b.Changed() {
		t.Error("Changed after an edit in place: false")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !a.Changed() {
		t.Error("Changed after removal: false")
	}
}
