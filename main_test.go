package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irqshift/irqshift/sysfs"

	"github.com/urfave/cli/v2"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"irqshift"}, args...), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// TestNonRootRefused checks that a writing command fails at once, before
// reading or writing anything, when the kernel says this process may not
// write (a non-root user); and that read-only uses still work. It runs on
// a fixture tree: no test writes the host's /proc.
func TestNonRootRefused(t *testing.T) {
	defer func(orig func(sysfs.FS) error) { checkWriteAccess = orig }(checkWriteAccess)
	checkWriteAccess = func(sysfs.FS) error {
		return fmt.Errorf("%w: writing IRQ affinity needs root; run with sudo, or use --dry-run", sysfs.ErrPermission)
	}
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	state := filepath.Join(t.TempDir(), "state.json")
	for _, args := range [][]string{{"rebalance"}, {"drain", "1"}, {"offline", "1"}, {"online", "1"}, {"pin", "13", "1"}, {"undrain", "1"}} {
		args = append([]string{"--proc", proc, "--sys", sys, "--state", state}, args...)
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != exitError || !strings.Contains(stderr, "needs root") || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and a root message", args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a refused command touched the state file: %v", err)
	}
	args := []string{"--proc", proc, "--sys", sys, "--state", state}
	if code, _, stderr := runCLI(t, nil, append(args, "rebalance", "--dry-run")...); code != exitOK {
		t.Errorf("dry run without privilege: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, append(args, "list")...); code != exitOK {
		t.Errorf("list without privilege: exit %d, %s", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"drain"}, "give at least one CPU"},
		{[]string{"drain", "two"}, "not a CPU number"},
		{[]string{"offline", "1-"}, "not a CPU number"},
		{[]string{"--bogus", "list"}, "bogus"},
		{[]string{"--proc", "/nonexistent", "list"}, "--proc/--sys"},
		{[]string{"--banned-cpus", "x", "list"}, "--banned-cpus"},
		{[]string{"--banned-irqs", "a", "list"}, "--banned-irqs"},
		{[]string{"--log-level", "loud", "list"}, "--log-level"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, nil, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestFlagsFirst(t *testing.T) {
	tests := []struct{ in, want string }{
		{"irqshift drain 2 --dry-run", "irqshift drain --dry-run 2"},
		{"irqshift --proc /x drain 2 3 --json -n", "irqshift --proc /x drain --json -n 2 3"},
		{"irqshift --proc=/x offline 2", "irqshift --proc=/x offline 2"},
		{"irqshift list --json", "irqshift list --json"},
		{"irqshift drain -- 2 --json", "irqshift drain -- 2 --json"},
		{"irqshift drain -1", "irqshift drain -1"},
		{"irqshift", "irqshift"},
		{"irqshift watch --log-level debug --coexist", "irqshift --log-level debug watch --coexist"},
		{"irqshift --state /s watch --metrics-address :1 --include-pinned", "irqshift --state /s --include-pinned watch --metrics-address :1"},
		{"irqshift drain 2 --log-level=info --json", "irqshift --log-level=info drain --json 2"},
		{"irqshift drain 2 --sample 3s 5", "irqshift drain --sample 3s 2 5"},
		{"irqshift offline 2 --sample=0", "irqshift offline --sample=0 2"},
		{"irqshift --balance count drain 2 --sample 0 --json", "irqshift --balance count drain --sample 0 --json 2"},
	}
	for _, tt := range tests {
		if got := strings.Join(flagsFirst(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("flagsFirst(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGlobalValueFlagsComplete keeps flagsFirst in step with the app: every
// global flag that takes a value must be known to it.
func TestGlobalValueFlagsComplete(t *testing.T) {
	app := newApp(nil, nil, func(string) string { return "" })
	for _, f := range app.Flags {
		if _, isBool := f.(*cli.BoolFlag); isBool {
			continue
		}
		for _, name := range f.Names() {
			if !globalValueFlags["--"+name] || !globalValueFlags["-"+name] {
				t.Errorf("global flag %q takes a value but flagsFirst does not know it", name)
			}
		}
	}
}

// TestReorderableCommandsHaveOnlyBoolFlags keeps flagsFirst safe: moving a
// flag that takes a value would separate it from its value, unless
// flagsFirst knows it (commandValueFlags).
func TestReorderableCommandsHaveOnlyBoolFlags(t *testing.T) {
	app := newApp(nil, nil, func(string) string { return "" })
	for _, cmd := range app.Commands {
		if !reorderable[cmd.Name] {
			continue
		}
		for _, f := range cmd.Flags {
			if _, ok := f.(*cli.BoolFlag); ok {
				continue
			}
			for _, name := range f.Names() {
				if !commandValueFlags["--"+name] || !commandValueFlags["-"+name] {
					t.Errorf("command %s is reorderable but flag %q takes a value flagsFirst does not know", cmd.Name, name)
				}
			}
		}
	}
}

// TestMain keeps every test of this package off the host's own /proc and
// /sys: a writing command aimed at the live system fails as if not root.
func TestMain(m *testing.M) {
	check := checkWriteAccess
	checkWriteAccess = func(fs sysfs.FS) error {
		if fs.IsLive() {
			return fmt.Errorf("%w: tests never write the live system", sysfs.ErrPermission)
		}
		return check(fs)
	}
	os.Exit(m.Run())
}

// TestStatePathNotRegular: a state path that exists and is not a regular
// file is refused at once, before anything is read or written, for every
// command.
func TestStatePathNotRegular(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "null")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{fifo, "/dev/null", dir, link} {
		for _, args := range [][]string{{"list"}, {"rebalance"}, {"drain", "1"}, {"pin", "13", "1"}, {"watch"}} {
			done := make(chan struct{})
			var code int
			var stderr string
			go func() {
				defer close(done)
				code, _, stderr = runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", state}, args...)...)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second): // a hang guard: a FIFO opened for reading blocks
				t.Fatalf("--state %s %v hangs", state, args)
			}
			if code != exitError || !strings.Contains(stderr, "not a regular file") {
				t.Errorf("--state %s %v: exit %d, %q; want exit 1 saying it is not a regular file", state, args, code, stderr)
			}
		}
	}
	if info, err := os.Lstat("/dev/null"); err != nil || info.Mode()&os.ModeDevice == 0 {
		t.Fatalf("/dev/null is no longer a device: %v %v", info, err)
	}
	if masks := readTrim(t, filepath.Join(proc, "irq", "13", "smp_affinity_list")); masks != "0-3" {
		t.Errorf("IRQ 13 rewritten to %s by a refused command", masks)
	}
}

// TestStrayArguments: commands without arguments refuse them (exit 2), and
// an error quotes at most ~200 bytes of what it was given.
func TestStrayArguments(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	base := []string{"--proc", proc, "--sys", sys, "--state", "none"}
	for _, args := range [][]string{{"rebalance", "3"}, {"rules", "x"}, {"watch", "2"}, {"rebalance", "--dry-run", "3"}} {
		code, stdout, stderr := runCLI(t, nil, append(base, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "takes no arguments") || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, code, stdout, stderr)
		}
	}
	long := strings.Repeat("9", 10<<20)
	for _, args := range [][]string{{"drain", long}, {"pin", long, "1"}, {"pin", "13", long}, {"--banned-cpus", long, "list"}} {
		code, _, stderr := runCLI(t, nil, append(base, args...)...)
		if code != exitUsage || len(stderr) > 600 {
			t.Errorf("%s…: exit %d, %d bytes of error", args[0], code, len(stderr))
		}
	}
}

// TestRootHintNamesOnlyFlagsTheCommandHas: a refusal for want of root
// suggests --dry-run only to the commands that have it.
func TestRootHintNamesOnlyFlagsTheCommandHas(t *testing.T) {
	defer func(orig func(sysfs.FS) error) { checkWriteAccess = orig }(checkWriteAccess)
	checkWriteAccess = func(sysfs.FS) error {
		return fmt.Errorf("%w: writing IRQ affinity needs root", sysfs.ErrPermission)
	}
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	base := []string{"--proc", proc, "--sys", sys, "--state", filepath.Join(t.TempDir(), "state.json")}
	for _, tc := range []struct {
		args   []string
		dryRun bool
	}{{[]string{"rebalance"}, true}, {[]string{"drain", "1"}, true}, {[]string{"offline", "1"}, false}, {[]string{"pin", "13", "1"}, false}} {
		code, _, stderr := runCLI(t, nil, append(base, tc.args...)...)
		if code != exitError || !strings.Contains(stderr, "run as root") || strings.Contains(stderr, "--dry-run") != tc.dryRun {
			t.Errorf("%v: exit %d, %q; want a root hint, mentioning --dry-run: %v", tc.args, code, stderr, tc.dryRun)
		}
	}
}
