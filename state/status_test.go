package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStatusRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadStatus(); !errors.Is(err, ErrNoStatus) {
		t.Fatalf("no status file yet: %v, want ErrNoStatus", err)
	}
	started := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	want := DaemonStatus{PID: 42, Started: started, Irqshift: "0.11.0", Settles: 3,
		Last:     &SettleStamp{Time: started.Add(time.Minute), Reason: "offline", Moved: 2, ReactionMS: 4.5},
		Reaction: ReactionSummary{Count: 2, P50MS: 4.5, P90MS: 6, MaxMS: 6}}
	for range 2 { // the second replaces the first
		if err := st.SaveStatus(want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.LoadStatus()
	if err != nil || got.PID != 42 || got.Last == nil || got.Last.Reason != "offline" || got.Reaction.P90MS != 6 || got.Version != StatusFormatVersion || !got.Started.Equal(started) {
		t.Fatalf("status read back %+v, %v", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("files beside the status: %v, want only state.json.status", entries)
	}
}

// TestStatusNotOurs: a file in the status file's place that irqshift did
// not write is never replaced, and is not read as a status.
func TestStatusNotOurs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	foreign := []byte("# someone's notes\n")
	if err := os.WriteFile(st.StatusPath(), foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveStatus(DaemonStatus{PID: 1}); !errors.Is(err, ErrNotOurs) {
		t.Errorf("SaveStatus over a foreign file: %v, want ErrNotOurs", err)
	}
	if _, err := st.LoadStatus(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("LoadStatus of a foreign file: %v, want ErrNotOurs", err)
	}
	if data, _ := os.ReadFile(st.StatusPath()); string(data) != string(foreign) {
		t.Errorf("the foreign file changed: %q", data)
	}
	if err := os.Remove(st.StatusPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", st.StatusPath()); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveStatus(DaemonStatus{PID: 1}); !errors.Is(err, ErrStatePath) {
		t.Errorf("SaveStatus over a symbolic link: %v, want ErrStatePath", err)
	}
	if target, err := os.Readlink(st.StatusPath()); err != nil || target != "/etc/passwd" {
		t.Errorf("the link changed: %q %v", target, err)
	}
}
