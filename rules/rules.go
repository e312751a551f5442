package rules

import (
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// DefaultDir is where the operator's rules live unless told otherwise.
const DefaultDir = "/etc/irqshift/rules.d"

// MaxFileSize bounds one rules file. Real files hold a few dozen rules; the
// bound keeps a file written by mistake (a log, a core dump) from being
// read whole into memory.
const MaxFileSize = 1 << 20

// MaxNode bounds a node number: the kernel's MAX_NUMNODES is at most 1024
// (NODES_SHIFT 10), so anything past this is a typing mistake.
const MaxNode = 4095

// ErrRules is wrapped by every error about the contents or the files of
// the rules directory, so that a caller can tell a bad rule from its own
// failure with errors.Is.
var ErrRules = errors.New("bad rules")

// Error is an error about the rules directory or one of its files: a
// mistake in a rule, or a file that cannot be read or written. Its text
// names the file, and the line of the mistake when it is inside the file,
// so that an operator can go straight to it.
type Error struct {
	File string
	// Line is 1-based; 0 when the error is about the file as a whole (it
	// is a FIFO, it cannot be read).
	Line int
	Text string
	// Err is the cause from the file system, when there is one.
	Err error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Text)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Text)
}

// Unwrap makes errors.Is see both ErrRules and the file system's cause
// (fs.ErrPermission, regfile.ErrTooLarge, ...).
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRules}
	}
	return []error{ErrRules, e.Err}
}

// NodeKind says what a rule's node key asks for.
type NodeKind int

const (
	// NodeDefault: the rule has no node key. Placement does as for
	// NodeLocal; the difference only matters to a rule that gives nothing
	// else (it has no effect) and to Format (it writes no node key).
	NodeDefault NodeKind = iota
	// NodeLocal (node = "local"): keep the IRQ on its device's own NUMA
	// node.
	NodeLocal
	// NodeIgnore (node = "ignore"): place the IRQ without regard to NUMA
	// nodes.
	NodeIgnore
	// NodeNumber (node = 1): place the IRQ on the CPUs of that node.
	NodeNumber
)

// Node is a rule's node key. The zero value is NodeDefault: no node key.
type Node struct {
	Kind NodeKind
	// Number is the node when Kind is NodeNumber, else 0.
	Number int
}

// IsSet reports whether the rule gave a node key at all.
func (n Node) IsSet() bool { return n.Kind != NodeDefault }

// IsLocal reports whether the IRQ stays on its own node: node = "local",
// or no node key.
func (n Node) IsLocal() bool { return n.Kind == NodeDefault || n.Kind == NodeLocal }

// IsIgnore reports whether node = "ignore".
func (n Node) IsIgnore() bool { return n.Kind == NodeIgnore }

// Fixed returns the node number when the rule names one (node = 1).
func (n Node) Fixed() (int, bool) {
	if n.Kind == NodeNumber {
		return n.Number, true
	}
	return 0, false
}

// String is the node key's value as a rules file writes it: "local",
// "ignore" or the number; "" for NodeDefault.
func (n Node) String() string {
	switch n.Kind {
	case NodeLocal:
		return "local"
	case NodeIgnore:
		return "ignore"
	case NodeNumber:
		return strconv.Itoa(n.Number)
	}
	return ""
}

// Rule is one [[rule]] table of a rules file.
type Rule struct {
	Name string
	// File is the path of the file it came from, Line the line of its
	// [[rule]] header there: where a message about the rule sends the
	// operator.
	File string
	Line int
	// Device, Driver, Actions and Chip are path.Match globs; "" when the
	// rule does not give the key, which then matches anything.
	Device, Driver, Actions, Chip string
	// CPUs is empty when the rule gives none (HasCPUs false).
	CPUs      cpuset.Set
	HasCPUs   bool
	Exclusive bool
	Ignore    bool
	Node      Node
}

// Identity is what a rule can match on for one IRQ.
type Identity struct {
	Chip    string
	Actions []string
	// Device is the device's name as /sys shows it (a PCI address such as
	// "0000:01:00.0", or a platform device's name); "" when unknown.
	Device string
	// Driver is the bound driver's name; "" when none is bound or it is
	// unknown.
	Driver string
}

// Matches reports whether the rule is for the IRQ: every key the rule gives
// must match. A key the IRQ lacks (no device, no driver, no chip name, no
// actions) matches no glob, not even "*": a rule for a device must not
// catch IRQs whose device irqshift could not find. Actions match when any
// one of the IRQ's action names does: a shared IRQ is the device's IRQ too.
func (r *Rule) Matches(id Identity) bool {
	if !matchKey(r.Device, id.Device) || !matchKey(r.Driver, id.Driver) || !matchKey(r.Chip, id.Chip) {
		return false
	}
	if r.Actions == "" {
		return true
	}
	for _, action := range id.Actions {
		if matchKey(r.Actions, action) {
			return true
		}
	}
	return false
}

// matchKey is one key of Matches. A malformed glob matches nothing: Parse
// refuses them, so only a Rule built by hand can have one.
func matchKey(glob, name string) bool {
	if glob == "" {
		return true
	}
	if name == "" {
		return false
	}
	ok, err := path.Match(glob, name)
	return ok && err == nil
}

// Set is the rules of a rules directory.
type Set struct {
	Dir string
	// Rules are in file-name order, then in the order of each file: the
	// order in which Match tries them.
	Rules []Rule
}

// Len returns the number of rules; 0 for a nil Set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Rules)
}

// Match returns the first rule that matches the IRQ, nil when none does or
// s is nil. First match wins so that the operator orders rules by file
// name, as in any *.d directory, and a persistent pin (PinsFile) comes
// before them all.
func (s *Set) Match(id Identity) *Rule {
	if i := s.matchIndex(id); i >= 0 {
		return &s.Rules[i]
	}
	return nil
}

func (s *Set) matchIndex(id Identity) int {
	if s == nil {
		return -1
	}
	for i := range s.Rules {
		if s.Rules[i].Matches(id) {
			return i
		}
	}
	return -1
}
