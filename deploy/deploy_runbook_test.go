package deploy

// The alerts' runbook: each alert of prometheus/alerts.yaml links to its own section of
// docs/RUNBOOK.md, at a URL of this repository's main branch.

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

const (
	runbookPath = "../docs/RUNBOOK.md"
	// repoURL is where the files of this repository are on GitHub's main branch; a runbook_url
	// is repoURL + "docs/RUNBOOK.md#" + the alert's section.
	repoURL = "https://github.com/irqshift/irqshift/blob/main/"
)

// githubAnchor is the anchor GitHub gives a Markdown heading: its text (a link's text, without
// the markup of code and emphasis) in lower case, with spaces turned into hyphens and every
// other character but letters, digits, hyphens and underscores dropped.
func githubAnchor(heading string) string {
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var atxHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)(?:\s+#+)?\s*$`)

// markdownAnchors returns the anchors of a Markdown file's headings (outside fenced code), a
// heading's second and later namesakes with GitHub's -1, -2, …, mapped to their heading's text.
func markdownAnchors(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	seen := map[string]int{}
	fence := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := githubAnchor(m[1])
		if n := seen[a]; n > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		out[a] = m[1]
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGithubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"IrqshiftDown": "irqshiftdown",
		"Runtime isolation: CPUs that leave without going offline": "runtime-isolation-cpus-that-leave-without-going-offline",
		"Reading and writing the kernel's files":                   "reading-and-writing-the-kernels-files",
		"The daemon: `irqshift watch` and the systemd service":     "the-daemon-irqshift-watch-and-the-systemd-service",
		"Snapshot + plan": "snapshot--plan",
		"/proc/interrupts: our parser against prometheus/procfs": "procinterrupts-our-parser-against-prometheusprocfs",
		"A [linked](https://example.com) heading_x":              "a-linked-heading_x",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestRunbookURLs: every alert has a runbook_url, repoURL's docs/RUNBOOK.md (the module's own
// repository, a file of this tree) at the anchor of a heading named as the alert; every section
// of the runbook named like an alert is one of alerts.yaml.
func TestRunbookURLs(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(mod), "\n", 2)[0], "module"))
	if !strings.HasPrefix(repoURL, "https://"+module+"/blob/main/") {
		t.Errorf("repoURL %s is not the module %s's main branch", repoURL, module)
	}
	runbookFile, _ := filepath.Rel("..", runbookPath)
	wantBase := repoURL + filepath.ToSlash(runbookFile)
	anchors := markdownAnchors(t, runbookPath)

	rules := readAlerts(t)
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			url := r.Annotations["runbook_url"]
			base, anchor, _ := strings.Cut(url, "#")
			if base != wantBase {
				t.Errorf("%s: runbook_url %q, want %s#…", r.Alert, url, wantBase)
				continue
			}
			heading, ok := anchors[anchor]
			if !ok {
				t.Errorf("%s: runbook_url's anchor #%s is no heading of %s", r.Alert, anchor, runbookPath)
				continue
			}
			if heading != r.Alert {
				t.Errorf("%s: runbook_url points at the section %q, not its own", r.Alert, heading)
			}
		}
	}
	for _, heading := range anchors {
		if strings.HasPrefix(heading, "Irqshift") && !alerts[heading] {
			t.Errorf("%s has a section %q, which is no alert of %s", runbookPath, heading, alertsPath)
		}
	}
}

// TestOperatorDocLinks: the relative links of the runbook and of FLEET.md lead to files of the
// tree, and their anchors to headings of the Markdown file they name.
func TestOperatorDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]*)\)`)
	for _, doc := range []string{runbookPath, "../docs/FLEET.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			file, anchor, _ := strings.Cut(target, "#")
			if file == "" {
				file = doc
			} else {
				file = path.Join(path.Dir(doc), file)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %s: %v", doc, target, err)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				t.Errorf("%s: link %s: an anchor into a file that is not Markdown", doc, target)
				continue
			}
			if _, ok := markdownAnchors(t, file)[anchor]; !ok {
				t.Errorf("%s: link %s: no heading of %s has the anchor #%s", doc, target, file, anchor)
			}
		}
		if n == 0 {
			t.Errorf("%s: no relative links found", doc)
		}
	}
}
