package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/rules"
)

// TestRulesCommand: `irqshift rules` shows each rule with the IRQs it
// places and its problems, in text and JSON; list --json names each IRQ's
// device and rule.
func TestRulesCommand(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-rng.toml"), "# the RNG alone on CPU3\n[[rule]]\nname = \"rng\"\ndevice = \"0000:00:02.0\"\ncpus = \"3\"\nexclusive = true\n")
	writeFile(t, filepath.Join(dir, "20-none.toml"), "[[rule]]\nname = \"mlx\"\nactions = \"mlx5_comp*\"\ncpus = \"8-15\"\n")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--rules", dir}, args...)...)
	}
	code, out, errOut := cli("rules")
	if code != 0 {
		t.Fatalf("rules: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"rng", "10-rng.toml:2", "cpus 3, exclusive", "20,21", `rule "mlx": matches no IRQ`, "do not exist"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = cli("rules", "--json")
	var doc rulesDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("rules --json: exit %d\n%s", code, out)
	}
	if len(doc.Rules) != 2 || doc.Rules[0].Name != "rng" || !slices.Equal(doc.Rules[0].IRQs, []int{20, 21}) || doc.Rules[0].CPUs == nil {
		t.Errorf("rules --json: %+v", doc.Rules)
	}
	if len(doc.Problems) == 0 {
		t.Error("rules --json: no problems listed for rule mlx")
	}
	if code, out, _ = cli("list", "-o", "irq,class,rule", "20"); code != 0 || !regexp.MustCompile(`(?m)^20 +rule +rng$`).MatchString(out) {
		t.Errorf("list -o irq,class,rule 20 does not name rule rng: exit %d\n%s", code, out)
	}
	code, out, _ = cli("list", "--json")
	var list listDoc
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("list --json: exit %d", code)
	}
	for _, irq := range list.IRQs {
		if irq.IRQ == 21 && (irq.Rule != "rng" || irq.Device != "0000:00:02.0") {
			t.Errorf("list --json IRQ 21: rule %q device %q, want rng and 0000:00:02.0", irq.Rule, irq.Device)
		}
	}
}

// TestBadRulesChangeNothing: a rules file with a mistake fails every
// command with exit 1 and a message naming its file and line, and nothing
// is written.
func TestBadRulesChangeNothing(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-nic.toml"), "[[rule]]\nname = \"nic\"\nactions = \"virtio0-*\"\ncpus = \"8-x\"\n")
	mask := filepath.Join(proc, "irq", "13", "smp_affinity_list")
	before := readTrim(t, mask)
	for _, args := range [][]string{{"rebalance"}, {"list"}, {"rules"}, {"drain", "2"}} {
		code, out, errOut := runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--rules", dir}, args...)...)
		if code != 1 || !strings.Contains(errOut, "10-nic.toml:4") {
			t.Errorf("%v with a bad rules file: exit %d, stderr %q (want exit 1 naming 10-nic.toml:4)\n%s", args, code, errOut, out)
		}
	}
	if got := readTrim(t, mask); got != before {
		t.Errorf("IRQ 13's mask changed from %s to %s", before, got)
	}
}

// TestPinPersistCLI: pin --persist writes the rule into the rules
// directory's pins file and says so; unpin --persist removes it.
func TestPinPersistCLI(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := filepath.Join(t.TempDir(), "rules.d")
	state := filepath.Join(t.TempDir(), "state.json")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--rules", dir, "--state", state}, args...)...)
	}
	code, out, errOut := cli("pin", "--persist", "21", "2")
	if code != 0 || !strings.Contains(out, rules.PinsFile) {
		t.Fatalf("pin --persist: exit %d\n%s%s", code, out, errOut)
	}
	set, err := rules.Load(dir)
	if err != nil || set.Len() != 1 || set.Rules[0].Device != "0000:00:02.0" || set.Rules[0].Actions != "virtio1-input" {
		t.Fatalf("rules after pin --persist: %+v, %v", set, err)
	}
	if code, out, errOut := cli("unpin", "--persist", "21"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("unpin --persist: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, rules.PinsFile)); !os.IsNotExist(err) {
		t.Errorf("pins file after the last unpin --persist: %v", err)
	}
}

// TestManDescribesRules: the man page has the rules' format with its
// examples.
func TestManDescribesRules(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "man")
	if code != 0 {
		t.Fatalf("man: exit %d: %s", code, errOut)
	}
	for _, want := range []string{".SH DEVICE RULES", `name = "nic-queues"`, "exclusive = true", "ignore = true", "pin --persist"} {
		if !strings.Contains(out, want) {
			t.Errorf("the man page lacks %q", want)
		}
	}
}
