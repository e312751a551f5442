// Package e2e runs the built irqshift binary against fixture trees laid out
// like /proc and /sys and compares its output with golden files, in the
// manner of node_exporter's end-to-end test.
//
//	go test ./tests/e2e                 # run
//	go test ./tests/e2e -update         # rewrite testdata/*.golden
//	go test ./tests/e2e -run TestGenerateTrees -generate   # rewrite testdata/trees
//
// Every run works on a copy of a tree, so writing commands change only the
// copy. The trees are plain files: a write changes the file written and
// nothing else (no IRQ migrates, effective_affinity_list and the `online`
// file stay as they were). The in-process tests in affinity/ use the
// kernel simulator for that.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the binary's output")

// binary is the irqshift built by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "irqshift-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	binary = filepath.Join(dir, "irqshift")
	build := exec.Command(goTool, "build", "-o", binary, "github.com/irqshift/irqshift")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building irqshift: %v\n", err)
		return 1
	}
	return m.Run()
}

// treeRoot returns the directory of a fixture: a generated tree by name, or
// "capture/<name>" for a tree captured from a real VM in tests/testdata.
func treeRoot(name string) string {
	if capture, ok := strings.CutPrefix(name, "capture/"); ok {
		return filepath.Join("..", "testdata", capture)
	}
	return filepath.Join(treesDir, name)
}

// copyTree copies the proc/ and sys/ of a fixture into a new temporary
// directory, applies its MODES file, and returns the copy's root.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	src := treeRoot(name)
	if _, err := os.Stat(filepath.Join(src, "proc", "interrupts")); err != nil {
		if strings.HasPrefix(name, "capture/") {
			t.Skipf("no captured tree %s: %v", src, err)
		}
		t.Fatalf("fixture %s: %v (go test ./tests/e2e -run TestGenerateTrees -generate)", src, err)
	}
	dst := sysfstest.TempDir(t)
	for _, top := range []string{"proc", "sys"} {
		err := filepath.WalkDir(filepath.Join(src, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := applyModes(filepath.Join(src, "MODES"), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// applyModes reads "0444 proc/irq/26/smp_affinity_list" lines and sets those
// modes under root. A missing MODES file is no error.
func applyModes(modesFile, root string) error {
	f, err := os.Open(modesFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mode, rel, ok := strings.Cut(line, " ")
		if !ok {
			return fmt.Errorf("%s: bad line %q", modesFile, line)
		}
		perm, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			return fmt.Errorf("%s: bad mode in %q", modesFile, line)
		}
		path := filepath.Join(root, filepath.FromSlash(strings.TrimSpace(rel)))
		if err := os.Chmod(path, fs.FileMode(perm)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return sc.Err()
}

// hashTree maps every file and directory under root (relative, slash
// separated) to a digest of its content and, with modes, its permissions.
func hashTree(root string, modes bool) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := "dir"
		if !d.IsDir() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum = hex.EncodeToString(h[:8])
		}
		if modes {
			sum += " " + info.Mode().Perm().String()
		}
		out[rel] = sum
		return nil
	})
	return out, err
}

// diffHashes lists the paths whose digests differ, "" when none do.
func diffHashes(got, want map[string]string) string {
	var lines []string
	for path, w := range want {
		switch g, ok := got[path]; {
		case !ok:
			lines = append(lines, "missing: "+path)
		case g != w:
			lines = append(lines, "changed: "+path)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			lines = append(lines, "added:   "+path)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// result is one run of the binary.
type result struct {
	stdout, stderr []byte
	code           int
}

// run runs irqshift --proc ROOT/proc --sys ROOT/sys args... with env
// ("KEY=value") added to an environment cleaned of irqbalance's
// variables.
func run(t *testing.T, root string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"--proc", filepath.Join(root, "proc"), "--sys", filepath.Join(root, "sys")}, args...)
	cmd := exec.CommandContext(ctx, binary, full...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IRQBALANCE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running irqshift %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// checkGolden compares got with testdata/<name>.golden, or rewrites it
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept):\n%s", path, firstDiff(string(got), string(want)))
	}
}

// firstDiff shows the first differing line of got and want.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  got:  %q\n  want: %q", i+1, gl, wl)
		}
	}
	return "(identical lines; the difference is in line endings)"
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
