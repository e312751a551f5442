package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds every wait for a screen: no pass or fail depends on
// timing, only a hung binary ends the test this way.
const hangGuard = 20 * time.Second

// TestTopInTerminal runs `irqshift top` in a real terminal (a tmux pane)
// on a copy of a fixture tree whose /proc/interrupts the test makes grow:
// the frame shows the CPUs and the IRQ that fires, the keys sort the
// table, pause it and quit, a resize redraws at the new width, and after q
// and after Ctrl-C the process has ended and the terminal is as it was
// (cooked mode, the normal screen with what it showed, the cursor).
func TestTopInTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed, so no real terminal to drive top in (.ci/run installs it: apt-get install tmux)")
	}
	root := copyTree(t, "vm4-6.12")
	dir := t.TempDir()
	top := fmt.Sprintf("%s --proc %s --sys %s top", binary, filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	// The pane's script keeps the terminal's settings before and after
	// each run, and says how each ended; `read` waits for the test
	// between the two runs.
	script := strings.Join([]string{
		"stty -g > " + filepath.Join(dir, "stty.before"),
		"echo BEFORE-TOP",
		top,
		`echo "TOP-EXITED $?"`,
		"stty -g > " + filepath.Join(dir, "stty.after-q"),
		"read line",
		top + " --sort name",
		`echo "TOP-EXITED-AGAIN $?"`,
		"stty -g > " + filepath.Join(dir, "stty.after-ctrl-c"),
		"exec sleep 600",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "pane.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	pane := newTmux(t, filepath.Join(dir, "tmux.sock"), 100, 30, "sh "+filepath.Join(dir, "pane.sh"))

	// The first frame: the CPUs of the fixture's node 0 and the IRQ table.
	pane.waitFor("the first frame", func(s string) bool {
		return strings.Contains(s, "irqshift top") && strings.Contains(s, "node 0:") && strings.Contains(s, "IRQ  INT/S")
	})
	// virtio1-input (IRQ 21, effective CPU 1) fires: its row shows a rate.
	interrupts := filepath.Join(root, "proc", "interrupts")
	count := 2
	firing := regexp.MustCompile(`(?m)^\s+21\s+([0-9.]+k?)\s+1\s+.*virtio1-input\s*$`)
	pane.waitFor("IRQ 21 firing on CPU 1", func(s string) bool {
		count += 50
		bumpIRQ21(t, interrupts, count)
		m := firing.FindStringSubmatch(s)
		return m != nil && m[1] != "0"
	})
	for _, step := range []struct{ key, want string }{{"i", "sort: irq"}, {"c", "sort: cpu"}, {"n", "sort: name"}, {"r", "sort: rate"}, {"p", "PAUSED"}} {
		pane.send(step.key)
		pane.waitFor("key "+step.key+": "+step.want, func(s string) bool { return strings.Contains(s, step.want) })
	}
	pane.send("p")
	pane.waitFor("unpaused", func(s string) bool { return strings.Contains(s, "sort: rate") && !strings.Contains(s, "PAUSED") })
	// A narrower terminal: the frame is drawn again at its width.
	pane.tmux("resize-window", "-t", "top", "-x", "60", "-y", "20")
	pane.waitFor("the frame at 60 columns", func(s string) bool {
		if !strings.Contains(s, "irqshift top") || strings.Contains(s, "IRQs fired") {
			return false
		}
		for _, line := range strings.Split(s, "\n") {
			if len([]rune(strings.TrimRight(line, " "))) > 60 {
				return false
			}
		}
		return true
	})

	pane.send("q")
	after := pane.waitFor("top to exit after q", func(s string) bool { return strings.Contains(s, "TOP-EXITED") })
	if !strings.Contains(after, "TOP-EXITED 0") {
		t.Errorf("after q, want exit status 0:\n%s", after)
	}
	pane.checkRestored(after, filepath.Join(dir, "stty.before"), filepath.Join(dir, "stty.after-q"))

	// Again, ended with Ctrl-C, which raw mode delivers as a key.
	pane.send("Enter")
	pane.waitFor("the second run, sorted by name", func(s string) bool {
		return strings.Contains(s, "sort: name") && strings.Contains(s, "IRQ  INT/S")
	})
	pane.send("C-c")
	after = pane.waitFor("top to exit after Ctrl-C", func(s string) bool { return strings.Contains(s, "TOP-EXITED-AGAIN") })
	if !strings.Contains(after, "TOP-EXITED-AGAIN 0") {
		t.Errorf("after Ctrl-C, want exit status 0:\n%s", after)
	}
	pane.checkRestored(after, filepath.Join(dir, "stty.before"), filepath.Join(dir, "stty.after-ctrl-c"))
}

// bumpIRQ21 sets the count of IRQ 21 on CPU 1 in a fixture's
// /proc/interrupts, replacing the file at once (a rename), so that top
// never reads half of it.
func bumpIRQ21(t *testing.T, path string, count int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	done := false
	for i, line := range lines {
		// " 21:" and four counts of " %10d", as show_interrupts prints them.
		const head, counts = len(" 21:"), 4 * 11
		if strings.HasPrefix(line, " 21:") && len(line) > head+counts {
			lines[i] = fmt.Sprintf(" 21: %10d %10d %10d %10d", 0, count, 0, 0) + line[head+counts:]
			done = true
		}
	}
	if !done {
		t.Fatalf("%s has no row for IRQ 21", path)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tmuxPane is a detached tmux session of one pane, on a server of its own.
type tmuxPane struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T, sock string, width, height int, command string) *tmuxPane {
	t.Helper()
	p := &tmuxPane{t: t, sock: sock}
	// -f /dev/null: none of the machine's tmux configuration.
	if out, err := exec.Command("tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "top",
		"-x", fmt.Sprint(width), "-y", fmt.Sprint(height), command).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	return p
}

// tmux runs a tmux command on the pane's server and returns its output.
func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// send types a key (tmux's names: "q", "Enter", "C-c").
func (p *tmuxPane) send(key string) { p.tmux("send-keys", "-t", "top", key) }

// screen is what the pane shows now.
func (p *tmuxPane) screen() string { return p.tmux("capture-pane", "-p", "-t", "top") }

// waitFor polls the screen until ok says it is the one wanted, and returns
// it; after hangGuard it fails the test with the last screen.
func (p *tmuxPane) waitFor(what string, ok func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		s := p.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %s for %s; the screen:\n%s", hangGuard, what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkRestored asserts that top left the terminal as it found it: the
// normal screen with what the script printed before top, the cursor
// shown, and the settings stty saw before (so not raw mode).
func (p *tmuxPane) checkRestored(screen, before, after string) {
	p.t.Helper()
	if !strings.Contains(screen, "BEFORE-TOP") || strings.Contains(screen, "IRQ  INT/S") {
		p.t.Errorf("the normal screen is not back (want the line printed before top and no frame):\n%s", screen)
	}
	if got := strings.TrimSpace(p.tmux("display-message", "-p", "-t", "top", "#{alternate_on} #{cursor_flag}")); got != "0 1" {
		p.t.Errorf("alternate screen and cursor flags %q, want \"0 1\" (normal screen, cursor shown)", got)
	}
	var settings [2][]byte
	for i, path := range []string{before, after} {
		deadline := time.Now().Add(hangGuard)
		for {
			data, err := os.ReadFile(path)
			if err == nil && len(bytes.TrimSpace(data)) > 0 {
				settings[i] = data
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("no terminal settings in %s: %v", path, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !bytes.Equal(settings[0], settings[1]) {
		p.t.Errorf("terminal settings after top differ from before (raw mode left on?):\nbefore %s\nafter  %s", settings[0], settings[1])
	}
}
