package sysfs

import (
	"os"
	"path/filepath"
	"testing"
)

// writeTree lays out files (path relative to root → content) under a
// temporary root and returns an FS on its proc and sys directories.
func writeTree(t *testing.T, files map[string]string) FS {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := NewFS(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
