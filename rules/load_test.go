package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/fifotest"
	"github.com/irqshift/irqshift/internal/regfile"
)

// rule is a minimal valid rules file holding one rule of that name.
func rule(name string) string {
	return fmt.Sprintf("[[rule]]\nname = %q\ndevice = \"d\"\ncpus = \"1\"\n", name)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(s *Set) []string {
	var out []string
	for _, r := range s.Rules {
		out = append(out, r.Name)
	}
	return out
}

func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "20-b.toml"), rule("b1")+"\n"+rule("b2"))
	writeFile(t, filepath.Join(dir, "10-a.toml"), rule("a"))
	writeFile(t, filepath.Join(dir, "30-c.toml"), "# nothing yet\n")
	writeFile(t, filepath.Join(dir, "15-x.toml.bak"), "not toml at all [[[")
	writeFile(t, filepath.Join(dir, "README"), "not toml at all [[[")
	writeFile(t, filepath.Join(dir, ".#10-a.toml"), "editor junk [[[")
	if err := os.Mkdir(filepath.Join(dir, "sub.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.toml", "40-d.toml"), rule("d"))
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(set), " "), "a b1 b2"; got != want {
		t.Errorf("rules %q, want %q", got, want)
	}
	if set.Dir != dir || set.Len() != 3 {
		t.Errorf("Dir %q Len %d", set.Dir, set.Len())
	}
	if f := set.Rules[1].File; f != filepath.Join(dir, "20-b.toml") {
		t.Errorf("File %q", f)
	}
	if l := set.Rules[2].Line; l != 6 {
		t.Errorf("b2 at line %d, want 6", l)
	}
}

func TestLoadMissingDir(t *testing.T) {
	set, err := Load(filepath.Join(t.TempDir(), "rules.d"))
	if err != nil {
		t.Fatal(err)
	}
	if set == nil || set.Len() != 0 {
		t.Errorf("set %+v, want empty", set)
	}
}

func TestLoadDirIsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.d")
	writeFile(t, path, rule("a"))
	_, err := Load(path)
	wantError(t, err, path+": is not a directory")
}

func TestLoadFIFO(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-a.toml"), rule("a"))
	fifo := filepath.Join(dir, "20-fifo.toml")
	fifotest.Make(t, fifo)
	err := fifotest.WithinErr(t, "Load of a directory with a FIFO", func() error {
		_, err := Load(dir)
		return err
	})
	wantError(t, err, fifo+": is a FIFO, not a regular file")
}

func TestLoadSymlinks(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "real.toml"), rule("linked"))
	if err := os.Symlink(filepath.Join(elsewhere, "real.toml"), filepath.Join(dir, "10-linked.toml")); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(set), " "); got != "linked" {
		t.Errorf("rules %q, want the linked file's", got)
	}

	// A link to a directory is named like a rules file: refused, not
	// skipped as a subdirectory would be.
	link := filepath.Join(dir, "20-dir.toml")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	wantError(t, err, link+": is a symbolic link to "+elsewhere+", a directory, not a regular file")
	os.Remove(link)

	dangling := filepath.Join(dir, "30-gone.toml")
	if err := os.Symlink(filepath.Join(elsewhere, "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	wantError(t, err, dangling+": is a symbolic link to "+filepath.Join(elsewhere, "gone")+", which does not exist")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap fs.ErrNotExist", err)
	}
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-a.toml"), "# first\n"+rule("same"))
	writeFile(t, filepath.Join(dir, "20-b.toml"), rule("other")+"\n"+rule("same"))
	_, err := Load(dir)
	wantError(t, err, filepath.Join(dir, "20-b.toml")+`:6: rule "same": name already used by the rule at `+filepath.Join(dir, "10-a.toml")+":2")
}

func TestLoadBadFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-a.toml"), rule("a"))
	writeFile(t, filepath.Join(dir, "20-b.toml"), "[[rule]]\nname = \"b\"\ndevice = \"d\"\ncpus = \"8-x\"\n")
	_, err := Load(dir)
	wantError(t, err, filepath.Join(dir, "20-b.toml")+`:4: rule "b": cpus "8-x": bad CPU number "x"`)
}

func TestLoadTooLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "10-big.toml")
	writeFile(t, path, "# "+strings.Repeat("x", MaxFileSize)+"\n")
	_, err := Load(dir)
	wantError(t, err, path+": is larger than 1048576 bytes")
	if !errors.Is(err, regfile.ErrTooLarge) {
		t.Errorf("%v does not wrap regfile.ErrTooLarge", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a file of mode 0")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "10-a.toml")
	writeFile(t, path, rule("a"))
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	wantError(t, err, path+": open: permission denied")
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("%v does not wrap fs.ErrPermission", err)
	}
}
