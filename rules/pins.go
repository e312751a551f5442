package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/internal/cpuset"
	"github.com/irqshift/irqshift/internal/regfile"
	"github.com/irqshift/irqshift/internal/replacefile"
)

// PinsFile is the file of the rules directory that irqshift owns and
// `irqshift pin --persist` writes. Its "00-" prefix makes it read first,
// so that a persistent pin wins over the operator's other rules, as an
// explicit pin should.
const PinsFile = "00-pins.toml"

// pinsMark starts the first line of every PinsFile irqshift writes:
// AddPin and RemovePin change no file that lacks it, so that an
// operator's own 00-pins.toml is never rewritten.
const pinsMark = "# Written by irqshift pin --persist."

const pinsHeader = pinsMark + " irqshift rewrites this file at each\n" +
	"# persistent pin and unpin, without comments added here. It is read before\n" +
	"# the other rules of the directory, so that a pin wins over them.\n\n"

// PinRule builds the rule that pins one IRQ to cpus across reboots. It
// keys on what stays the same when the IRQ's number does not: the device
// and an action name (the first of the IRQ's), or for an IRQ without a
// device its chip and action name. The globs are exact: their glob
// characters are escaped with '\'.
//
// The name is "pin-" + the device (or chip) + "-" + the action name, as in
// "pin-0000:01:00.0-mlx5_comp3". That form is used when it can be read
// back unambiguously: a device name without '-', characters a name may
// hold, at most MaxNameLen in all. Otherwise, and always for a chip (so
// that a chip's pin does not take the name of a device's), characters a
// name may not hold are written '_', the readable part is shortened to
// fit, and '-' and 8 hex digits of a SHA-256 of the identity are
// appended, keeping names of different identities different:
// "pin-ITS-PCI-MSIX-0000:00:02.0-nvme0q1-3f2a9c1e".
//
// It fails when the IRQ has no action name (nothing stable to key on),
// when a name is not valid UTF-8 (TOML cannot hold it), or cpus is empty.
func PinRule(id Identity, cpus cpuset.Set) (Rule, error) {
	if len(id.Actions) == 0 || id.Actions[0] == "" {
		return Rule{}, errors.New("the IRQ has no action name: a persistent pin has nothing stable to key on")
	}
	if cpus.IsEmpty() {
		return Rule{}, errors.New("a pin needs at least one CPU")
	}
	action := id.Actions[0]
	kind, key := "device", id.Device
	if key == "" {
		kind, key = "chip", id.Chip
		if key == "" {
			kind = "action"
		}
	}
	for _, s := range []string{action, key} {
		if !utf8.ValidString(s) {
			return Rule{}, fmt.Errorf("%s name %q is not valid UTF-8: a rules file cannot hold it", kind, s)
		}
	}
	r := Rule{Actions: escapeGlob(action), CPUs: cpus, HasCPUs: true}
	switch kind {
	case "device":
		r.Device = escapeGlob(key)
	case "chip":
		r.Chip = escapeGlob(key)
	}
	r.Name = pinName(kind, key, action)
	return r, nil
}

// pinName is the name of PinRule's rule; see there.
func pinName(kind, key, action string) string {
	readable := action
	if key != "" {
		readable = key + "-" + action
	}
	if name := "pin-" + readable; kind == "device" && !strings.Contains(key, "-") && checkName(name) == nil {
		return name
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + key + "\x00" + action))
	suffix := "-" + hex.EncodeToString(sum[:4])
	var b strings.Builder
	b.WriteString("pin-")
	for i := 0; i < len(readable) && b.Len() < MaxNameLen-len(suffix); i++ {
		if nameChar(readable[i]) {
			b.WriteByte(readable[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + suffix
}

// escapeGlob makes a path.Match glob that matches s and nothing else.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// AddPin writes r into dir's PinsFile, replacing the rule of the same name
// or adding it at the end, and creates dir (0755) and the file as needed.
// It changes nothing when the PinsFile is not irqshift's (its first line
// is not the one irqshift writes), is a symbolic link or not a regular
// file, does not parse, or when the directory would then not load (r's
// name is an operator rule's, another file is broken). The file is
// replaced whole and atomically (a temporary file in dir, synced, renamed
// over it), mode 0644; concurrent AddPin and RemovePin calls on one
// directory take turns (flock on it), so that none loses another's pin.
func AddPin(dir string, r Rule) error {
	path := filepath.Join(dir, PinsFile)
	r.File, r.Line = "", 0
	if _, err := Parse("pin", Format([]Rule{r})); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return &Error{File: path, Text: "not adding the pin: " + e.Text}
		}
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fileError(dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	pins, before, err := readPins(path)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(pins, func(p Rule) bool { return p.Name == r.Name }); i >= 0 {
		pins[i] = r
	} else {
		pins = append(pins, r)
	}
	data := append([]byte(pinsHeader), Format(pins)...)
	if _, err := load(dir, PinsFile, data); err != nil {
		return fmt.Errorf("not adding pin %q, the rules directory would not load: %w", r.Name, err)
	}
	return writePins(dir, path, before, data)
}

// RemovePin drops the pin of that name from dir's PinsFile and reports
// whether there was one. The file is removed with its last pin. Like
// AddPin it changes only a PinsFile irqshift wrote.
func RemovePin(dir, name string) (bool, error) {
	path := filepath.Join(dir, PinsFile)
	unlock, err := lockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unlock()
	pins, before, err := readPins(path)
	if err != nil || before == nil {
		return false, err
	}
	i := slices.IndexFunc(pins, func(p Rule) bool { return p.Name == name })
	if i < 0 {
		return false, nil
	}
	pins = slices.Delete(pins, i, i+1)
	if len(pins) > 0 {
		return true, writePins(dir, path, before, append([]byte(pinsHeader), Format(pins)...))
	}
	if err := unchanged(path, before); err != nil {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, fileError(path, err)
	}
	replacefile.SyncDir(dir)
	return true, nil
}

// lockDir takes an exclusive flock on dir until the returned function is
// called.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fileError(dir, err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		d.Close()
		return nil, fileError(dir, &fs.PathError{Op: "flock", Path: dir, Err: err})
	}
	return func() { d.Close() }, nil
}

// readPins reads the PinsFile at path, when there is one, and checks that
// irqshift may change it. before is what lstat said of it (nil when there
// is none), for unchanged.
func readPins(path string) (pins []Rule, before fs.FileInfo, err error) {
	before, err = os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	// A link could send the rename, or the reading, somewhere else: the
	// file irqshift writes is never one.
	if !before.Mode().IsRegular() {
		return nil, nil, &Error{File: path, Text: fmt.Sprintf("is %s, not a regular file: irqshift writes this file itself and will not change it", regfile.Kind(before.Mode()))}
	}
	data, err := readRulesFile(path)
	if errors.Is(err, errGone) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(data, []byte(pinsMark)) {
		return nil, nil, &Error{File: path, Line: 1, Text: fmt.Sprintf("was not written by irqshift (it does not start with %q): irqshift will not change it; rename it to keep its rules", pinsMark)}
	}
	pins, err = Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return pins, before, nil
}

// unchanged checks, just before the PinsFile is replaced or removed, that
// it is still the file readPins read (before), or still absent: another
// program may have put its own there since.
func unchanged(path string, before fs.FileInfo) error {
	now, err := os.Lstat(path)
	switch {
	case before == nil && errors.Is(err, fs.ErrNotExist):
		return nil
	case before == nil && err == nil:
		return &Error{File: path, Text: "was created by someone else while irqshift was writing it; not replacing it"}
	case err != nil:
		return fileError(path, err)
	case !os.SameFile(before, now) || before.Size() != now.Size() || !before.ModTime().Equal(now.ModTime()):
		return &Error{File: path, Text: "changed while irqshift was updating it; not replacing it (try again)"}
	}
	return nil
}

// writePins replaces the PinsFile at path with data (internal/replacefile:
// a reader sees the old file or the new one, never a part), if it is
// still the file readPins read, or still absent.
func writePins(dir, path string, before fs.FileInfo, data []byte) error {
	_, err := replacefile.Write(path, data, func(tmp string) error {
		if err := unchanged(path, before); err != nil {
			return err
		}
		if before == nil {
			return renameNoReplace(tmp, path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fileError(path, err)
		}
		return nil
	})
	var ruleErr *Error
	if err != nil && !errors.As(err, &ruleErr) {
		return fileError(dir, err)
	}
	return err
}

// renameNoReplace renames a new PinsFile into place, failing if a file
// appeared there since unchanged looked: without it a file created in
// that moment would be overwritten. File systems without
// RENAME_NOREPLACE get a plain rename after one more look.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return &Error{File: to, Text: "was created by someone else while irqshift was writing it; not replacing it"}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		if err := unchanged(to, nil); err != nil {
			return err
		}
		if err := os.Rename(from, to); err != nil {
			return fileError(to, err)
		}
		return nil
	}
	return fileError(to, &os.LinkError{Op: "rename", Old: from, New: to, Err: err})
}
