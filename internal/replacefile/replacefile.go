// Package replacefile replaces a file whole: the new content goes to a
// temporary file beside it, synced, and a rename puts it in place, so a
// reader sees the old file or the new one and a crash leaves one of them.
// The caller decides, just before the rename, whether the target may be
// replaced (a file irqshift did not write never is), and how to rename.
package replacefile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data (mode 0644) to a temporary file in target's directory,
// creating the directory (0755) if needed, and calls commit with the
// temporary file's path: commit checks what it must and renames it onto
// target. The temporary file is removed unless commit succeeded. After it,
// the directory is synced so that the rename lasts. It returns the new
// file's information.
func Write(target string, data []byte, commit func(tmp string) error) (fs.FileInfo, error) {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp.Name())
		}
	}()
	fi, err := fill(tmp, data)
	if err != nil {
		return nil, err
	}
	if err := commit(tmp.Name()); err != nil {
		return nil, err
	}
	committed = true
	SyncDir(dir)
	return fi, nil
}

// fill writes, syncs and closes f.
func fill(f *os.File, data []byte) (fs.FileInfo, error) {
	fail := func(err error) (fs.FileInfo, error) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return fi, nil
}

// SyncDir makes a rename or creation in dir durable (best effort: a file
// system that cannot sync a directory loses nothing else by it).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
