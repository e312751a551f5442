package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/fifotest"
)

// TestRead: what is not a regular file is refused without
// blocking or reading it (a FIFO, a device, a directory, a symbolic link
// to one), a symbolic link to a regular file is followed, and a file
// larger than the bound is refused.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	fifotest.Make(t, fifo)
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{regular, link} {
		var data []byte
		err := fifotest.WithinErr(t, path, func() (err error) { data, err = Read(path, 4); return err })
		if err != nil || string(data) != "A=1\n" {
			t.Errorf("%s: %q, %v", path, data, err)
		}
	}
	for path, kind := range map[string]string{fifo: "a FIFO", fifoLink: "a FIFO", dir: "a directory", "/dev/zero": "a character device"} {
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		err := fifotest.WithinErr(t, path, func() error { _, err := Read(path, 1<<20); return err })
		var notRegular *NotRegularError
		if !errors.As(err, &notRegular) || !strings.HasPrefix(err.Error(), path+" is ") || !strings.HasSuffix(err.Error(), kind+", not a regular file") {
			t.Errorf("%s: %v, want %s, not a regular file", path, err, kind)
		}
	}
	if _, err := Read(regular, 3); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), regular) {
		t.Errorf("a 4-byte file, bound 3: %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	fifotest.Make(t, fifo)
	if err := Check(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing file: %v, want nil", err)
	}
	var notRegular *NotRegularError
	if err := Check(fifo); !errors.As(err, &notRegular) || notRegular.Kind != "a FIFO" {
		t.Errorf("a FIFO: %v", err)
	}
}
