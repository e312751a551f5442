package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"irqshift"}, args...), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// TestNonRootRefused checks that a writing command against the live /proc
// fails at once, before reading or writing anything, for a non-root user;
// and that read-only uses still work.
func TestNonRootRefused(t *testing.T) {
	defer func(orig func() int) { geteuid = orig }(geteuid)
	geteuid = func() int { return 1000 }
	for _, args := range [][]string{{"rebalance"}, {"drain", "1"}, {"offline", "1"}, {"online", "1"}} {
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != exitError || !strings.Contains(stderr, "needs root") || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and a root message", args, code, stdout, stderr)
		}
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
// flag that takes a value would separate it from its value.
func TestReorderableCommandsHaveOnlyBoolFlags(t *testing.T) {
	app := newApp(nil, nil, func(string) string { return "" })
	for _, cmd := range app.Commands {
		if !reorderable[cmd.Name] {
			continue
		}
		for _, f := range cmd.Flags {
			if _, ok := f.(*cli.BoolFlag); !ok {
				t.Errorf("command %s is reorderable but flag %v takes a value", cmd.Name, f.Names())
			}
		}
	}
}
