package rules

import (
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
)

func TestMatches(t *testing.T) {
	nic := Identity{Chip: "IR-PCI-MSIX-0000:01:00.0", Actions: []string{"mlx5_comp3@pci:0000:01:00.0"}, Device: "0000:01:00.0", Driver: "mlx5_core"}
	shared := Identity{Chip: "IO-APIC", Actions: []string{"ehci_hcd:usb1", "fpga_dma"}, Device: "0000:00:1d.0", Driver: "ehci-pci"}
	orphan := Identity{Chip: "GICv3", Actions: []string{"arch_timer"}}
	silent := Identity{Chip: "PCI-MSI", Device: "0000:02:00.0", Driver: "nvme"}
	for _, tc := range []struct {
		name string
		rule Rule
		id   Identity
		want bool
	}{
		{"device exact", Rule{Device: "0000:01:00.0"}, nic, true},
		{"device glob", Rule{Device: "0000:01:00.*"}, nic, true},
		{"device other", Rule{Device: "0000:02:00.*"}, nic, false},
		{"device class", Rule{Device: "0000:0[0-1]:00.0"}, nic, true},
		{"device unknown", Rule{Device: "*"}, orphan, false},
		{"driver", Rule{Driver: "mlx5_*"}, nic, true},
		{"driver other", Rule{Driver: "nvme"}, nic, false},
		{"driver none bound", Rule{Driver: "*"}, orphan, false},
		{"chip", Rule{Chip: "GICv3", Actions: "*"}, orphan, true},
		{"chip other", Rule{Chip: "GICv4", Actions: "*"}, orphan, false},
		{"actions first", Rule{Actions: "ehci_hcd:*"}, shared, true},
		{"actions any", Rule{Actions: "fpga*"}, shared, true},
		{"actions none", Rule{Actions: "nvme*"}, shared, false},
		{"actions irq without actions", Rule{Actions: "*"}, silent, false},
		{"actions is not a substring", Rule{Actions: "mlx5_comp3"}, nic, false},
		{"every key must match", Rule{Device: "0000:01:00.0", Actions: "mlx5_comp*", Driver: "nvme"}, nic, false},
		{"all keys match", Rule{Device: "0000:01:00.0", Actions: "mlx5_comp*", Driver: "mlx5_core", Chip: "*MSIX*"}, nic, true},
		{"escaped glob is literal", Rule{Actions: `arch\_timer`}, orphan, true},
		{"escaped star", Rule{Actions: `arch\*`}, Identity{Actions: []string{"arch*"}}, true},
		{"escaped star is not a wildcard", Rule{Actions: `arch\*`}, Identity{Actions: []string{"arch_timer"}}, false},
		{"bad glob matches nothing", Rule{Actions: "["}, orphan, false},
	} {
		if got := tc.rule.Matches(tc.id); got != tc.want {
			t.Errorf("%s: %+v.Matches(%+v) = %v, want %v", tc.name, tc.rule, tc.id, got, tc.want)
		}
	}
}

func TestMatchFirstWins(t *testing.T) {
	rules, err := Parse("f.toml", []byte(exampleFile+`
[[rule]]
name = "all-nic"
device = "0000:01:00.*"
cpus = "0-7"
`))
	if err != nil {
		t.Fatal(err)
	}
	set := &Set{Rules: rules}
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Device: "0000:01:00.1", Actions: []string{"mlx5_comp0@pci:0000:01:00.1"}}, "nic-queues"},
		{Identity{Device: "0000:01:00.1", Actions: []string{"mlx5_async0@pci:0000:01:00.1"}}, "all-nic"},
		{Identity{Device: "virtio3", Driver: "virtio_rng", Actions: []string{"virtio3-virtqueues"}}, "rng"},
		{Identity{Chip: "GICv3", Actions: []string{"fpga_irq"}}, "leave-fpga"},
		{Identity{Chip: "ITS-MSI", Actions: []string{"fpga_irq"}}, ""},
		{Identity{Device: "0000:02:00.0", Driver: "nvme", Actions: []string{"nvme0q1"}}, "nvme-any-node"},
		{Identity{Device: "0000:03:00.0", Driver: "ahci", Actions: []string{"ahci"}}, ""},
	} {
		got := ""
		if r := set.Match(tc.id); r != nil {
			got = r.Name
		}
		if got != tc.want {
			t.Errorf("Match(%+v) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// Match returns the Set's own rule, not a copy.
	if r := set.Match(Identity{Device: "0000:02:00.0", Driver: "nvme", Actions: []string{"q"}}); r != &set.Rules[3] {
		t.Errorf("Match returned %p, want &Rules[3] %p", r, &set.Rules[3])
	}
}

func TestNilSet(t *testing.T) {
	var set *Set
	if set.Len() != 0 {
		t.Error("nil Set has rules")
	}
	if r := set.Match(Identity{Device: "d", Actions: []string{"a"}}); r != nil {
		t.Errorf("nil Set matched %+v", r)
	}
	if p := set.Problems([]Identity{{Device: "d"}}, cpuset.New(0)); p != nil {
		t.Errorf("nil Set has problems %v", p)
	}
}
