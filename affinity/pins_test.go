package affinity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/irqshift/irqshift/state"
)

func TestLearnPins(t *testing.T) {
	online := cpus("0-3")
	irqs := []IRQ{
		movableOn(20, "0-3"), // default mask: not a pin
		movableOn(21, "2"),   // set by hand
		movableOn(22, "1"),   // written by irqshift
		movableOn(23, "2-3"), // set by hand
		{IRQ: 24, Actions: []string{"q"}, Affinity: cpus("3"), Class: ClassManaged},
	}
	written := Written{Key(irqs[2]): cpus("1")}
	pins := Pins{}
	learned := pins.LearnPins(irqs, online, online, written)
	if len(learned) != 2 || learned[0].IRQ != 21 || learned[1].IRQ != 23 || learned[1].CPUs.String() != "2-3" {
		t.Fatalf("learned %+v, want pins of 21 and 23", learned)
	}
	if again := pins.LearnPins(irqs, online, online, written); len(again) != 0 {
		t.Errorf("second learn reported %+v as new", again)
	}
	// The kernel offlines CPU2 and overwrites 21's mask with the online
	// mask: the pin must survive.
	irqs[1].Affinity = cpus("0-1,3")
	if again := pins.LearnPins(irqs, cpus("0-1,3"), online, written); len(again) != 0 || pins[Key(irqs[1])].CPUs.String() != "2" {
		t.Errorf("kernel overwrite changed the pin: learned %+v, pin %v", again, pins[Key(irqs[1])])
	}
	// CPU2 returns; the kernel left "0-1,3", which no longer covers the
	// online CPUs but is not a pin either.
	if again := pins.LearnPins(irqs, online, online, written); len(again) != 0 || pins[Key(irqs[1])].CPUs.String() != "2" {
		t.Errorf("kernel's stale online mask learned as a pin: %+v", again)
	}
	// irqshift, killed before saving its state, had moved IRQ 21 to "1"
	// while CPU2 was offline: a displaced pin is not replaced.
	irqs[1].Affinity = cpus("1")
	if again := pins.LearnPins(irqs, cpus("0-1,3"), online, written); len(again) != 0 || pins[Key(irqs[1])].CPUs.String() != "2" {
		t.Errorf("displaced pin replaced: %+v", again)
	}
	irqs[1].Affinity = cpus("0-1,3")
	// The admin re-pins 23 to 1.
	irqs[3].Affinity = cpus("1")
	if again := pins.LearnPins(irqs, online, online, written); len(again) != 1 || pins[Key(irqs[3])].CPUs.String() != "1" {
		t.Errorf("new pin not learned: %+v", again)
	}
	// Without irqshift watching, the kernel broke a pin of IRQ 25 to CPU2
	// and CPU2 came back: "0-1,3" is the kernel's, not the admin's.
	broken := []IRQ{movableOn(25, "0-1,3")}
	if again := pins.LearnPins(broken, online, online, written); len(again) != 0 {
		t.Errorf("the kernel's overwrite learned as a pin: %+v", again)
	}
	if !pins.Forget(23) || pins.Forget(23) {
		t.Error("Forget(23) should drop the pin once")
	}
}

func TestRebalanceWithPins(t *testing.T) {
	irqs := []IRQ{movableOn(20, "0"), movableOn(21, "0-1,3"), movableOn(22, "0"), movableOn(23, "1")}
	p := Planner{Pins: Pins{Key(irqs[1]): {IRQ: 21, CPUs: cpus("2")}, Key(irqs[3]): {IRQ: 23, CPUs: cpus("1")}}}
	plan, err := p.Rebalance(irqs, cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, m := range plan.Moves {
		got[m.IRQ] = m.To.String()
	}
	if got[21] != "2" {
		t.Errorf("pinned IRQ 21 not restored to 2: %v", got)
	}
	if _, moved := got[23]; moved {
		t.Errorf("IRQ 23 sits on its pin and must stay: %v", got)
	}
	var pinnedSkip bool
	for _, s := range plan.Skipped {
		pinnedSkip = pinnedSkip || (s.IRQ == 23 && s.Class == SkipPinned)
	}
	if !pinnedSkip {
		t.Errorf("IRQ 23 not reported as pinned: %+v", plan.Skipped)
	}
	// With the pin's CPU offline the IRQ is spread like the others.
	plan, _ = p.Rebalance(irqs, cpus("0-1,3"))
	for _, m := range plan.Moves {
		if m.IRQ == 21 && m.To.Contains(2) {
			t.Errorf("moved to offline CPU 2: %+v", m)
		}
	}
	// --include-pinned treats them as any other.
	p.IncludePinned = true
	plan, _ = p.Rebalance(irqs, cpus("0-3"))
	for _, s := range plan.Skipped {
		if s.Class == SkipPinned {
			t.Errorf("include-pinned still skipped %+v", s)
		}
	}
}

func TestDrainWithinPin(t *testing.T) {
	irqs := []IRQ{movableOn(20, "3"), movableOn(21, "3")}
	p := Planner{Pins: Pins{Key(irqs[0]): {IRQ: 20, CPUs: cpus("2-3")}}}
	plan, err := p.Drain(irqs, cpus("3"), cpus("0-3"))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Moves[0].IRQ != 20 || plan.Moves[0].To.String() != "2" {
		t.Errorf("pinned IRQ should stay within its pin: %+v", plan.Moves[0])
	}
	if plan.Moves[1].To.Contains(3) {
		t.Errorf("drained CPU used: %+v", plan.Moves[1])
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	s, err := loadState(t, path)
	if err != nil || len(s.Pins) != 0 {
		t.Fatalf("missing file: %+v, %v; want empty state, no error", s, err)
	}
	e := NewEngine(EngineConfig{})
	e.Restore(s)
	e.planner.Cursor.Next = 3
	e.planner.Pins["21/GICv3/uart"] = Pin{IRQ: 21, CPUs: cpus("2")}
	e.written["22/GICv3/rtc"] = cpus("1")
	e.memory["26/ITS-MSI/virtio2-req.2"] = "managed"
	if err := saveState(t, path, e.Saved()); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Cursor.Next != 3 || back.Pins["21/GICv3/uart"].CPUs.String() != "2" || back.Written["22/GICv3/rtc"].String() != "1" ||
		back.Managed["26/ITS-MSI/virtio2-req.2"] != "managed" || back.Version != state.FormatVersion {
		t.Errorf("round trip = %+v", back)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func loadState(t *testing.T, path string) (state.Saved, error) {
	t.Helper()
	st, err := state.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Load()
}

func saveState(t *testing.T, path string, s state.Saved) error {
	t.Helper()
	st, err := state.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Save(s)
}
