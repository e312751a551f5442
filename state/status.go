package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/irqshift/irqshift/internal/regfile"
)

// maxStatusSize bounds what LoadStatus reads: the daemon writes well
// under a kilobyte.
const maxStatusSize = 64 << 10

// StatusFormatVersion is the version of the daemon's status file.
const StatusFormatVersion = 1

// DaemonStatus is what a running daemon records about itself beside the
// state file (<path>.status), for `irqshift status`: who it is, when it
// last settled and why, and how fast it reacted. It is replaced whole
// after every settle and means nothing once no daemon holds the claim.
type DaemonStatus struct {
	Version int `json:"version"`
	// PID is the daemon's process; Started when it started; Irqshift the
	// version it was built as.
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Irqshift string    `json:"irqshift"`
	// DryRun is true for `irqshift watch --dry-run`, which writes nothing
	// else.
	DryRun bool `json:"dry_run,omitempty"`
	// Settles counts the settles since the start; Last is the last one.
	Settles int          `json:"settles"`
	Last    *SettleStamp `json:"last_settle,omitempty"`
	// Reaction summarises the reaction times (CPU event received to last
	// write done) since the start.
	Reaction ReactionSummary `json:"reaction"`
}

// SettleStamp is one settle as the status file records it.
type SettleStamp struct {
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
	Full     bool      `json:"full"`
	Moved    int       `json:"moved"`
	Narrowed int       `json:"narrowed"`
	Failed   int       `json:"failed"`
	// ReactionMS is the settle's reaction time in milliseconds, 0 when no
	// CPU event caused it.
	ReactionMS float64 `json:"reaction_ms,omitempty"`
}

// ReactionSummary is the distribution of reaction times, in milliseconds.
type ReactionSummary struct {
	Count int     `json:"count"`
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	MaxMS float64 `json:"max_ms"`
}

func (st *Store) statusPath() string { return st.real + ".status" }

// StatusPath is where the daemon's status file is: beside the state file.
func (st *Store) StatusPath() string { return st.statusPath() }

// SaveStatus replaces the daemon's status file with s. A file in its place
// that irqshift did not write (or not a regular file) is left as it is,
// and an error says so.
func (st *Store) SaveStatus(s DaemonStatus) error {
	name := st.statusPath()
	if head, err := readHead(name); err == nil && !looksOurs(head) {
		return fmt.Errorf("%s is not irqshift's status file, %w: irqshift leaves it exactly as it is", name, ErrNotOurs)
	}
	s.Version = StatusFormatVersion
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	_, err = writeReplacing(name, append(data, '\n'))
	return err
}

// ErrNoStatus means no daemon status file exists.
var ErrNoStatus = errors.New("no daemon status recorded")

// LoadStatus reads the daemon's status file. It says nothing of whether
// that daemon still runs: ask DaemonRunning, and compare the PIDs.
func (st *Store) LoadStatus() (DaemonStatus, error) {
	name := st.statusPath()
	if err := checkRegular(name, false); err != nil {
		return DaemonStatus{}, err
	}
	data, err := regfile.Read(name, maxStatusSize)
	if errors.Is(err, fs.ErrNotExist) {
		return DaemonStatus{}, ErrNoStatus
	}
	if err != nil {
		return DaemonStatus{}, fmt.Errorf("state: %w", err)
	}
	if !looksOurs(data) {
		return DaemonStatus{}, fmt.Errorf("%s is not irqshift's status file, %w", name, ErrNotOurs)
	}
	var s DaemonStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return DaemonStatus{}, fmt.Errorf("%s: %w", name, err)
	}
	if s.Version > StatusFormatVersion {
		return s, fmt.Errorf("%s is from a newer irqshift (format %d; this one reads %d), %w", name, s.Version, StatusFormatVersion, ErrNewerState)
	}
	return s, nil
}
