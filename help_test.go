package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

func docApp() *cli.App {
	return newApp(nil, nil, func(string) string { return "" })
}

// docCommands are the app's commands an operator sees, urfave/cli's
// help command aside.
func docCommands(app *cli.App) []*cli.Command {
	var out []*cli.Command
	for _, cmd := range app.Commands {
		if !cmd.Hidden && cmd.Name != "help" {
			out = append(out, cmd)
		}
	}
	return out
}

// checkHelpText checks one help text: every line within 80 columns, no
// tab, and at least min examples under EXAMPLES.
func checkHelpText(t *testing.T, what, out string, min int) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > helpWidth {
			t.Errorf("%s: line %d is %d columns: %q", what, i+1, n, line)
		}
		if strings.Contains(line, "\t") {
			t.Errorf("%s: line %d has a tab: %q", what, i+1, line)
		}
	}
	_, ex, ok := strings.Cut(out, "\nEXAMPLES:\n")
	if !ok {
		t.Errorf("%s: no EXAMPLES section:\n%s", what, out)
		return
	}
	ex, _, _ = strings.Cut(ex, "\n\n\n")
	n := 0
	for _, line := range strings.Split(ex, "\n") {
		if strings.HasPrefix(line, "   # ") {
			n++
		}
	}
	if n < min {
		t.Errorf("%s: %d examples, want at least %d:\n%s", what, n, min, ex)
	}
}

// TestHelpFitsAndHasExamples runs --help of the app and of every command
// (and `help CMD`, and irqshift alone): each line fits in 80 columns and
// each has examples.
func TestHelpFitsAndHasExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != exitOK || errOut != "" {
			t.Fatalf("%v: exit %d, %s", args, code, errOut)
		}
		checkHelpText(t, strings.Join(append([]string{"irqshift"}, args...), " "), out, 3)
		for _, want := range []string{"COMMANDS:", "GLOBAL OPTIONS:", "--proc DIR", "(default: /proc)", "--version"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: no %q in\n%s", args, want, out)
			}
		}
	}
	for _, cmd := range docCommands(docApp()) {
		code, out, errOut := runCLI(t, nil, cmd.Name, "--help")
		if code != exitOK || errOut != "" {
			t.Fatalf("%s --help: exit %d, %s", cmd.Name, code, errOut)
		}
		checkHelpText(t, cmd.Name+" --help", out, 2)
		if !strings.Contains(out, "irqshift "+cmd.Name+" - ") || !strings.Contains(out, "--help, -h") {
			t.Errorf("%s --help lacks its name or --help:\n%s", cmd.Name, out)
		}
		if _, viaHelp, _ := runCLI(t, nil, "help", cmd.Name); viaHelp != out {
			t.Errorf("help %s differs from %s --help", cmd.Name, cmd.Name)
		}
	}
	// urfave/cli's own help command keeps its template: it must fit too.
	_, out, _ := runCLI(t, nil, "help", "help")
	for _, line := range strings.Split(out, "\n") {
		if len(line) > helpWidth {
			t.Errorf("help help: %q", line)
		}
	}
}

// TestHelpFlagsReadNaturally: a flag's value is named, and a default shows
// as typed.
func TestHelpFlagsReadNaturally(t *testing.T) {
	_, out, _ := runCLI(t, nil, "--help")
	for _, bad := range []string{" value ", "value]", `(default: "`, "(default: false)"} {
		if strings.Contains(out, bad) {
			t.Errorf("--help shows %q:\n%s", bad, out)
		}
	}
	_, out, _ = runCLI(t, nil, "watch", "--help")
	for _, want := range []string{"--ban-file FILE", "--check-interval DURATION", "(default: 30s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("watch --help lacks %q:\n%s", want, out)
		}
	}
}

// TestEveryValueFlagNamed: every flag that takes a value has a name for it
// in flagArgs (or a backquoted word in its usage), not VALUE.
func TestEveryValueFlagNamed(t *testing.T) {
	app := docApp()
	flags := appFlags(app)
	for _, cmd := range app.Commands {
		flags = append(flags, cmd.Flags...)
	}
	for _, f := range flags {
		if doc := flagDocOf(f); takesValue(f) && (doc.arg == "" || doc.arg == "VALUE") {
			t.Errorf("flag --%s takes a value without a name: add it to flagArgs", f.Names()[0])
		}
	}
}

// TestEveryCommandHasExamples: every visible command shows at least two
// examples (help.go's examples table, keyed by command name).
func TestEveryCommandHasExamples(t *testing.T) {
	app := docApp()
	for _, cmd := range docCommands(app) {
		if n := len(examplesOf(indexFlags(app), cmd)); n < 2 {
			t.Errorf("command %s has %d examples that fit it, want at least 2 (help.go, examples)", cmd.Name, n)
		}
	}
	if n := len(examplesOf(indexFlags(app), nil)); n < 3 {
		t.Errorf("irqshift --help has %d examples", n)
	}
}

// TestExamplesLeftOutOnlyForWhatIsComing: an example of a command in the
// app is left out only for a command or flag that is not there yet, not
// for a misspelt flag.
func TestExamplesLeftOutOnlyForWhatIsComing(t *testing.T) {
	coming := map[string]bool{"no command status": true, "no command version": true, "no flag -V": true}
	app := docApp()
	for name, exs := range examples {
		var cmd *cli.Command
		if name != "" {
			if cmd = app.Command(name); cmd == nil {
				continue // a command to come: its examples wait for it
			}
		}
		for _, ex := range exs {
			why := exampleFits(indexFlags(app), cmd, ex.line)
			if why != "" && !coming[why] {
				t.Errorf("example %q of %q is left out: %s", ex.line, name, why)
			}
			if len(ex.line)+3 > helpWidth || len(ex.comment)+5 > helpWidth {
				t.Errorf("example %q of %q is too wide for --help", ex.line, name)
			}
		}
	}
}

func TestExampleFits(t *testing.T) {
	app := docApp()
	drain := app.Command("drain")
	for _, tc := range []struct {
		cmd  *cli.Command
		line string
		want string
	}{
		{drain, "irqshift drain --dry-run 4-7", ""},
		{drain, "irqshift --state /x drain -n 4 | jq .", ""},
		{drain, "irqshift drain --bogus 4", "no flag --bogus"},
		{drain, "irqshift undrain 4", "no command undrain"},
		{app.Command("rebalance"), "irqshift rebalance 4", "rebalance takes no arguments"},
		{nil, "irqshift nosuch", "no command nosuch"},
		{nil, "irqshift help drain", ""},
		{drain, "systemctl reload irqshift", ""},
		{drain, "irqshift --state /x", ""},
	} {
		if got := exampleFits(indexFlags(app), tc.cmd, tc.line); got != tc.want {
			t.Errorf("exampleFits(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestWrapText(t *testing.T) {
	got := wrapText("short\n\n  an indented line that is much too long to fit in twenty", 2, 20)
	want := "  short\n\n    an indented line\n    that is much too\n    long to fit in\n    twenty"
	if got != want {
		t.Errorf("wrapText:\n%s\nwant\n%s", got, want)
	}
}
