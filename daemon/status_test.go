package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// TestDaemonRecordsStatus: each settle replaces the status file beside
// the state with the daemon's PID, its last settle and its reaction
// times, which irqshift status reads.
func TestDaemonRecordsStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	h := startHarness(t, sysfstest.Kernel612, path, func(d *Daemon) { d.Version = "1.2.3" })
	if err := h.sim.SetCPUOnline(3, false); err != nil {
		t.Fatal(err)
	}
	h.src.push(cpuEvent(hotplug.Offline, 3))
	s := h.next()

	store, err := state.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.LoadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if got.PID != os.Getpid() || got.Irqshift != "1.2.3" || got.Started.IsZero() || got.Settles < 2 || got.Last == nil {
		t.Fatalf("status %+v", got)
	}
	// The offline's quick settle, or the recheck after it.
	if got.Last.Reason != string(SettleOffline) && got.Last.Reason != string(SettleRecheck) {
		t.Errorf("last settle %+v, want the offline or its recheck", got.Last)
	}
	if got.Reaction.Count != 1 || got.Reaction.P50MS <= 0 || got.Reaction.P50MS != float64(s.Reaction.Microseconds())/1000 {
		t.Errorf("reaction %+v, want the offline's %v", got.Reaction, s.Reaction)
	}
}

func TestReactionPercentiles(t *testing.T) {
	var r statusRecord
	for i := 1; i <= 100; i++ {
		r.addReaction(float64(i))
	}
	if got := r.summary(); got.Count != 100 || got.P50MS != 50 || got.P90MS != 90 || got.MaxMS != 100 {
		t.Errorf("summary of 1..100: %+v", got)
	}
	for i := 0; i < keptReactions; i++ {
		r.addReaction(7)
	}
	if got := r.summary(); got.Count != keptReactions || got.P50MS != 7 || got.MaxMS != 7 {
		t.Errorf("after the ring turned: %+v", got)
	}
}
