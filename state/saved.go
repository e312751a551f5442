package state

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
)

// DefaultPath is where the daemon and the CLI keep what they learned.
// /run is a tmpfs: pins outlive a restart of irqshift, not of the machine,
// which is right since IRQ numbers can change across boots.
const DefaultPath = "/run/irqshift/state.json"

// FormatVersion is the state file's format. Fields added since version 1
// are optional, so a file written before them reads fine. A file with a
// higher version, or with a field this irqshift does not know, was written
// by a newer irqshift: a Store reads it as far as it understands it and
// refuses to overwrite it (ErrNewerState).
const FormatVersion = 1

// ErrBadState means the state file is irqshift's but could not be used:
// torn, edited by hand into invalid JSON or values, or too large. A writer
// keeps it aside as <file>.bad (Store.LoadForUpdate), logs the error and
// starts afresh; a reader logs it. It is never fatal.
var ErrBadState = errors.New("unusable state file")

// ErrNotOurs means the state path holds a file that irqshift did not
// write: it does not begin as every state file irqshift writes does. It is
// fatal for every command and the daemon, and the file is never renamed,
// truncated or replaced.
var ErrNotOurs = errors.New("not an irqshift state file")

// ErrNewerState means the state file was written by a newer irqshift: a
// higher "version", a field or a value this irqshift does not know. Load
// returns what it understood; Save refuses to overwrite the file, so the
// newer irqshift's pins are not lost.
var ErrNewerState = errors.New("written by a newer irqshift: refusing to overwrite it")

// ErrStatePath means the state path (or the lock or daemon file beside it)
// exists and is not a regular file: a device such as /dev/null, a FIFO, a
// directory, a socket, or a symbolic link to one of them. irqshift never
// opens, replaces or writes such a path.
var ErrStatePath = errors.New("not a regular file")

// ErrDaemonRunning means another irqshift watch holds the state file's
// daemon claim. The error returned is a *DaemonRunningError naming the PID.
var ErrDaemonRunning = errors.New("irqshift watch is already running")

// Saved is what irqshift keeps across runs: the one home of the operator's
// intent. It is a plain document: the planner (package affinity) gives its
// records their meaning and their methods.
type Saved struct {
	Version int `json:"version"`
	// Cursor is where the round-robin search for the next CPU starts.
	Cursor Cursor `json:"cursor"`
	// Pins are the masks the admin set, by IRQ key (affinity.Key).
	Pins map[string]Pin `json:"pins"`
	// Written are the last masks known not to be the admin's, by IRQ key.
	Written map[string]sysfs.CPUSet `json:"written"`
	// Managed are the IRQs the kernel refused to move, and why, by IRQ key.
	Managed map[string]string `json:"managed"`
	// Drained are the CPUs kept free of IRQs, and why.
	Drained Drains `json:"drained"`
	// DaemonBanned are the banned CPUs the running daemon resolved from its
	// configuration, so that one-shot commands honour them while it runs.
	// They mean nothing when no daemon holds the claim (Store.DaemonRunning).
	DaemonBanned sysfs.CPUSet `json:"daemon_banned"`
	// DaemonBannedBy are the same CPUs by ban source, for `list` to say
	// where each comes from.
	DaemonBannedBy map[BanSource]sysfs.CPUSet `json:"daemon_banned_by,omitempty"`
}

// Cursor is the round-robin cursor of the planner.
type Cursor struct {
	// Next is where the search for the next pick starts.
	Next int `json:"next"`
}

// Pin is a mask the admin set on an IRQ: intent that irqshift keeps. When
// a CPU of the pin goes offline the kernel overwrites the mask with the
// online mask and never restores it; irqshift remembers the pin and puts it
// back when the CPU returns.
type Pin struct {
	IRQ  int          `json:"irq"`
	CPUs sysfs.CPUSet `json:"cpus"`
}

// DrainSource says which command drained a CPU.
type DrainSource string

// The drain sources.
const (
	// DrainByDrain: irqshift drain moved the IRQs off the CPU.
	DrainByDrain DrainSource = "drain"
	// DrainByOffline: irqshift offline drained the CPU and took it down.
	DrainByOffline DrainSource = "offline"
)

// known reports whether this irqshift knows the source.
func (d DrainSource) known() bool {
	return d == DrainByDrain || d == DrainByOffline
}

// Drains maps a drained CPU to why it was drained.
type Drains map[int]DrainSource

// CPUs returns the drained CPUs. Numbers outside [0, sysfs.MaxCPUs) are
// skipped (Load refuses them in a file).
func (d Drains) CPUs() sysfs.CPUSet {
	var set sysfs.CPUSet
	for _, cpu := range slices.Sorted(maps.Keys(d)) {
		if cpu >= 0 && cpu < sysfs.MaxCPUs {
			set = set.With(cpu)
		}
	}
	return set
}

// NewSaved returns an empty state.
func NewSaved() Saved {
	return Saved{Version: FormatVersion, Pins: map[string]Pin{}, Written: map[string]sysfs.CPUSet{}, Managed: map[string]string{}, Drained: Drains{}}
}

// normalize replaces nil maps by empty ones and clamps the cursor.
func (s *Saved) normalize() {
	if s.Pins == nil {
		s.Pins = map[string]Pin{}
	}
	if s.Written == nil {
		s.Written = map[string]sysfs.CPUSet{}
	}
	if s.Managed == nil {
		s.Managed = map[string]string{}
	}
	if s.Drained == nil {
		s.Drained = Drains{}
	}
	if s.Cursor.Next < 0 {
		s.Cursor.Next = 0
	}
}

// Prune drops what refers to IRQs that are gone, so that the file does not
// grow without bound as devices come and go. present holds Key(irq) of
// every IRQ of the current snapshot; an empty present (no snapshot) prunes
// nothing.
//
//   - Written and Managed entries whose key is not present are dropped.
//     They are facts about one incarnation of a device: if it comes back,
//     its default mask is recognised again, and a managed IRQ is learned
//     again by the first refused write.
//   - A pin whose key is not present is dropped only when a present key has
//     the same IRQ number: the number now belongs to another device, and
//     the pin is stale. A pin whose IRQ number is gone entirely is kept:
//     it is the operator's intent, and a driver reload (rmmod/modprobe, a
//     PCI rescan, a link flap on some NICs) brings the same key back, to
//     which the pin applies again. Such pins are bounded by the number of
//     IRQ numbers the machine ever had since boot (/run is a tmpfs).
func (s *Saved) Prune(present map[string]bool) {
	if len(present) == 0 {
		return
	}
	for key := range s.Written {
		if !present[key] {
			delete(s.Written, key)
		}
	}
	for key := range s.Managed {
		if !present[key] {
			delete(s.Managed, key)
		}
	}
	if len(s.Pins) == 0 {
		return
	}
	numbers := make(map[int]bool, len(present))
	for key := range present {
		if n, ok := keyNumber(key); ok {
			numbers[n] = true
		}
	}
	for key, pin := range s.Pins {
		if present[key] {
			continue
		}
		n, ok := keyNumber(key)
		if !ok {
			n = pin.IRQ
		}
		if numbers[n] {
			delete(s.Pins, key)
		}
	}
}

// keyNumber returns the IRQ number at the start of a Key.
func keyNumber(key string) (int, bool) {
	num, _, _ := strings.Cut(key, "/")
	n, err := strconv.Atoi(num)
	return n, err == nil
}
