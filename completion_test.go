package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCompletionScripts: `irqshift completion SHELL` prints a script for
// each shell that the shell parses (bash -n, zsh -n, fish -n; a shell
// that is not installed is skipped, saying so).
func TestCompletionScripts(t *testing.T) {
	app := docApp()
	for _, shell := range completionShells {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "completion", shell)
			if code != exitOK || errOut != "" || out == "" {
				t.Fatalf("completion %s: exit %d, %d bytes, %s", shell, code, len(out), errOut)
			}
			if !strings.Contains(out, "--generate-bash-completion") {
				t.Errorf("the %s script does not ask irqshift", shell)
			}
			for _, f := range []string{"--numa", "--proc", "--ban-file"} {
				if !strings.Contains(out, f) && !strings.Contains(out, "-l "+strings.TrimPrefix(f, "--")) {
					t.Errorf("the %s script does not complete the value of %s", shell, f)
				}
			}
			if shell == "fish" {
				for _, cmd := range docCommands(app) {
					if !strings.Contains(out, "-a '"+cmd.Name) {
						t.Errorf("the fish script lacks command %s", cmd.Name)
					}
				}
			}
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s is not installed: the script is not checked with %s -n", shell, shell)
			}
			path := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil || len(msg) > 0 {
				t.Errorf("%s -n: %v\n%s", shell, err, msg)
			}
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if code, _, errOut := runCLI(t, nil, args...); code != exitUsage || !strings.Contains(errOut, "bash, zsh, fish") {
			t.Errorf("%v: exit %d, %q; want a usage error naming the shells", args, code, errOut)
		}
	}
}

func completionWords(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errOut := runCLI(t, nil, append(args, "--generate-bash-completion")...)
	if code != exitOK {
		t.Fatalf("%v --generate-bash-completion: exit %d, %s", args, code, errOut)
	}
	return strings.Fields(out)
}

// TestGenerateBashCompletion: --generate-bash-completion lists the
// commands and global flags, a command's flags, and the CPUs and IRQs of
// the (fixture) machine where a command takes them.
func TestGenerateBashCompletion(t *testing.T) {
	app := docApp()
	words := completionWords(t)
	for _, cmd := range docCommands(app) {
		if !slices.Contains(words, cmd.Name) {
			t.Errorf("--generate-bash-completion lacks command %s: %v", cmd.Name, words)
		}
	}
	for _, want := range []string{"--proc", "--state", "--help", "help"} {
		if !slices.Contains(words, want) {
			t.Errorf("--generate-bash-completion lacks %s: %v", want, words)
		}
	}
	if slices.Contains(words, "man") {
		t.Errorf("the hidden man command is offered")
	}
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	writeFile(t, filepath.Join(sys, "devices/system/cpu/offline"), "3\n")
	writeFile(t, filepath.Join(sys, "devices/system/cpu/online"), "0-2\n")
	root := []string{"--proc", proc, "--sys", sys}
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"drain"}, []string{"--dry-run", "-n", "--json", "--help", "0", "1", "2"}, []string{"3", "13"}},
		{[]string{"offline"}, []string{"0", "2"}, []string{"3"}},
		{[]string{"online"}, []string{"3", "--verify"}, []string{"0"}},
		{[]string{"pin"}, []string{"13", "21", "--persist"}, []string{"0"}},
		{[]string{"unpin"}, []string{"13"}, nil},
		{[]string{"completion"}, []string{"bash", "zsh", "fish"}, nil},
		{[]string{"rebalance"}, []string{"--dry-run"}, []string{"0", "13"}},
		{[]string{"watch"}, []string{"--ban-file", "--check-interval"}, []string{"0"}},
	} {
		words := completionWords(t, append(root, tc.args...)...)
		for _, w := range tc.want {
			if !slices.Contains(words, w) {
				t.Errorf("%v: no %s in %v", tc.args, w, words)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(words, w) {
				t.Errorf("%v: %s offered: %v", tc.args, w, words)
			}
		}
	}
}

// TestCompletionAfterArguments: the candidates after some arguments (the
// app run as urfave/cli sees it; see TestCompletionNeverRuns for run's
// reordering).
func TestCompletionAfterArguments(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"pin", "13"}, []string{"0", "1", "2", "3"}},
		{[]string{"pin", "13", "2"}, nil},
		{[]string{"drain", "1", "3"}, []string{"0", "2"}},
		{[]string{"drain", "0-2"}, []string{"3"}},
		{[]string{"unpin", "13"}, nil},
		{[]string{"completion", "bash"}, nil},
	} {
		var out bytes.Buffer
		app := newApp(&out, &out, func(string) string { return "" })
		args := append([]string{"irqshift", "--proc", proc, "--sys", sys}, tc.args...)
		if err := app.RunContext(context.Background(), append(args, "--generate-bash-completion")); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		var got []string
		for _, w := range strings.Fields(out.String()) {
			if !strings.HasPrefix(w, "-") {
				got = append(got, w)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: arguments %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestCompletionNeverRuns: whatever the words before the cursor,
// --generate-bash-completion runs no command: nothing is written, and a
// command that is not completed fails as a usage error rather than run.
func TestCompletionNeverRuns(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	statePath := filepath.Join(t.TempDir(), "state.json")
	irq13 := filepath.Join(proc, "irq", "13", "smp_affinity_list")
	before := readTrim(t, irq13)
	for _, args := range [][]string{
		{"rebalance"}, {"drain"}, {"drain", "1"}, {"drain", "1", "--dry-run"}, {"offline", "1"}, {"online", "1"},
		{"pin", "13"}, {"pin", "13", "1"}, {"unpin", "13"}, {"undrain", "1"}, {"watch"}, {"watch", "--coexist"},
		{"top"}, {"verify"}, {"man"}, {"completion", "bash"}, {"drain", "--", "1"},
	} {
		full := append(append([]string{"--proc", proc, "--sys", sys, "--state", statePath}, args...), "--generate-bash-completion")
		done := make(chan struct{})
		var code int
		var stdout string
		go func() {
			defer close(done)
			code, stdout, _ = runCLI(t, nil, full...)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%v --generate-bash-completion runs", args)
		}
		if code != exitOK && code != exitUsage {
			t.Errorf("%v --generate-bash-completion: exit %d", args, code)
		}
		if strings.Contains(stdout, ".TH") || strings.Contains(stdout, "_irqshift()") {
			t.Errorf("%v --generate-bash-completion ran the command: %.200s", args, stdout)
		}
		if _, err := os.Stat(statePath); err == nil {
			t.Fatalf("%v --generate-bash-completion wrote the state file", args)
		}
		if got := readTrim(t, irq13); got != before {
			t.Fatalf("%v --generate-bash-completion moved IRQ 13 to %s", args, got)
		}
	}
}

// TestBashCompletionFunction runs the bash function against a stub
// irqshift that prints fixed candidates and records its arguments: flags
// only for a word starting with "-", values of flags from the script, no
// call after "--" or for a value irqshift cannot list.
func TestBashCompletionFunction(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	_, script, _ := runCLI(t, nil, "completion", "bash")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	writeFile(t, filepath.Join(bin, "irqshift"), "#!/bin/sh\necho \"$*\" >>\""+dir+"/calls\"\nprintf '%s\\n' --json --dry-run -n list drain 1 2\n")
	if err := os.Chmod(filepath.Join(bin, "irqshift"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "script.bash"), script)
	work := filepath.Join(dir, "work")
	writeFile(t, filepath.Join(work, "procdir", "x"), "")
	writeFile(t, filepath.Join(work, "afile"), "")
	for _, tc := range []struct {
		line, want, call string
	}{
		{"irqshift ", "list drain 1 2", "--generate-bash-completion"},
		{"irqshift dr", "drain", "--generate-bash-completion"},
		{"irqshift drain 2 --d", "--dry-run", "drain 2 --generate-bash-completion"},
		{"irqshift drain -", "--json --dry-run -n", "drain --generate-bash-completion"},
		{"irqshift --numa ", "local ignore", ""},
		{"irqshift --numa=i", "ignore", ""},
		{"irqshift --banned-cpus ", "", ""},
		{"irqshift drain --sample ", "", ""},
		{"irqshift drain -- ", "", ""},
		{"irqshift --proc ", "procdir", ""},
		{"irqshift --state a", "afile", ""},
	} {
		os.Remove(filepath.Join(dir, "calls"))
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}; _irqshift; echo "${COMPREPLY[*]}"`,
			"bash", filepath.Join(dir, "script.bash"), tc.line)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
		}
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if got := strings.TrimSpace(string(calls)); got != tc.call {
			t.Errorf("%q called irqshift with %q, want %q", tc.line, got, tc.call)
		}
	}
}
