package sysfs_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// sysTree lays out a /sys by hand under a new root: files (path relative to
// the sys root → content; a path ending in "/" is a directory) and
// symlinks (path → target, as given). It returns an FS on it and the sys
// root.
func sysTree(t testing.TB, files, links map[string]string) (sysfs.FS, string) {
	t.Helper()
	root := t.TempDir()
	proc, sys := filepath.Join(root, "proc"), filepath.Join(root, "sys")
	for _, dir := range []string{proc, sys} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		path := filepath.Join(sys, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		path := filepath.Join(sys, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := sysfs.NewFS(proc, sys)
	if err != nil {
		t.Fatal(err)
	}
	return fs, sys
}

// pciDevice adds to files and links a PCI device laid out as the kernel
// does: its directory under devices/pci0000:00, the bus's symlink to it,
// and, where driver is set, its driver symlink and the driver's directory.
// msi lists the names in msi_irqs (nil: no msi_irqs); irq is the irq
// file's content ("" for none).
func pciDevice(files, links map[string]string, bdf, driver, irq string, msi ...string) {
	dir := "devices/pci0000:00/" + bdf
	files[dir+"/"] = ""
	links["bus/pci/devices/"+bdf] = "../../../" + dir
	if irq != "" {
		files[dir+"/irq"] = irq
	}
	for _, n := range msi {
		files[dir+"/msi_irqs/"+n] = "msix\n"
	}
	if driver != "" {
		files["bus/pci/drivers/"+driver+"/"] = ""
		links[dir+"/driver"] = "../../../bus/pci/drivers/" + driver
	}
}

func irqDevices(t testing.TB, fs sysfs.FS) map[int]sysfs.Device {
	t.Helper()
	got, err := fs.IRQDevices()
	if err != nil {
		t.Fatalf("IRQDevices: %v", err)
	}
	return got
}

func diffDevices(t testing.TB, got, want map[int]sysfs.Device) {
	t.Helper()
	for irq, w := range want {
		if g, ok := got[irq]; !ok || g != w {
			t.Errorf("IRQ %d: got %+v (%v), want %+v", irq, g, ok, w)
		}
	}
	for irq, g := range got {
		if _, ok := want[irq]; !ok {
			t.Errorf("IRQ %d: got %+v, want none", irq, g)
		}
	}
}

// TestIRQDevices reads a hand-made /sys of the devices a server shows.
func TestIRQDevices(t *testing.T) {
	files, links := map[string]string{}, map[string]string{}
	// An NVMe drive with MSI-X: its irq file names the INTx line the
	// firmware routed (16), which the device does not use.
	pciDevice(files, links, "0000:01:00.0", "nvme", "16\n", "40", "41", "42")
	// An INTx device sharing line 16 with the routing above.
	pciDevice(files, links, "0000:00:1f.3", "snd_hda_intel", "16\n")
	// INTx 17, shared by two devices with drivers: the lower address wins.
	pciDevice(files, links, "0000:00:1a.0", "ehci-pci", "17\n")
	pciDevice(files, links, "0000:00:1d.0", "ehci-pci", "17\n")
	// MSI vectors of a device without a driver (unbound halfway, or a
	// driver that leaked its vectors): they are its, driver unknown.
	pciDevice(files, links, "0000:02:00.0", "", "0\n", "50")
	// A device without a driver claims no INTx: it has requested none.
	pciDevice(files, links, "0000:00:1f.0", "", "9\n")
	// msi_irqs with junk names around real ones.
	pciDevice(files, links, "0000:03:00.0", "mlx5_core", "0\n",
		"60", "61", "default", "-1", "007", "+3", "99999999999", " 62", "63\n")
	// Kernels before 3.14: msi_irqs/<N> are directories holding mode.
	pciDevice(files, links, "0000:04:00.0", "e1000e", "0\n")
	files["devices/pci0000:00/0000:04:00.0/msi_irqs/70/mode"] = "msix\n"
	// Bad irq files: garbage, a number and a space, a directory (cannot
	// be read), missing, 0, past the largest IRQ. Each device is skipped.
	for i, irq := range []string{"abc\n", "18 \n", "", "", "0\n", "4294967296\n", "-19\n", "019\n", "19\n20\n"} {
		bdf := fmt.Sprintf("0000:05:%02x.0", i)
		pciDevice(files, links, bdf, "junk", irq)
		if i == 2 {
			files["devices/pci0000:00/"+bdf+"/irq/"] = ""
		}
	}
	// A device unplugged after the bus was listed: a dangling symlink.
	links["bus/pci/devices/0000:06:00.0"] = "../../../devices/pci0000:00/0000:06:00.0"
	// A junk entry in the bus's directory.
	files["bus/pci/devices/README"] = "not a device\n"
	// A device whose driver symlink is not one: no driver known.
	pciDevice(files, links, "0000:07:00.0", "", "0\n", "75")
	files["devices/pci0000:00/0000:07:00.0/driver"] = "nvme\n"
	// msi_irqs that is a file: the device is skipped, INTx included.
	pciDevice(files, links, "0000:08:00.0", "igb", "21\n")
	files["devices/pci0000:00/0000:08:00.0/msi_irqs"] = "garbage"
	// Platform MSI (an SMMU's event queues) and a platform device
	// without MSI. IRQ 90 is in a PCI device's msi_irqs too (a rebind
	// caught halfway): the PCI device wins.
	files["devices/platform/2b400000.smmu/msi_irqs/80"] = "msi\n"
	files["devices/platform/2b400000.smmu/msi_irqs/81"] = "msi\n"
	files["devices/platform/2b400000.smmu/msi_irqs/90"] = "msi\n"
	files["bus/platform/drivers/arm-smmu-v3/"] = ""
	links["devices/platform/2b400000.smmu/driver"] = "../../../bus/platform/drivers/arm-smmu-v3"
	links["bus/platform/devices/2b400000.smmu"] = "../../../devices/platform/2b400000.smmu"
	files["devices/platform/9000000.pl011/uevent"] = ""
	links["devices/platform/9000000.pl011/driver"] = "../../../bus/amba/drivers/uart-pl011"
	links["bus/platform/devices/9000000.pl011"] = "../../../devices/platform/9000000.pl011"
	pciDevice(files, links, "0000:09:00.0", "virtio-pci", "0\n", "90")

	fs, _ := sysTree(t, files, links)
	nvme := sysfs.Device{Name: "0000:01:00.0", Bus: "pci", Driver: "nvme"}
	mlx := sysfs.Device{Name: "0000:03:00.0", Bus: "pci", Driver: "mlx5_core"}
	smmu := sysfs.Device{Name: "2b400000.smmu", Bus: "platform", Driver: "arm-smmu-v3"}
	want := map[int]sysfs.Device{
		40: nvme, 41: nvme, 42: nvme,
		16: {Name: "0000:00:1f.3", Bus: "pci", Driver: "snd_hda_intel"},
		17: {Name: "0000:00:1a.0", Bus: "pci", Driver: "ehci-pci"},
		50: {Name: "0000:02:00.0", Bus: "pci"},
		60: mlx, 61: mlx,
		70: {Name: "0000:04:00.0", Bus: "pci", Driver: "e1000e"},
		75: {Name: "0000:07:00.0", Bus: "pci"},
		80: smmu, 81: smmu,
		90: {Name: "0000:09:00.0", Bus: "pci", Driver: "virtio-pci"},
	}
	diffDevices(t, irqDevices(t, fs), want)
}

// TestIRQDevicesNoBus: a /sys without /sys/bus, or with one bus only, is
// no error.
func TestIRQDevicesNoBus(t *testing.T) {
	fs, _ := sysTree(t, nil, nil)
	if got := irqDevices(t, fs); len(got) != 0 {
		t.Errorf("no /sys/bus: %v", got)
	}
	files := map[string]string{"bus/": "", "bus/pci/": "", "bus/platform/devices/": ""}
	fs, _ = sysTree(t, files, nil)
	if got := irqDevices(t, fs); len(got) != 0 {
		t.Errorf("empty buses: %v", got)
	}
	files, links := map[string]string{}, map[string]string{}
	pciDevice(files, links, "0000:00:02.0", "virtio-pci", "0\n", "20")
	fs, _ = sysTree(t, files, links)
	diffDevices(t, irqDevices(t, fs), map[int]sysfs.Device{20: {Name: "0000:00:02.0", Bus: "pci", Driver: "virtio-pci"}})
}

// TestIRQDevicesUnlistable: a bus's devices directory that exists but
// cannot be listed is the one error.
func TestIRQDevicesUnlistable(t *testing.T) {
	fs, _ := sysTree(t, map[string]string{"bus/platform/devices": "a file\n"}, nil)
	if got, err := fs.IRQDevices(); !errors.Is(err, sysfs.ErrFileRead) || got != nil {
		t.Errorf("IRQDevices = %v, %v; want an error wrapping ErrFileRead", got, err)
	}
}

// TestIRQDevicesVanishing: a device removed from under the reader is
// skipped, whatever part of it is gone.
func TestIRQDevicesVanishing(t *testing.T) {
	files, links := map[string]string{}, map[string]string{}
	pciDevice(files, links, "0000:01:00.0", "nvme", "0\n", "40")
	pciDevice(files, links, "0000:02:00.0", "nvme", "0\n", "50")
	pciDevice(files, links, "0000:03:00.0", "", "0\n", "60")
	fs, sys := sysTree(t, files, links)
	// 01:00.0 is gone, its bus symlink left dangling; 02:00.0's driver
	// unbound (vectors freed, link gone); 03:00.0's directory went
	// between its msi_irqs and the rest (here: all of it but the
	// listing is gone, which reads as gone from the start).
	for _, dir := range []string{"devices/pci0000:00/0000:01:00.0", "devices/pci0000:00/0000:02:00.0/msi_irqs", "devices/pci0000:00/0000:02:00.0/driver", "devices/pci0000:00/0000:03:00.0"} {
		if err := os.RemoveAll(filepath.Join(sys, dir)); err != nil {
			t.Fatal(err)
		}
	}
	if got := irqDevices(t, fs); len(got) != 0 {
		t.Errorf("got %v, want nothing", got)
	}
}

func TestDeviceFromChip(t *testing.T) {
	for chip, want := range map[string]string{
		"ITS-PCI-MSIX-0000:00:02.0":    "0000:00:02.0",
		"ITS-v5-PCI-MSIX-0000:00:03.0": "0000:00:03.0",
		"GICv2m-PCI-MSI-0001:80:00.1":  "0001:80:00.1",
		"ITS-MSI":                      "",
		"GICv3":                        "",
		"PCI-MSIX-junk":                "",
		"ITS-PCI-MSIX-0000:00:02.0/..": "",
	} {
		dev, ok := sysfs.DeviceFromChip(chip)
		if ok != (want != "") || dev.Name != want || ok && (dev.Bus != "pci" || dev.Driver != "") {
			t.Errorf("DeviceFromChip(%q) = %+v, %v; want %q", chip, dev, ok, want)
		}
	}
}

func TestPCIDriver(t *testing.T) {
	files, links := map[string]string{}, map[string]string{}
	pciDevice(files, links, "0000:00:02.0", "virtio-pci", "0\n", "20")
	pciDevice(files, links, "0000:00:03.0", "", "0\n")
	links["bus/pci/devices/x/driver"] = "../../drivers/evil"
	fs, _ := sysTree(t, files, links)
	for bdf, want := range map[string]string{
		"0000:00:02.0":  "virtio-pci",
		"0000:00:03.0":  "", // no driver bound
		"0000:00:04.0":  "", // no such device
		"x":             "", // not a PCI address
		"../../..":      "", // nor this
		"0000:00:02.0/": "", // nor this
	} {
		if got := fs.PCIDriver(bdf); got != want {
			t.Errorf("PCIDriver(%q) = %q, want %q", bdf, got, want)
		}
	}
}

// TestIRQDevicesSim reads the simulator's devices: the 6.12 NUMA VM's
// (the devices its chips name, no driver known) and Big's (drivers bound).
func TestIRQDevicesSim(t *testing.T) {
	s := sysfstest.New(t, sysfstest.NUMA8(sysfstest.Kernel612))
	got := irqDevices(t, s.FS())
	want := map[int]sysfs.Device{}
	snap, err := s.FS().Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range snap.Interrupts.IRQs {
		if dev, ok := sysfs.DeviceFromChip(row.Chip); ok {
			want[row.IRQ] = dev
		}
	}
	if len(want) != 14 {
		t.Fatalf("%d PCI IRQs in NUMA8, want 14", len(want))
	}
	diffDevices(t, got, want)

	const cpus, nodes, irqs = 64, 4, 1024
	s = sysfstest.New(t, sysfstest.Big(cpus, nodes, irqs))
	got = irqDevices(t, s.FS())
	if snap, err = s.FS().Snapshot(sysfs.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	drivers := map[string]int{}
	for _, row := range snap.Interrupts.IRQs {
		dev, ok := got[row.IRQ]
		fromChip, pci := sysfs.DeviceFromChip(row.Chip)
		if ok != pci || ok && dev.Name != fromChip.Name {
			t.Fatalf("IRQ %d (%s): device %+v, %v", row.IRQ, row.Chip, dev, ok)
		}
		if !ok {
			continue
		}
		drivers[dev.Driver]++
		managed := s.Kind(row.IRQ) == sysfstest.KindManaged
		if want := map[bool]string{true: "nvme", false: "mlx5_core"}[managed]; dev.Driver != want {
			t.Errorf("IRQ %d (%s): driver %q, want %q", row.IRQ, s.Kind(row.IRQ), dev.Driver, want)
		}
		if drv := s.FS().PCIDriver(dev.Name); drv != dev.Driver {
			t.Errorf("PCIDriver(%s) = %q, want %q", dev.Name, drv, dev.Driver)
		}
	}
	if len(got) != irqs-2-irqs/16 || drivers["nvme"] == 0 || drivers["mlx5_core"] == 0 {
		t.Errorf("%d IRQs with a device (drivers %v), want %d", len(got), drivers, irqs-2-irqs/16)
	}
}

// FuzzIRQFile feeds the irq file of an INTx device with a driver: the
// device claims the IRQ exactly when the file is "%u\n" (or "%u") of a
// number from 1 to the largest IRQ, and nothing panics.
func FuzzIRQFile(f *testing.F) {
	for _, seed := range []string{"16\n", "0\n", "16", "", "\n", "016\n", "+16\n", "-1\n", "16 \n", " 16\n",
		"16\n\n", "2147483647\n", "2147483648\n", "99999999999999999999\n", "1\x00\n", "0x10\n", "1_6\n"} {
		f.Add([]byte(seed))
	}
	// One tree for the worker, whose calls are sequential: only the irq
	// file changes.
	files, links := map[string]string{}, map[string]string{}
	pciDevice(files, links, "0000:00:1f.3", "snd_hda_intel", "0\n")
	fs, sys := sysTree(f, files, links)
	path := filepath.Join(sys, "devices/pci0000:00/0000:00:1f.3/irq")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o444); err != nil {
			t.Fatal(err)
		}
		got := irqDevices(t, fs)

		want := map[int]sysfs.Device{}
		text := strings.TrimSuffix(string(data), "\n")
		if n, err := strconv.ParseUint(text, 10, 31); err == nil && n > 0 && text[0] != '0' {
			want[int(n)] = sysfs.Device{Name: "0000:00:1f.3", Bus: "pci", Driver: "snd_hda_intel"}
		}
		if !maps.Equal(got, want) {
			t.Errorf("irq file %q: got %v, want %v", data, got, want)
		}
	})
}

// BenchmarkIRQDevices reads the devices of the simulator's big machines:
// 30 and 120 PCI functions of (up to) 32 MSI-X vectors each, drivers
// bound.
func BenchmarkIRQDevices(b *testing.B) {
	for _, size := range []struct{ cpus, nodes, irqs int }{{64, 2, 1024}, {256, 4, 4096}} {
		b.Run(fmt.Sprintf("%dx%d", size.cpus, size.irqs), func(b *testing.B) {
			s := sysfstest.New(b, sysfstest.Big(size.cpus, size.nodes, size.irqs))
			fs := s.FS()
			b.ReportAllocs()
			var n int
			for b.Loop() {
				got, err := fs.IRQDevices()
				if err != nil {
					b.Fatal(err)
				}
				n = len(got)
			}
			if n == 0 {
				b.Fatal("no IRQ has a device")
			}
		})
	}
}

// TestIRQDevicesVirtio: a virtio device's IRQs are its virtio driver's
// (virtio_rng), the driver of the virtioN device under the virtio-pci
// transport; without a bound virtio driver, the transport's name stays.
func TestIRQDevicesVirtio(t *testing.T) {
	files, links := map[string]string{}, map[string]string{}
	pciDevice(files, links, "0000:00:02.0", "virtio-pci", "0\n", "20", "21")
	files["devices/pci0000:00/0000:00:02.0/virtio1/"] = ""
	files["bus/virtio/drivers/virtio_rng/"] = ""
	links["devices/pci0000:00/0000:00:02.0/virtio1/driver"] = "../../../../bus/virtio/drivers/virtio_rng"
	pciDevice(files, links, "0000:00:03.0", "virtio-pci", "0\n", "23")
	files["devices/pci0000:00/0000:00:03.0/virtio2/"] = "" // its driver not loaded
	fs, _ := sysTree(t, files, links)
	diffDevices(t, irqDevices(t, fs), map[int]sysfs.Device{
		20: {Name: "0000:00:02.0", Bus: "pci", Driver: "virtio_rng"},
		21: {Name: "0000:00:02.0", Bus: "pci", Driver: "virtio_rng"},
		23: {Name: "0000:00:03.0", Bus: "pci", Driver: "virtio-pci"},
	})
}
