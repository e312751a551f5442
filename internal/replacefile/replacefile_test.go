package replacefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	target := filepath.Join(dir, "f")
	rename := func(tmp string) error { return os.Rename(tmp, target) }
	for _, content := range []string{"one\n", "two\n"} {
		fi, err := Write(target, []byte(content), rename)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(target); string(got) != content || fi.Size() != int64(len(content)) || fi.Mode().Perm() != 0o644 {
			t.Errorf("target %q (mode %v, size %d), want %q 0644", got, fi.Mode(), fi.Size(), content)
		}
	}
	refused := errors.New("not ours")
	if _, err := Write(target, []byte("three\n"), func(string) error { return refused }); !errors.Is(err, refused) {
		t.Errorf("a refused commit returned %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "two\n" {
		t.Errorf("a refused commit changed the target: %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left beside the target: %v", entries)
	}
}
