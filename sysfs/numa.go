package sysfs

import (
	"fmt"
	"strings"

	"github.com/irqshift/irqshift/internal/quote"
)

// maxNode bounds the node numbers parseNode accepts. The kernel's
// MAX_NUMNODES is 1 << NODES_SHIFT, at most 1024 on arm64 and x86; the
// margin is CPUSet's.
const maxNode = MaxCPUs

// nodeNone is what the node files print for a device or IRQ without a
// node (NUMA_NO_NODE).
const nodeNone = -1

// nodeBad marks, inside the snapshot, a node file that could not be read
// or parsed: unknown, without asking the PCI device.
const nodeBad = -2

// parseNode parses a NUMA node file as the kernel prints it ("%d\n"):
// /proc/irq/N/node or /sys/bus/pci/devices/<BDF>/numa_node. It gives a
// node ≥ 0, or nodeNone for "-1". Anything else (a sign but -1's, leading
// zeros, spaces, a number past maxNode, a second line) is an error
// wrapping ErrFileParse that quotes the content with Quote.
func parseNode(data []byte) (int, error) {
	text := data
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	if string(text) == "-1" {
		return nodeNone, nil
	}
	if len(text) == 0 || len(text) > 1 && text[0] == '0' {
		return 0, nodeError(data)
	}
	node := 0
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, nodeError(data)
		}
		node = node*10 + int(c-'0')
		if node >= maxNode {
			return 0, nodeError(data)
		}
	}
	return node, nil
}

func nodeError(data []byte) error {
	return fmt.Errorf("%w: NUMA node %s", ErrFileParse, quote.Bytes(data))
}

// ChipPCIAddress returns the PCI address ("0000:00:02.0") at the end of the
// chip name of an IRQ from a per-device PCI MSI domain, as kernel 6.12
// names them: "ITS-PCI-MSIX-0000:00:02.0", "ITS-PCI-MSI-0000:00:03.0",
// "GICv2m-PCI-MSIX-0001:80:00.1" (the parent's prefix, the chip's name
// "PCI-MSI" or "PCI-MSIX", then the device's name). ok is false for any
// other name ("ITS-MSI" of 6.1, "GICv3", "PCI-MSIX-junk"). The address is
// checked to be pci_name's format ("%04x:%02x:%02x.%d": hex domain of 4 to
// 8 digits, bus, device ≤ 1f, function ≤ 7, lower case), so it is safe to
// join into a path.
func ChipPCIAddress(chip string) (bdf string, ok bool) {
	for _, kind := range []string{"PCI-MSIX-", "PCI-MSI-"} {
		i := strings.LastIndex(chip, kind)
		if i < 0 || i > 0 && chip[i-1] != '-' {
			continue
		}
		if bdf := chip[i+len(kind):]; validPCIAddress(bdf) {
			return bdf, true
		}
	}
	return "", false
}

// validPCIAddress reports whether s is DDDD:BB:DD.F as pci_name prints it.
func validPCIAddress(s string) bool {
	domain, rest, ok := strings.Cut(s, ":")
	if !ok || len(domain) < 4 || len(domain) > 8 || !lowerHex(domain) {
		return false
	}
	bus, rest, ok := strings.Cut(rest, ":")
	if !ok || len(bus) != 2 || !lowerHex(bus) {
		return false
	}
	dev, fn, ok := strings.Cut(rest, ".")
	if !ok || len(dev) != 2 || !lowerHex(dev) || dev[0] > '1' || len(fn) != 1 || fn[0] < '0' || fn[0] > '7' {
		return false
	}
	return true
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// PCINodePath is /sys/bus/pci/devices/<bdf>/numa_node.
func (fs FS) PCINodePath(bdf string) string {
	return fs.SysPath("bus", "pci", "devices", bdf, "numa_node")
}

// readNode reads and parses the node file at the NUL-terminated pathz
// into buf, which it returns grown. A missing file gives nodeNone (no node
// known, so the caller may look further); any other failure, of reading
// or parsing, gives nodeBad.
func readNode(pathz []byte, buf []byte) (int, []byte) {
	data, _, err := readSmallZ(pathz, buf, false)
	if isNotExist(err) {
		return nodeNone, buf
	}
	if err != nil {
		return nodeBad, buf
	}
	node, err := parseNode(data)
	if err != nil {
		return nodeBad, data
	}
	return node, data
}

// irqNodes fills snap.IRQNodes from nodes, which holds what
// /proc/irq/N/node said for each row of snap.Interrupts.IRQs (or nodeNone,
// nodeBad), as setNode does for one.
func (fs FS) irqNodes(snap *Snapshot, nodes []int) {
	pci := map[string]int{}
	for i, row := range snap.Interrupts.IRQs {
		if _, ok := snap.Affinity[row.IRQ]; ok {
			fs.setNode(snap, row, nodes[i], pci)
		}
	}
}

// setNode records in snap.IRQNodes the node of row's device, given what
// its /proc/irq/N/node said (raw). Where that said -1 (or was absent) and
// its chip is a per-device PCI MSI domain, the PCI device's numa_node
// decides; pci caches those per device (BDF → node, nodeNone when
// unknown) and may be nil.
func (fs FS) setNode(snap *Snapshot, row Interrupt, raw int, pci map[string]int) {
	node := raw
	if node == nodeNone {
		bdf, ok := ChipPCIAddress(row.Chip)
		if !ok {
			return
		}
		cached, seen := pci[bdf]
		if !seen {
			cached, _ = readNode(append([]byte(fs.PCINodePath(bdf)), 0), make([]byte, 0, 16))
			if pci != nil {
				pci[bdf] = cached
			}
		}
		node = cached
	}
	if node >= 0 {
		snap.IRQNodes[row.IRQ] = node
	}
}
