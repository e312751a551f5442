package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
)

func manOutput(t *testing.T) string {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "man")
	if code != exitOK || errOut != "" {
		t.Fatalf("irqshift man: exit %d: %s", code, errOut)
	}
	return out
}

// TestManPageComplete: irqshift(8) has every section, every global flag,
// every visible command with its flags and examples, every key the
// settings resolver reads, the files and the exit codes.
func TestManPageComplete(t *testing.T) {
	page := manOutput(t)
	if !strings.HasPrefix(page, `.\"`) || !strings.Contains(page, "\n.TH irqshift 8 ") {
		t.Errorf("no .TH irqshift 8 header")
	}
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "DEVICE RULES", "ENVIRONMENT",
		"FILES", `"EXIT STATUS"`, "SIGNALS", `"JSON OUTPUT"`, "EXAMPLES", `"SEE ALSO"`} {
		title := strings.Trim(section, `"`)
		if !strings.Contains(page, "\n.SH "+title+"\n") && !strings.Contains(page, "\n.SH "+section+"\n") {
			t.Errorf("no section %s", title)
		}
	}
	app := docApp()
	for _, f := range appFlags(app) {
		for _, name := range f.Names() {
			if !strings.Contains(page, `\fB`+strings.ReplaceAll(dashed(name), "-", `\-`)+`\fR`) {
				t.Errorf("global flag %s missing", dashed(name))
			}
		}
	}
	for _, cmd := range docCommands(app) {
		_, rest, ok := strings.Cut(page, "\n.SS "+cmd.Name+"\n")
		if !ok {
			t.Errorf("command %s has no subsection", cmd.Name)
			continue
		}
		body, _, _ := strings.Cut(rest, "\n.S")
		for _, f := range visible(cmd.Flags) {
			if !strings.Contains(body, `\fB\-\-`+strings.ReplaceAll(f.Names()[0], "-", `\-`)+`\fR`) {
				t.Errorf("command %s: flag --%s missing", cmd.Name, f.Names()[0])
			}
		}
		for _, ex := range examplesOf(indexFlags(app), cmd) {
			if !strings.Contains(body, roffCode(ex.line)) {
				t.Errorf("command %s: example %q missing", cmd.Name, ex.line)
			}
		}
	}
	for _, s := range allSettings {
		if !strings.Contains(page, "\n.B "+s.key+"\n") {
			t.Errorf("ENVIRONMENT lacks %s", s.key)
		}
		if _, ok := settingDoc(app, s); !ok {
			t.Errorf("%s has neither a flag nor a line in settingDocs", s.key)
		}
	}
	for _, want := range []string{keyUnitArgs, "NOTIFY_SOCKET", "JOURNAL_STREAM",
		".I " + roffText(DefaultConfigPath) + "\n", ".I " + roffText(state.DefaultPath) + "\n",
		".I " + roffText(DefaultRulesDir) + "\n", ".I " + roffText(DefaultRulesDir+"/"+rules.PinsFile) + "\n",
		".I " + roffText(unitBanFile) + "\n", "/proc/irq/default_smp_affinity", "cpuset.cpus.isolated",
		"\n.B 0\n", "\n.B 1\n", "\n.B 2\n", "\n.B 3\n", "\n.B SIGHUP\n", "SIGTERM", "JSON.md.gz",
		".BR irqbalance (1)", ".BR lsirq (1)", ".BR systemd.exec (5)", ".BR journalctl (1)", ".BR tuna (8)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the man page lacks %q", want)
		}
	}
	// Outside the rules' format (kept as written), every dash of an
	// option is a minus: no "--" is left.
	before, _, _ := strings.Cut(page, "\n.SH DEVICE RULES\n")
	_, after, _ := strings.Cut(page, "\n.SH ENVIRONMENT\n")
	if strings.Contains(before+after, "--") {
		for i, line := range strings.Split(before+after, "\n") {
			if strings.Contains(line, "--") {
				t.Errorf("line %d has an unescaped --: %q", i+1, line)
			}
		}
	}
}

// TestManPageFormatsCleanly: man (as lintian runs it) and groff print no
// warning for the page; skipped where neither is installed.
func TestManPageFormatsCleanly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "irqshift.8")
	if err := os.WriteFile(path, []byte(manOutput(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	if _, err := exec.LookPath("man"); err == nil {
		ran = true
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man --warnings: %v\n%s", err, stderr.String())
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		ran = true
		cmd := exec.Command("groff", "-ww", "-man", "-Tutf8", "-z", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff -ww: %v\n%s", err, stderr.String())
		}
		// Rendered at 80 columns, no line is longer (the rules' format is
		// kept as written).
		cmd = exec.Command("groff", "-man", "-Tutf8", "-P-cbou", "-rLL=78n", path)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if n := len([]rune(line)); n > 80 {
				t.Errorf("rendered line of %d columns: %q", n, line)
			}
		}
	}
	if !ran {
		t.Skip("neither man nor groff is installed: the page is not formatted (packaging/test-deb.sh runs lintian, which does)")
	}
}

// TestManFilesMatchUnit: the files the man page names are those the unit
// uses.
func TestManFilesMatchUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("systemd", "irqshift.service.in"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--ban-file " + unitBanFile, "--state " + state.DefaultPath, "EnvironmentFile=-" + DefaultConfigPath} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("systemd/irqshift.service.in has no %q, which the man page says", want)
		}
	}
}

func TestRoffEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--dry-run keeps round-robin CPUs 2-3", `\-\-dry\-run keeps round-robin CPUs 2\-3`},
		{".starts with a dot", `\&.starts with a dot`},
		{`a \ backslash`, `a \e backslash`},
		{"(--verify) and per-CPU", `(\-\-verify) and per-CPU`},
	} {
		if got := roffText(tc.in); got != tc.want {
			t.Errorf("roffText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := roffCode(`irqshift list --name 'nvme*' ~/x`), `irqshift list \-\-name \(aqnvme*\(aq \(ti/x`; got != want {
		t.Errorf("roffCode = %q, want %q", got, want)
	}
}
