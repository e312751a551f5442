package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// logfmtLine parses one line of slog's text handler into its keys.
func logfmtLine(t *testing.T, line string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			t.Fatalf("not logfmt: %q", line)
		}
		value := after
		if strings.HasPrefix(after, `"`) {
			quoted, err := strconv.QuotedPrefix(after)
			if err != nil {
				t.Fatalf("bad quoting in %q: %v", line, err)
			}
			value, _ = strconv.Unquote(quoted)
			rest = after[len(quoted):]
		} else {
			value, rest, _ = strings.Cut(after, " ")
		}
		kv[key] = value
	}
	return kv
}

// writeLines returns the per-write lines (moved, narrowed) of log, by IRQ,
// up to the first settle's own line (which follows its writes).
func writeLines(t *testing.T, log string) map[int]map[string]string {
	t.Helper()
	out := map[int]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		kv := logfmtLine(t, line)
		if kv["msg"] == "settled" {
			break
		}
		if kv["msg"] != "moved" && kv["msg"] != "narrowed" {
			continue
		}
		n, err := strconv.Atoi(kv["irq"])
		if err != nil {
			t.Fatalf("write line without an IRQ: %q", line)
		}
		if _, dup := out[n]; dup {
			t.Errorf("two write lines for IRQ %d in one settle", n)
		}
		out[n] = kv
	}
	return out
}

// TestSettleLogsEachWrite checks that every write of a settle has its own
// line, naming the IRQ, its actions, its mask before and after, where it
// fires, and why: the offline of a CPU, then a pin put back.
func TestSettleLogsEachWrite(t *testing.T) {
	log := &syncBuffer{}
	h := startHarness(t, sysfstest.Kernel612, "", func(d *Daemon) {
		d.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// The admin pins the uart (IRQ 13) to CPU3 by hand; a resync learns it.
	if err := h.sim.WriteAffinity(13, sysfs.NewCPUSet(3)); err != nil {
		t.Fatal(err)
	}
	h.src.push(hotplug.Event{Resync: true, Reason: hotplug.ReasonPeriodic, CPU: -1})
	h.next()

	check := func(s Settle, mark int, want affinity.CauseKind, wantIRQ int) {
		t.Helper()
		lines := writeLines(t, log.String()[mark:])
		before := map[int]affinity.IRQ{}
		for _, irq := range s.State.IRQs {
			before[irq.IRQ] = irq
		}
		wrote := 0
		for _, r := range s.Results {
			if !r.Wrote() {
				continue
			}
			wrote++
			kv, ok := lines[r.IRQ]
			if !ok {
				t.Errorf("settle %s: IRQ %d written to %s with no log line", s.Reason, r.IRQ, r.To)
				continue
			}
			irq := before[r.IRQ]
			if kv["before"] != irq.Affinity.String() || kv["after"] != r.To.String() || kv["settle"] != string(s.Reason) ||
				kv["actions"] != strings.Join(irq.Actions, ",") || kv["why"] == "" {
				t.Errorf("settle %s, IRQ %d (mask %s → %s): line %v", s.Reason, r.IRQ, irq.Affinity, r.To, kv)
			}
			if r.Status == affinity.StatusNarrowed && kv["msg"] != "narrowed" || r.Status == affinity.StatusMoved && kv["msg"] != "moved" {
				t.Errorf("IRQ %d status %s logged as %q", r.IRQ, r.Status, kv["msg"])
			}
		}
		if wrote == 0 || len(lines) != wrote {
			t.Errorf("settle %s: %d writes, %d write lines", s.Reason, wrote, len(lines))
		}
		if kv, ok := lines[wantIRQ]; !ok || kv["reason"] != string(want) {
			t.Errorf("settle %s: IRQ %d line %v, want reason=%s", s.Reason, wantIRQ, kv, want)
		}
	}

	// CPU3 goes away: what the kernel moved off it is placed again.
	if err := h.sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	mark := len(log.String())
	h.src.push(cpuEvent(hotplug.Offline, 3))
	s := h.next()
	check(s, mark, affinity.CauseOffline, 13)
	for n, kv := range writeLines(t, log.String()[mark:]) {
		if kv["msg"] == "moved" && kv["reason"] != string(affinity.CauseOffline) {
			t.Errorf("IRQ %d moved in the offline settle with reason %q (%s)", n, kv["reason"], kv["why"])
		}
	}

	// CPU3 returns: the pin is put back, and says so.
	if err := h.sim.SetCPUOnline(3, true); err != nil {
		t.Fatal(err)
	}
	mark = len(log.String())
	h.src.push(cpuEvent(hotplug.Online, 3))
	s = h.next()
	check(s, mark, affinity.CausePin, 13)
}

// TestDryRunWritesNothing runs the daemon as an observer beside the one
// that owns the state: it logs every write it would make, at start and
// after an offline, and writes no mask and no state.
func TestDryRunWritesNothing(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	statePath := filepath.Join(t.TempDir(), "state.json")
	owner, err := state.OpenStore(statePath)
	if err != nil {
		t.Fatal(err)
	}
	release, err := owner.ClaimDaemon()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	before, err := os.ReadFile(statePath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	writes := len(sim.Writes())

	log := &syncBuffer{}
	h := startOn(t, sim, statePath, func(d *Daemon) {
		d.DryRun = true
		d.Engine.SetDryRun(true)
		d.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if err := sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 3))
	s := h.next()
	h.stop()

	if n := len(sim.Writes()) - writes; n != 0 {
		t.Errorf("the dry run wrote %d masks", n)
	}
	if after, err := os.ReadFile(statePath); string(after) != string(before) || (err != nil) != (before == nil) {
		t.Errorf("the dry run changed the state file: %q → %q (%v)", before, after, err)
	}
	would := 0
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		kv := logfmtLine(t, line)
		switch kv["msg"] {
		case "moved", "narrowed":
			t.Errorf("a dry run logged %q", line)
		case "would move":
			would++
		case "settled":
			if kv["dry_run"] != "true" {
				t.Errorf("settle line without dry_run=true: %q", line)
			}
		}
	}
	if would == 0 {
		t.Errorf("the dry run logged no move it would make:\n%s", log.String())
	}
	// What it would do after the offline is what a real daemon does: the
	// IRQs the kernel moved off CPU3 are placed again.
	if len(s.Results) == 0 {
		t.Errorf("the offline settle planned no write")
	}
}
