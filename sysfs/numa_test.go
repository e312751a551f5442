package sysfs

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/quote"
)

func TestParseNode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0\n", 0, true},
		{"1\n", 1, true},
		{"-1\n", -1, true},
		{"1023\n", 1023, true},
		{"3", 3, true}, // a fixture without the newline
		{"", 0, false},
		{"\n", 0, false},
		{"-\n", 0, false},
		{"-2\n", 0, false},
		{"-0\n", 0, false},
		{"+1\n", 0, false},
		{" 1\n", 0, false},
		{"1 \n", 0, false},
		{"01\n", 0, false},
		{"1\n\n", 0, false},
		{"1\n2\n", 0, false},
		{"0x1\n", 0, false},
		{"65535\n", 65535, true},
		{"65536\n", 0, false},
		{"99999999999999999999999\n", 0, false},
		{"node1\n", 0, false},
		{"\x001\n", 0, false},
	} {
		got, err := parseNode([]byte(tt.in))
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("parseNode(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrFileParse) {
			t.Errorf("parseNode(%q) = %d, %v; want ErrFileParse", tt.in, got, err)
		} else if !strings.Contains(err.Error(), quote.Quote(tt.in)) {
			t.Errorf("parseNode(%q): %v does not quote the content", tt.in, err)
		}
	}
	_, err := parseNode([]byte(strings.Repeat("7", 10<<20)))
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("a 10 MB node file: error of %d bytes, want a short one", len(err.Error()))
	}
}

func TestChipPCIAddress(t *testing.T) {
	for chip, want := range map[string]string{
		"ITS-PCI-MSIX-0000:00:02.0":    "0000:00:02.0",
		"ITS-PCI-MSI-0000:00:03.0":     "0000:00:03.0",
		"GICv2m-PCI-MSIX-0001:80:00.1": "0001:80:00.1",
		"IR-PCI-MSIX-0000:00:14.3":     "0000:00:14.3",
		"PCI-MSI-0000:00:1f.7":         "0000:00:1f.7",
		"ITS-PCI-MSIX-10000:e1:00.0":   "10000:e1:00.0", // VMD domains have five digits
		// GICv5 (6.17+): the ITS's msi_parent_ops prefix is "ITS-v5-"
		// (irq-gic-its-msi-parent.c), so the same name follows it. The
		// IWB's wired-to-MSI domain is named after its platform device.
		"ITS-v5-PCI-MSIX-0000:00:02.0":                   "0000:00:02.0",
		"ITS-v5-PCI-MSI-0000:01:00.0":                    "0000:01:00.0",
		"ITS-v5-PCI-MSIX-0002:c0:1f.7":                   "0002:c0:1f.7",
		"ITS-v5-GICv5-IWB-2f000000.interrupt-controller": "",
		"GICv5-SPI":                       "",
		"GICv5-ITS-MSI":                   "",
		"ITS-v5-PCI-MSIX-":                "",
		"ITS-v5PCI-MSIX-0000:00:02.0":     "", // no dash before the chip's own name
		"ITS-PCI-MSIX-0000:00:02.0-x":     "",
		"ITS-MSI":                         "",
		"GICv3":                           "",
		"BRCM STB PCIe MSI":               "",
		"PCI-MSIX":                        "",
		"ITS-PCI-MSIX-":                   "",
		"ITS-PCI-MSIX-0000:00:02":         "",
		"ITS-PCI-MSIX-0000:00:20.0":       "", // device ≤ 1f
		"ITS-PCI-MSIX-0000:00:02.8":       "", // function ≤ 7
		"ITS-PCI-MSIX-0000:00:0A.0":       "", // pci_name prints lower case
		"ITS-PCI-MSIX-000:00:02.0":        "",
		"ITS-PCI-MSIX-123456789:00:02.0":  "",
		"ITS-PCI-MSIX-0000:00:02.0/..":    "",
		"ITS-PCI-MSIX-../../0000:00:02.0": "",
		"XPCI-MSIX-0000:00:02.0":          "", // not a PCI-MSI chip of its own
		"ITS-PCI-MSIX-0000:0:02.0":        "",
		"ITS-PCI-MSIX-0000:00:02.00":      "",
		"ITS-PCI-MSIX-0000::00:02.0":      "",
	} {
		got, ok := ChipPCIAddress(chip)
		if got != want || ok != (want != "") {
			t.Errorf("ChipPCIAddress(%q) = %q, %v; want %q", chip, got, ok, want)
		}
	}
}

// FuzzIRQNode feeds the node parser and the chip name parser the same
// bytes: neither may panic, a node is -1 or in range and prints back as
// it was read, an error is ErrFileParse and short, and a PCI address is
// the end of the chip name and has no path separator.
func FuzzIRQNode(f *testing.F) {
	for _, seed := range []string{
		"0\n", "1\n", "-1\n", "1023\n", "", "\n", "-2\n", "01\n", "+1\n", " 1\n", "65536\n",
		"99999999999999999999\n", "1\n\n", "x", "ITS-PCI-MSIX-0000:00:02.0", "ITS-PCI-MSI-0000:00:03.0",
		"GICv2m-PCI-MSIX-0001:80:00.1", "ITS-MSI", "ITS-PCI-MSIX-0000:00:02.0/../..", "PCI-MSIX-",
		"ITS-v5-PCI-MSIX-0000:00:02.0", "ITS-v5-GICv5-IWB-2f000000.interrupt-controller",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		node, err := parseNode(data)
		if err != nil {
			if !errors.Is(err, ErrFileParse) || len(err.Error()) > 300 {
				t.Fatalf("parseNode(%q): error %v", data, err)
			}
		} else {
			if node < -1 || node >= maxNode {
				t.Fatalf("parseNode(%q) = %d, out of range", data, node)
			}
			text := strings.TrimSuffix(string(data), "\n")
			if strconv.Itoa(node) != text {
				t.Fatalf("parseNode(%q) = %d, which prints otherwise", data, node)
			}
		}
		chip := string(data)
		if bdf, ok := ChipPCIAddress(chip); ok {
			if !strings.HasSuffix(chip, bdf) || strings.ContainsAny(bdf, "/\x00") || !validPCIAddress(bdf) {
				t.Fatalf("ChipPCIAddress(%q) = %q", chip, bdf)
			}
		} else if bdf != "" {
			t.Fatalf("ChipPCIAddress(%q) = %q with ok false", chip, bdf)
		}
	})
}

// TestSnapshotIRQNodes: /proc/irq/N/node first; where it says -1 (or is
// absent), the PCI device that a per-device MSI chip names; anything
// unreadable or unparsable is unknown, never an error.
func TestSnapshotIRQNodes(t *testing.T) {
	rows := []struct {
		irq  int
		chip string
		node string // /proc/irq/N/node; "" for none
	}{
		{11, "GICv3", "-1\n"},                         // per-CPU: unknown
		{13, "GICv3", "0\n"},                          // from the node file
		{20, "ITS-PCI-MSIX-0000:00:02.0", "-1\n"},     // device 02.0 is on node 1
		{21, "ITS-PCI-MSIX-0000:00:02.0", "-1\n"},     // same device (read once)
		{22, "ITS-PCI-MSIX-0000:00:03.0", "2\n"},      // the node file wins over the device's 0
		{23, "ITS-PCI-MSI-0000:00:04.0", "-1\n"},      // device says -1: unknown
		{24, "GICv2m-PCI-MSIX-0001:80:00.1", "-1\n"},  // device on node 3
		{25, "ITS-MSI", "-1\n"},                       // 6.1: no device named
		{26, "ITS-PCI-MSIX-0000:00:05.0", "banana\n"}, // garbage: unknown, no fallback
		{27, "ITS-PCI-MSIX-0000:00:02.0", ""},         // no node file: the device's
		{28, "ITS-PCI-MSIX-0000:00:06.0", "-1\n"},     // device's numa_node is garbage
		{29, "ITS-PCI-MSIX-0000:00:07.0", "-1\n"},     // no such device
		{30, "BRCM STB PCIe MSI", "-1\n"},             // chip without an address
		{31, "ITS-PCI-MSIX-0000:00:02.0", "1"},        // no newline
		{32, "ITS-PCI-MSIX-0000:00:02.0", "dir"},      // node is a directory: read fails
		{33, "ITS-PCI-MSIX-0000:00:02.0", "-1\n"},     // vanished: no /proc/irq/33
	}
	files := map[string]string{
		"sys/devices/system/cpu/possible":              "0-1\n",
		"sys/devices/system/cpu/present":               "0-1\n",
		"sys/devices/system/cpu/online":                "0-1\n",
		"sys/bus/pci/devices/0000:00:02.0/numa_node":   "1\n",
		"sys/bus/pci/devices/0000:00:03.0/numa_node":   "0\n",
		"sys/bus/pci/devices/0000:00:04.0/numa_node":   "-1\n",
		"sys/bus/pci/devices/0001:80:00.1/numa_node":   "3\n",
		"sys/bus/pci/devices/0000:00:05.0/numa_node":   "1\n",
		"sys/bus/pci/devices/0000:00:06.0/numa_node":   "one\n",
		"sys/bus/pci/devices/0000:00:02.0/power/async": "disabled\n",
	}
	var in strings.Builder
	in.WriteString("           CPU0       CPU1       \n")
	for _, r := range rows {
		in.WriteString(" " + strconv.Itoa(r.irq) + ":          0          0 " + r.chip + "   0 Edge      dev" + strconv.Itoa(r.irq) + "\n")
		if r.irq == 33 {
			continue
		}
		dir := "proc/irq/" + strconv.Itoa(r.irq) + "/"
		files[dir+"smp_affinity_list"] = "0-1\n"
		files[dir+"effective_affinity_list"] = "0\n"
		switch r.node {
		case "":
		case "dir":
			files[dir+"node/x"] = "1\n"
		default:
			files[dir+"node"] = r.node
		}
	}
	in.WriteString("IPI0:          0          0       Rescheduling interrupts\nErr:          0\n")
	files["proc/interrupts"] = in.String()
	fs := writeTree(t, files)
	snap, err := fs.Snapshot(SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{13: 0, 20: 1, 21: 1, 22: 2, 24: 3, 27: 1, 31: 1}
	if len(snap.IRQNodes) != len(want) {
		t.Errorf("IRQNodes = %v, want %v", snap.IRQNodes, want)
	}
	for irq, node := range want {
		if got, ok := snap.IRQNodes[irq]; !ok || got != node {
			t.Errorf("IRQNodes[%d] = %d, %v; want %d", irq, got, ok, node)
		}
	}
	if len(snap.Vanished) != 1 || snap.Vanished[0] != 33 {
		t.Errorf("vanished %v, want [33]", snap.Vanished)
	}
	for irq := range snap.IRQNodes {
		if _, ok := snap.Affinity[irq]; !ok {
			t.Errorf("IRQNodes has IRQ %d, which Affinity lacks", irq)
		}
	}
}

// TestReadSmallShortRead: a file read in one go needs no read at EOF, but
// a file longer than the buffer, or one without its newline, is read to
// the end.
func TestReadSmallShortRead(t *testing.T) {
	long := strings.Repeat("0,", 400) + "1\n"
	fs := writeTree(t, map[string]string{"proc/a": "0-3\n", "proc/b": long, "proc/c": "5", "proc/d": "1\n2\n"})
	for name, want := range map[string]string{"a": "0-3\n", "b": long, "c": "5", "d": "1\n2\n"} {
		data, _, err := readSmall(fs.ProcPath(name), make([]byte, 0, 16), false)
		if err != nil || string(data) != want {
			t.Errorf("%s: %q, %v; want %q", name, data, err, want)
		}
	}
	if _, _, err := readSmall(fs.ProcPath("nope"), nil, false); !isNotExist(err) {
		t.Errorf("a missing file: %v", err)
	}
	var pe *os.PathError
	if _, _, err := readSmall(fs.ProcPath("a")+"\x00", nil, false); !errors.As(err, &pe) {
		t.Errorf("a path with a NUL: %v", err)
	}
}
