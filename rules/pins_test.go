package rules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
	"github.com/irqshift/irqshift/internal/fifotest"
)

var nicQueue = Identity{Chip: "IR-PCI-MSIX-0000:01:00.0", Device: "0000:01:00.0", Driver: "mlx5_core", Actions: []string{"mlx5_comp3"}}

func mustPin(t *testing.T, id Identity, cpus ...int) Rule {
	t.Helper()
	r, err := PinRule(id, cpuset.New(cpus...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPinRule(t *testing.T) {
	r := mustPin(t, nicQueue, 4)
	if r.Name != "pin-0000:01:00.0-mlx5_comp3" || r.Device != "0000:01:00.0" || r.Actions != "mlx5_comp3" ||
		r.Chip != "" || r.Driver != "" || !r.HasCPUs || !r.CPUs.Equal(cpuset.New(4)) || r.Exclusive || r.Ignore || r.Node.IsSet() {
		t.Errorf("PinRule = %s", describe(r))
	}
	if !r.Matches(nicQueue) {
		t.Error("the pin does not match its own IRQ")
	}
	sibling := nicQueue
	sibling.Actions = []string{"mlx5_comp30"}
	if r.Matches(sibling) {
		t.Error("the pin matches mlx5_comp30 too")
	}

	// Glob characters in the names are matched literally.
	odd := Identity{Device: "weird*[dev]", Actions: []string{`q?\1`}}
	r = mustPin(t, odd, 1)
	if r.Device != `weird\*\[dev\]` || r.Actions != `q\?\\1` {
		t.Errorf("escaped globs %q %q", r.Device, r.Actions)
	}
	if !r.Matches(odd) || r.Matches(Identity{Device: "weirdX[dev]", Actions: []string{`q?\1`}}) || r.Matches(Identity{Device: "weird*d", Actions: []string{`qq\1`}}) {
		t.Error("escaped pin does not match exactly its own IRQ")
	}

	// No device: the chip and action.
	timer := Identity{Chip: "GICv3", Actions: []string{"arch_timer"}}
	r = mustPin(t, timer, 0)
	if r.Chip != "GICv3" || r.Actions != "arch_timer" || r.Device != "" || !strings.HasPrefix(r.Name, "pin-GICv3-arch_timer-") {
		t.Errorf("chip pin %s", describe(r))
	}
	if !r.Matches(timer) {
		t.Error("the chip pin does not match its IRQ")
	}

	for _, tc := range []struct {
		id   Identity
		cpus cpuset.Set
		want string
	}{
		{Identity{Device: "0000:01:00.0"}, cpuset.New(1), "no action name"},
		{Identity{Device: "0000:01:00.0", Actions: []string{""}}, cpuset.New(1), "no action name"},
		{nicQueue, cpuset.Set{}, "at least one CPU"},
		{Identity{Device: "0000:01:00.0", Actions: []string{"bad\xff"}}, cpuset.New(1), "not valid UTF-8"},
	} {
		if _, err := PinRule(tc.id, tc.cpus); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PinRule(%+v, %v) error %v, want %q", tc.id, tc.cpus, err, tc.want)
		}
	}
}

func TestPinNamesUnique(t *testing.T) {
	// Identities that a naive "pin-<device>-<action>" would give one name,
	// and names a rule may not hold.
	ids := []Identity{
		{Device: "a-b", Actions: []string{"c"}},
		{Device: "a", Actions: []string{"b-c"}},
		{Device: "X", Actions: []string{"t"}},
		{Chip: "X", Actions: []string{"t"}},
		{Actions: []string{"X-t"}},
		{Device: "0000:01:00.0", Actions: []string{"eth0 TxRx"}},
		{Device: "0000:01:00.0", Actions: []string{"eth0_TxRx"}},
		{Device: "0000:01:00.0", Actions: []string{strings.Repeat("q", 80) + "1"}},
		{Device: "0000:01:00.0", Actions: []string{strings.Repeat("q", 80) + "2"}},
		{Chip: "BRCM STB PCIe MSI", Actions: []string{"ahci[0000:01:00.0]"}},
		{Device: "0000:01:00.0", Actions: []string{"é"}},
	}
	seen := map[string]Identity{}
	for _, id := range ids {
		r := mustPin(t, id, 1)
		if err := checkName(r.Name); err != nil {
			t.Errorf("%+v: name %q: %v", id, r.Name, err)
		}
		if other, ok := seen[r.Name]; ok {
			t.Errorf("%+v and %+v are both %q", id, other, r.Name)
		}
		seen[r.Name] = id
		if again := mustPin(t, id, 2); again.Name != r.Name {
			t.Errorf("%+v: name %q then %q", id, r.Name, again.Name)
		}
		// The rule must parse as it is written.
		if _, err := Parse("pin", Format([]Rule{r})); err != nil {
			t.Errorf("%+v: %v", id, err)
		}
	}
}

func readPinsFile(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, PinsFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// noTempFiles checks that AddPin and RemovePin left nothing behind.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

func TestAddPinCreateReplaceRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "rules.d")
	pinA := mustPin(t, nicQueue, 4)
	if err := AddPin(dir, pinA); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("dir: %v %v", info.Mode(), err)
	}
	info, err := os.Lstat(filepath.Join(dir, PinsFile))
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 {
		t.Fatalf("pins file: %v %v", info, err)
	}
	if data := readPinsFile(t, dir); !strings.HasPrefix(data, "# Written by irqshift pin --persist.") {
		t.Errorf("pins file does not start with the header:\n%s", data)
	}

	// An operator's rule for the same IRQ: the pin, read first, wins.
	writeFile(t, filepath.Join(dir, "10-nic.toml"), "[[rule]]\nname = \"nic\"\ndevice = \"0000:01:00.*\"\ncpus = \"8-15\"\n")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pinA.File, pinA.Line = filepath.Join(dir, PinsFile), 5
	checkRules(t, set.Rules[:1], []Rule{pinA})
	if r := set.Match(nicQueue); r == nil || r.Name != pinA.Name {
		t.Errorf("Match = %v, want the pin", r)
	}

	// Replace by name, add another: order is kept.
	pinB := mustPin(t, Identity{Chip: "GICv3", Actions: []string{"arch_timer"}}, 0)
	if err := AddPin(dir, pinB); err != nil {
		t.Fatal(err)
	}
	if err := AddPin(dir, mustPin(t, nicQueue, 5, 6)); err != nil {
		t.Fatal(err)
	}
	set, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(set), " "); got != pinA.Name+" "+pinB.Name+" nic" {
		t.Errorf("rules %q", got)
	}
	if !set.Rules[0].CPUs.Equal(cpuset.New(5, 6)) {
		t.Errorf("replaced pin has cpus %v", set.Rules[0].CPUs)
	}

	// Remove.
	if removed, err := RemovePin(dir, "pin-nothing"); removed || err != nil {
		t.Errorf("RemovePin of no pin = %v, %v", removed, err)
	}
	if removed, err := RemovePin(dir, pinA.Name); !removed || err != nil {
		t.Fatalf("RemovePin = %v, %v", removed, err)
	}
	set, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(set), " "); got != pinB.Name+" nic" {
		t.Errorf("rules %q after removing %s", got, pinA.Name)
	}
	if removed, err := RemovePin(dir, pinB.Name); !removed || err != nil {
		t.Fatalf("RemovePin = %v, %v", removed, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, PinsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins file still there after its last pin: %v", err)
	}
	if removed, err := RemovePin(dir, pinB.Name); removed || err != nil {
		t.Errorf("RemovePin without a pins file = %v, %v", removed, err)
	}
	noTempFiles(t, dir)
}

func TestRemovePinNoDir(t *testing.T) {
	if removed, err := RemovePin(filepath.Join(t.TempDir(), "none"), "pin-x"); removed || err != nil {
		t.Errorf("RemovePin = %v, %v", removed, err)
	}
}

func TestPinsRefuseForeignFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, PinsFile)
	foreign := "# my own pins, hands off\n[[rule]]\nname = \"mine\"\ndevice = \"d\"\ncpus = \"1\"\n"
	writeFile(t, path, foreign)
	err := AddPin(dir, mustPin(t, nicQueue, 1))
	wantError(t, err, path+":1: was not written by irqshift")
	if _, err := RemovePin(dir, "mine"); err == nil {
		t.Error("RemovePin changed a foreign pins file")
	}
	if got := readPinsFile(t, dir); got != foreign {
		t.Errorf("foreign file changed:\n%s", got)
	}
	noTempFiles(t, dir)
}

func TestPinsRefuseBrokenFile(t *testing.T) {
	// Ours by its header, but edited into something that does not parse:
	// rewriting it would drop what the operator meant.
	dir := t.TempDir()
	broken := pinsHeader + "[[rule]]\nname = \"pin-x\"\ndevice = \"d\"\ncpus = \"1-\"\n"
	writeFile(t, filepath.Join(dir, PinsFile), broken)
	if err := AddPin(dir, mustPin(t, nicQueue, 1)); err == nil {
		t.Error("AddPin rewrote a pins file that does not parse")
	}
	if got := readPinsFile(t, dir); got != broken {
		t.Errorf("file changed:\n%s", got)
	}
}

func TestPinsRefuseNotRegular(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, PinsFile)
	other := filepath.Join(t.TempDir(), "target.toml")
	// Ours by its contents, but behind a link.
	writeFile(t, other, pinsHeader+string(Format([]Rule{mustPin(t, nicQueue, 1)})))
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(other)
	err := AddPin(dir, mustPin(t, Identity{Device: "x", Actions: []string{"y"}}, 2))
	wantError(t, err, path+": is a symbolic link, not a regular file")
	if _, err := RemovePin(dir, mustPin(t, nicQueue, 1).Name); err == nil {
		t.Error("RemovePin went through a symbolic link")
	}
	if after, _ := os.ReadFile(other); !bytes.Equal(before, after) {
		t.Error("the link's target changed")
	}
	if info, err := os.Lstat(path); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", info, err)
	}
	os.Remove(path)

	fifotest.Make(t, path)
	err = fifotest.WithinErr(t, "AddPin over a FIFO", func() error {
		return AddPin(dir, mustPin(t, nicQueue, 1))
	})
	wantError(t, err, path+": is a FIFO, not a regular file")
}

func TestAddPinNameClash(t *testing.T) {
	dir := t.TempDir()
	first := mustPin(t, Identity{Device: "0000:02:00.0", Actions: []string{"nvme0q1"}}, 1)
	if err := AddPin(dir, first); err != nil {
		t.Fatal(err)
	}
	before := readPinsFile(t, dir)
	pin := mustPin(t, nicQueue, 1)
	operator := filepath.Join(dir, "50-op.toml")
	writeFile(t, operator, fmt.Sprintf("# the operator took the name\n[[rule]]\nname = %q\ndevice = \"d\"\ncpus = \"2\"\n", pin.Name))
	err := AddPin(dir, pin)
	wantError(t, err, fmt.Sprintf("not adding pin %q, the rules directory would not load: %s:2: rule %q: name already used by the rule at %s:", pin.Name, operator, pin.Name, filepath.Join(dir, PinsFile)))
	if got := readPinsFile(t, dir); got != before {
		t.Errorf("pins file changed:\n%s", got)
	}

	// Without a pins file none is created.
	os.Remove(filepath.Join(dir, PinsFile))
	if err := AddPin(dir, pin); err == nil {
		t.Error("AddPin succeeded despite the clash")
	}
	if _, err := os.Lstat(filepath.Join(dir, PinsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins file created: %v", err)
	}
	noTempFiles(t, dir)
}

func TestAddPinInvalidRule(t *testing.T) {
	dir := t.TempDir()
	err := AddPin(dir, Rule{Name: "no effect", Device: "d"})
	wantError(t, err, filepath.Join(dir, PinsFile)+`: not adding the pin: rule #1: name "no effect"`)
	if _, err := os.Lstat(filepath.Join(dir, PinsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins file created: %v", err)
	}
}

func TestAddPinConcurrent(t *testing.T) {
	// Each AddPin reads, changes and rewrites the file: without the lock
	// one would write over another's pin.
	dir := t.TempDir()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		pin := mustPin(t, Identity{Device: fmt.Sprintf("0000:%02x:00.0", i), Actions: []string{"q"}}, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- AddPin(dir, pin)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != n {
		t.Errorf("%d pins after %d concurrent AddPin: %v", set.Len(), n, names(set))
	}
	noTempFiles(t, dir)
}
