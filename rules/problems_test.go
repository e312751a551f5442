package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
)

func parseSet(t *testing.T, data string) *Set {
	t.Helper()
	rules, err := Parse("f.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return &Set{Dir: ".", Rules: rules}
}

func problemLines(problems []Problem) string {
	var b strings.Builder
	for _, p := range problems {
		fmt.Fprintln(&b, p)
	}
	return b.String()
}

var machine = []Identity{
	{Chip: "IR-PCI-MSIX-0000:01:00.0", Device: "0000:01:00.0", Driver: "mlx5_core", Actions: []string{"mlx5_comp0@pci:0000:01:00.0"}},
	{Chip: "IR-PCI-MSIX-0000:01:00.0", Device: "0000:01:00.0", Driver: "mlx5_core", Actions: []string{"mlx5_comp1@pci:0000:01:00.0"}},
	{Chip: "IR-PCI-MSIX-0000:01:00.0", Device: "0000:01:00.0", Driver: "mlx5_core", Actions: []string{"mlx5_async0@pci:0000:01:00.0"}},
	{Chip: "IR-PCI-MSIX-0000:02:00.0", Device: "0000:02:00.0", Driver: "nvme", Actions: []string{"nvme0q1"}},
	{Chip: "GICv3", Actions: []string{"fpga_dma"}},
	{Chip: "GICv3", Actions: []string{"arch_timer"}},
}

func TestProblemsNone(t *testing.T) {
	set := parseSet(t, `
[[rule]]
name = "nic"
device = "0000:01:00.*"
actions = "mlx5_comp*"
cpus = "8-15"

[[rule]]
name = "nic-rest"
device = "0000:01:00.*"
cpus = "0-7"

[[rule]]
name = "fpga"
chip = "GICv3"
actions = "fpga*"
ignore = true

[[rule]]
name = "nvme"
driver = "nvme"
node = "ignore"
`)
	if p := set.Problems(machine, cpuset.New(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)); len(p) != 0 {
		t.Errorf("problems in a good set:\n%s", problemLines(p))
	}
}

func TestProblems(t *testing.T) {
	set := parseSet(t, `[[rule]]
name = "nic"
device = "0000:01:00.*"
cpus = "8-15"

[[rule]]
name = "nic-comp"
device = "0000:01:00.0"
actions = "mlx5_comp*"
cpus = "16-23"

[[rule]]
name = "typo"
driver = "nvem"
cpus = "1"

[[rule]]
name = "far"
driver = "nvme"
cpus = "60-71"

[[rule]]
name = "beyond"
actions = "arch_timer"
cpus = "64-71"

[[rule]]
name = "timer-too"
chip = "GICv3"
actions = "*"
node = 0
`)
	possible, err := cpuset.ParseList("0-63")
	if err != nil {
		t.Fatal(err)
	}
	got := problemLines(set.Problems(machine, possible))
	want := `f.toml:6: rule "nic-comp": shadowed by rule "nic" (f.toml:1): every IRQ it matches, "nic" matched first
f.toml:12: rule "typo": matches no IRQ
f.toml:17: rule "far": cpus 60-71 include CPUs that do not exist: 64-71 (possible: 0-63)
f.toml:22: rule "beyond": cpus 64-71 include CPUs that do not exist (possible: 0-63)
`
	if got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	// timer-too matches two IRQs; "beyond" took only one of them.
	for _, p := range set.Problems(machine, possible) {
		if p.Rule == "timer-too" {
			t.Errorf("timer-too is reported: %v", p)
		}
	}
}

func TestProblemsShadowedByTwo(t *testing.T) {
	set := parseSet(t, `[[rule]]
name = "comp"
actions = "mlx5_comp*"
cpus = "1"

[[rule]]
name = "async"
actions = "mlx5_async*"
cpus = "2"

[[rule]]
name = "nic"
device = "0000:01:00.0"
cpus = "3"
`)
	got := problemLines(set.Problems(machine, cpuset.Set{}))
	want := `f.toml:11: rule "nic": shadowed by rules "comp" (f.toml:1), "async" (f.toml:6): every IRQ it matches, one of them matched first` + "\n"
	if got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
}

func TestProblemsUnknownPossible(t *testing.T) {
	// Without the possible CPUs no CPU can be said not to exist.
	set := parseSet(t, "[[rule]]\nname = \"nic\"\ndevice = \"0000:01:00.0\"\ncpus = \"9999\"\n")
	if p := set.Problems(machine, cpuset.Set{}); len(p) != 0 {
		t.Errorf("problems:\n%s", problemLines(p))
	}
	if p := set.Problems(nil, cpuset.New(0)); len(p) != 2 || p[0].Text != "matches no IRQ" {
		t.Errorf("with no IRQs and CPU 0:\n%s", problemLines(p))
	}
}
