package affinity

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultStatePath is where the daemon and the CLI keep what they learned.
// /run is a tmpfs: pins outlive a restart of irqshift, not of the machine,
// which is right since IRQ numbers can change across boots.
const DefaultStatePath = "/run/irqshift/state.json"

// StateVersion is the state file's format. Readers take any version up to
// their own and ignore unknown fields, so an older irqshift reads a newer
// file as far as it understands it.
const StateVersion = 1

// ErrBadState means the state file exists but could not be used: torn by
// a crash, edited by hand, or written by an incompatible version. Callers
// log it and start afresh; it is never fatal.
var ErrBadState = errors.New("unusable state file")

// Saved is what irqshift keeps across runs.
type Saved struct {
	Version int     `json:"version"`
	Cursor  Cursor  `json:"cursor"`
	Pins    Pins    `json:"pins"`
	Written Written `json:"written"`
	// Managed is Memory: IRQs the kernel refused to move.
	Managed Memory `json:"managed"`
}

// NewSaved returns an empty state.
func NewSaved() Saved {
	return Saved{Version: StateVersion, Pins: Pins{}, Written: Written{}, Managed: Memory{}}
}

// LoadState reads the state file. A missing file gives an empty state and
// no error; an unusable one gives an empty state and an error wrapping
// ErrBadState.
func LoadState(path string) (Saved, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NewSaved(), nil
	}
	if err != nil {
		return NewSaved(), fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var s Saved
	if err := json.Unmarshal(data, &s); err != nil {
		return NewSaved(), fmt.Errorf("%w: %s: %w", ErrBadState, path, err)
	}
	if s.Version < 1 || s.Version > StateVersion {
		return NewSaved(), fmt.Errorf("%w: %s: version %d, this irqshift reads 1 to %d", ErrBadState, path, s.Version, StateVersion)
	}
	if s.Pins == nil {
		s.Pins = Pins{}
	}
	if s.Written == nil {
		s.Written = Written{}
	}
	if s.Managed == nil {
		s.Managed = Memory{}
	}
	if s.Cursor.Next < 0 {
		s.Cursor.Next = 0
	}
	return s, nil
}

// SaveState writes the state atomically: a temporary file in the same
// directory, fsync, rename over the old one, fsync of the directory. A
// crash leaves either the old file or the new one, never a torn one.
func SaveState(path string, s Saved) error {
	s.Version = StateVersion
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: some file systems refuse to sync a directory
		d.Close()
	}
	return nil
}
