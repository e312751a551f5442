package state

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func TestStateNewSavedMaps(t *testing.T) {
	s := NewSaved()
	if s.Pins == nil || s.Written == nil || s.Managed == nil || s.Drained == nil || s.Version != FormatVersion {
		t.Errorf("NewSaved() = %+v, want every map made and version %d", s, FormatVersion)
	}
}

func TestDrainsCPUs(t *testing.T) {
	d := Drains{3: DrainByDrain, 1: DrainByOffline, 70: DrainByDrain, -1: DrainByDrain}
	if got := d.CPUs().String(); got != "1,3,70" {
		t.Errorf("CPUs() = %s, want 1,3,70", got)
	}
	if got := (Drains(nil)).CPUs(); !got.IsEmpty() {
		t.Errorf("nil Drains: CPUs() = %s, want empty", got)
	}
}

func TestStateDrainedRoundTrip(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSaved()
	s.Drained[2] = DrainByDrain
	s.Drained[5] = DrainByOffline
	s.DaemonBanned = sysfs.NewCPUSet(0, 7)
	if err := st.Save(s); err != nil {
		t.Fatal(err)
	}
	back, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if back.Drained[2] != DrainByDrain || back.Drained[5] != DrainByOffline || len(back.Drained) != 2 {
		t.Errorf("drained = %v", back.Drained)
	}
	if back.DaemonBanned.String() != "0,7" {
		t.Errorf("daemon_banned = %s, want 0,7", back.DaemonBanned)
	}
}

func TestStateOldFileReadsFine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	writeFile(t, path, `{"version": 1, "cursor": {"next": 2}, "pins": {"21/GICv3/uart": {"irq": 21, "cpus": [2]}}, "written": {}, "managed": {}}`)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Load()
	if err != nil {
		t.Fatalf("a version 1 file without drained/daemon_banned: %v", err)
	}
	if s.Drained == nil || len(s.Drained) != 0 || !s.DaemonBanned.IsEmpty() || s.Pins["21/GICv3/uart"].IRQ != 21 {
		t.Errorf("state = %+v", s)
	}
}

func TestPrune(t *testing.T) {
	s := NewSaved()
	present := map[string]bool{}
	// 1000 IRQs were seen; 0–499 are still there as they were.
	for n := range 1000 {
		key := fmt.Sprintf("%d/ITS-MSI/dev%d", n, n)
		s.Written[key] = sysfs.NewCPUSet(n % 4)
		s.Managed[key] = "managed"
		s.Pins[key] = Pin{IRQ: n, CPUs: sysfs.NewCPUSet(n % 4)}
		if n < 500 {
			present[key] = true
		}
	}
	// 500–749 now belong to other devices (numbers reused); 750–999 are
	// gone entirely (driver unloaded).
	for n := 500; n < 750; n++ {
		present[fmt.Sprintf("%d/ITS-MSI/other%d", n, n)] = true
	}
	s.Prune(present)

	if len(s.Written) != 500 || len(s.Managed) != 500 {
		t.Errorf("written %d, managed %d entries; want 500 each", len(s.Written), len(s.Managed))
	}
	for key := range s.Written {
		if !present[key] {
			t.Errorf("written entry %s kept for an absent IRQ", key)
		}
	}
	for key := range s.Managed {
		if !present[key] {
			t.Errorf("managed entry %s kept for an absent IRQ", key)
		}
	}
	if len(s.Pins) != 750 {
		t.Errorf("%d pins, want 750 (500 present, 250 of IRQ numbers gone entirely)", len(s.Pins))
	}
	for n := range 1000 {
		key := fmt.Sprintf("%d/ITS-MSI/dev%d", n, n)
		_, kept := s.Pins[key]
		if want := n < 500 || n >= 750; kept != want {
			t.Errorf("pin %s kept = %v, want %v", key, kept, want)
		}
	}
}

func TestPruneNothingPresent(t *testing.T) {
	s := NewSaved()
	s.Written["1/GICv3/a"] = sysfs.NewCPUSet(1)
	s.Managed["1/GICv3/a"] = "managed"
	s.Pins["1/GICv3/a"] = Pin{IRQ: 1, CPUs: sysfs.NewCPUSet(1)}
	s.Prune(nil)
	if len(s.Written) != 1 || len(s.Managed) != 1 || len(s.Pins) != 1 {
		t.Errorf("Prune(nil) pruned: %+v", s)
	}
	var zero Saved
	zero.Prune(map[string]bool{"1/GICv3/a": true}) // nil maps: no panic
}
