package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/state"
)

// TestStatus: status says whether a daemon owns the state and what it
// last did (from the status file it keeps), the bans, drains and pins,
// and lists the IRQs on CPUs they should not be on, with exit 3.
func TestStatus(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	statePath := filepath.Join(t.TempDir(), "state.json")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", statePath}, args...)...)
	}
	// An operator drains CPU 3 and pins the uart to CPU 2; then bans CPU 1
	// without rebalancing.
	if code, _, stderr := cli("drain", "3"); code != 0 {
		t.Fatalf("drain 3: exit %d: %s", code, stderr)
	}
	if code, _, stderr := cli("pin", "13", "2"); code != 0 {
		t.Fatalf("pin 13 2: exit %d: %s", code, stderr)
	}
	// A fixture's effective_affinity_list does not follow the writes, as
	// with a chip that has not moved the IRQs yet: the uart still fires on
	// CPU 0 and virtio0-config on the drained CPU 3.
	code, out, stderr := cli("status")
	if code != exitUnmovable {
		t.Errorf("status: exit %d, want 3: %s\n%s", code, stderr, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`daemon: not running \(no irqshift watch owns\s+` + regexp.QuoteMeta(statePath) + `\)`),
		regexp.MustCompile(`(?m)^CPUs: online 0-3, allowed 0-2\n  drained 3 \(drain\)$`),
		regexp.MustCompile(`(?m)^pins: IRQ 13 on 2$`),
		regexp.MustCompile(`(?m)^13 +uart-pl011 +0 +2 +pin: restore pin 2$`),
		regexp.MustCompile(`(?m)^28 +virtio0-config +3 +[0-2] +drain: on drained CPU 3$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status lacks /%s/:\n%s", want, out)
		}
	}
	// The chip delivers them where the masks say: nothing is misplaced.
	for _, irq := range []string{"13", "28"} {
		mask := readTrim(t, filepath.Join(proc, "irq", irq, "smp_affinity_list"))
		writeFile(t, filepath.Join(proc, "irq", irq, "effective_affinity_list"), mask+"\n")
	}
	if code, out, _ = cli("status"); code != 0 || !strings.Contains(out, "IRQs on CPUs they should not be on: none\n") {
		t.Errorf("status once the IRQs are where their masks say: exit %d\n%s", code, out)
	}

	// A daemon holds the state and recorded a settle.
	store, err := state.OpenStore(statePath)
	if err != nil {
		t.Fatal(err)
	}
	release, err := store.ClaimDaemon()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	now := time.Now()
	if err := store.SaveStatus(state.DaemonStatus{PID: os.Getpid(), Started: now.Add(-time.Hour), Irqshift: "9.9.9", Settles: 7,
		Last:     &state.SettleStamp{Time: now.Add(-30 * time.Second), Reason: "offline", Moved: 3, Narrowed: 1, ReactionMS: 4.2},
		Reaction: state.ReactionSummary{Count: 5, P50MS: 4.1, P90MS: 6.3, MaxMS: 9.8}}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli("--banned-cpus", "1", "status")
	if code != exitUnmovable {
		t.Errorf("status with IRQs on a banned CPU: exit %d, want 3", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^daemon: running, PID \d+, irqshift 9\.9\.9, up 1h[0-9]+m[0-9]+s\nstate: ` + regexp.QuoteMeta(statePath) + `$`),
		regexp.MustCompile(`(?m)^last settle (3[0-9]|[4-9][0-9]|[0-9]+m[0-9]+)s ago \(offline, quick, 4\.2 ms\): moved 3, narrowed 1, failed 0$`),
		regexp.MustCompile(`(?m)^reaction since start: 5 settles, p50 4\.1 ms, p90 6\.3 ms, max 9\.8 ms$`),
		regexp.MustCompile(`(?m)^  banned 1 \(config\)$`),
		regexp.MustCompile(`(?m)^21 +virtio1-input +1 +[02] +ban: on banned CPU 1 \(config\)$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status lacks /%s/:\n%s", want, out)
		}
	}

	code, out, _ = cli("--banned-cpus", "1", "status", "--json")
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitUnmovable {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if !doc.Daemon.Running || doc.Daemon.PID != os.Getpid() || doc.Daemon.Status == nil || doc.Daemon.Status.Reaction.P90MS != 6.3 ||
		len(doc.Pins) != 1 || doc.Pins[0].IRQ != 13 || doc.CPUs.DrainBy["3"] != "drain" || doc.Version != version {
		t.Errorf("status --json: %+v", doc)
	}
	misplaced := map[int]string{}
	for _, m := range doc.Misplaced {
		misplaced[m.IRQ] = string(m.Cause)
	}
	if misplaced[21] != "ban" || misplaced[13] != "" {
		t.Errorf("status --json misplaced %v, want IRQ 21 for the ban and not the pinned 13", misplaced)
	}
}
