package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStateNotOursLeftAlone: --state naming a file that irqshift did not
// write (the config file given by mistake, a link to another program's
// file) is refused by every command, exit 1, and the file is left exactly
// as it was: not renamed to .bad, not replaced by irqshift JSON, nothing
// created beside it.
func TestStateNotOursLeftAlone(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	config := filepath.Join(dir, "irqshift.default")
	writeFile(t, config, "IRQSHIFT_BANNED_CPUS=3\n")
	other := filepath.Join(dir, "other", "data.json")
	writeFile(t, other, `{"name": "someone else's"}`)
	link := filepath.Join(dir, "link", "state.json")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		var names []string
		filepath.Walk(dir, func(path string, _ os.FileInfo, _ error) error {
			names = append(names, path)
			return nil
		})
		return names
	}
	before := listing()
	for _, state := range []string{config, link} {
		for _, args := range [][]string{{"list"}, {"list", "--json"}, {"rebalance"}, {"rebalance", "--dry-run"}, {"drain", "1"},
			{"pin", "13", "1"}, {"unpin", "13"}, {"watch", "--no-verify"}} {
			done := make(chan struct{})
			var code int
			var stdout, stderr string
			go func() {
				defer close(done)
				code, stdout, stderr = runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", state}, args...)...)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second): // a hang guard: watch would run on
				t.Fatalf("--state %s %v did not refuse", state, args)
			}
			if code != exitError || !strings.Contains(stderr, "not an irqshift state file") || !strings.Contains(stderr, "--state") {
				t.Errorf("--state %s %v: exit %d, stdout %q, stderr %q; want exit 1 saying it is not irqshift's and what to do", state, args, code, stdout, stderr)
			}
		}
	}
	if got := readTrim(t, config); got != "IRQSHIFT_BANNED_CPUS=3" {
		t.Errorf("the config file became %q", got)
	}
	if got := readTrim(t, other); got != `{"name": "someone else's"}` {
		t.Errorf("the linked file became %q", got)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if after := listing(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("files created or removed beside them:\nbefore %v\nafter  %v", before, after)
	}
	if got := readTrim(t, filepath.Join(proc, "irq", "13", "smp_affinity_list")); got != "0-3" {
		t.Errorf("IRQ 13 rewritten to %s by a refused command", got)
	}
}

// TestStateDanglingLinkRefused: a --state link to a file that does not
// exist is refused, and neither the file nor its directory is created.
func TestStateDanglingLinkRefused(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	target := filepath.Join(dir, "nowhere", "state.json")
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"pin", "13", "1"}} {
		code, _, stderr := runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", link}, args...)...)
		if code != exitError || !strings.Contains(stderr, "does not exist") {
			t.Errorf("%v: exit %d, %q; want exit 1 saying the link's target does not exist", args, code, stderr)
		}
	}
	if _, err := os.Lstat(filepath.Dir(target)); !os.IsNotExist(err) {
		t.Errorf("the link's target directory was created: %v", err)
	}
}

// TestStateLockReadOnly: a state on a read-only file system (a tmpfs
// mounted read-only in a private mount namespace) is an error at once,
// never reported as waiting for another irqshift's lock.
func TestStateLockReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a read-only tmpfs in a private mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) from util-linux")
	}
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	args := strings.Join([]string{"--log-level", "info", "--proc", proc, "--sys", sys, "--state", filepath.Join(ro, "state.json"), "drain", "1"}, "\x1f")
	script := `mount -t tmpfs -o ro tmpfs "$1" && exec "$2" -test.run '^TestHelperRunCLI$'`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", ro, os.Args[0])
	cmd.Env = append(os.Environ(), "IRQSHIFT_TEST_CLI_ARGS="+args)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "irqshift:") {
		t.Skipf("cannot mount a read-only tmpfs here: %v %s", err, out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitError || strings.Contains(string(out), "waiting") ||
		!strings.Contains(string(out), "read-only file system") || !strings.Contains(string(out), "cannot take the state lock") {
		t.Errorf("%v\n%s\nwant exit 1 saying the lock cannot be taken on a read-only file system, without waiting", err, out)
	}
	if d := time.Since(start); d > 25*time.Second { // the wait is 30 s; a sanity bound, not a speed check
		t.Errorf("took %s: it waited for a lock nobody holds", d)
	}
}

// TestHelperRunCLI runs irqshift with the arguments in
// IRQSHIFT_TEST_CLI_ARGS (separated by 0x1f, the unit separator) and
// exits with its code; other tests start it in a subprocess.
func TestHelperRunCLI(t *testing.T) {
	args := os.Getenv("IRQSHIFT_TEST_CLI_ARGS")
	if args == "" {
		t.Skip("a helper that other tests start in a subprocess")
	}
	os.Exit(run(append([]string{"irqshift"}, strings.Split(args, "\x1f")...), os.Stdout, os.Stderr, os.Getenv))
}

// TestStateAliasOneOwner: two commands through two spellings of one state
// (the file and a link to it) take turns under one lock, so neither loses
// the other's drain.
func TestStateAliasOneOwner(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	alias := filepath.Join(dir, "alias.json")
	if code, _, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", state, "rebalance"); code != exitOK {
		t.Fatalf("rebalance: exit %d, %s", code, stderr)
	}
	if err := os.Symlink(state, alias); err != nil {
		t.Fatal(err)
	}
	for round := range 8 {
		codes := make(chan string, 2)
		for _, c := range []struct{ path, verb string }{{state, "drain"}, {alias, "drain"}} {
			cpu := "1"
			if c.path == alias {
				cpu = "2"
			}
			go func() {
				code, _, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", c.path, c.verb, cpu)
				codes <- fmt.Sprintf("%s %s: exit %d %s", c.verb, cpu, code, stderr)
			}()
		}
		for range 2 {
			if got := <-codes; !strings.Contains(got, "exit 0") {
				t.Errorf("round %d: %s", round, got)
			}
		}
		var saved struct {
			Drained map[string]string `json:"drained"`
		}
		if err := json.Unmarshal([]byte(readTrim(t, state)), &saved); err != nil {
			t.Fatal(err)
		}
		if saved.Drained["1"] != "drain" || saved.Drained["2"] != "drain" {
			t.Fatalf("round %d: drained %v, want CPUs 1 and 2: a drain was lost", round, saved.Drained)
		}
		if code, _, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", alias, "undrain", "1-2"); code != exitOK {
			t.Fatalf("undrain: exit %d, %s", code, stderr)
		}
	}
	if fi, err := os.Lstat(alias); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the alias is no longer a link: %v", err)
	}
}
