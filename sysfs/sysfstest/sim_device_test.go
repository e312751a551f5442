package sysfstest_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

const (
	nvmeBDF  = "0000:01:00.0"
	mlxBDF   = "0000:02:00.0"
	nvmeChip = "ITS-PCI-MSIX-" + nvmeBDF
	mlxChip  = "ITS-PCI-MSIX-" + mlxBDF
)

// deviceMachine is an 8-CPU 6.12 server on two nodes with an NVMe drive
// (four managed queues, IRQs 40-43) and a NIC (three MSI-X vectors, IRQs
// 50-52), both on node 1, and a UART without a device.
func deviceMachine() sysfstest.Config {
	cfg := sysfstest.Config{Kernel: sysfstest.Kernel612, Possible: 8, Nodes: []sysfs.CPUSet{cpus("0-3"), cpus("4-7")}}
	cfg.IRQs = append(cfg.IRQs, sysfstest.SPI(13, 33, "Level", "uart-pl011"))
	for i := range 4 {
		cfg.IRQs = append(cfg.IRQs, sysfstest.Managed(40+i, nvmeChip, uint64(i), 2*i, fmt.Sprintf("nvme0q%d", i)).
			WithNode(1).WithDevice(nvmeBDF, "nvme"))
	}
	cfg.IRQs = append(cfg.IRQs, mlxVectors(50, 51, 52)...)
	return cfg
}

// mlxVectors are the NIC's vectors as its driver allocates them, numbered
// irqs.
func mlxVectors(irqs ...int) []sysfstest.IRQ {
	var out []sysfstest.IRQ
	for i, irq := range irqs {
		out = append(out, sysfstest.MSI(irq, mlxChip, uint64(i), fmt.Sprintf("mlx5_comp%d@pci:%s", i, mlxBDF)).
			WithNode(1).WithDevice(mlxBDF, "mlx5_core"))
	}
	return out
}

func devicesOf(t *testing.T, s *sysfstest.Sim) map[int]sysfs.Device {
	t.Helper()
	got, err := s.FS().IRQDevices()
	if err != nil {
		t.Fatalf("IRQDevices: %v", err)
	}
	return got
}

// wantDevices maps each IRQ of irqs to dev.
func wantDevices(into map[int]sysfs.Device, dev sysfs.Device, irqs ...int) map[int]sysfs.Device {
	if into == nil {
		into = map[int]sysfs.Device{}
	}
	for _, irq := range irqs {
		into[irq] = dev
	}
	return into
}

func checkDevices(t *testing.T, s *sysfstest.Sim, want map[int]sysfs.Device) {
	t.Helper()
	if got := devicesOf(t, s); !maps.Equal(got, want) {
		t.Errorf("IRQDevices = %v, want %v", got, want)
	}
}

// link returns the target of the symlink rel in the tree, "" when rel is
// not a symlink.
func link(t *testing.T, s *sysfstest.Sim, rel string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(s.Root(), rel))
	if err != nil {
		return ""
	}
	return target
}

func exists(s *sysfstest.Sim, rel string) bool {
	_, err := os.Lstat(filepath.Join(s.Root(), rel))
	return err == nil
}

// msiIRQs lists the names in a device's msi_irqs, nil when it has none.
func msiIRQs(t *testing.T, s *sysfstest.Sim, devDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), devDir, "msi_irqs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			t.Errorf("%s/msi_irqs/%s is %v, want a file", devDir, e.Name(), e.Type())
		}
		names = append(names, e.Name())
	}
	return names
}

// TestDeviceFiles: after New, each device has its directory, its bus's
// symlink to it, msi_irqs, irq, numa_node and driver as the kernel shows
// them, and sysfs reads them back.
func TestDeviceFiles(t *testing.T) {
	cfg := sysfstest.Config{Kernel: sysfstest.Kernel612, Possible: 4, Nodes: []sysfs.CPUSet{cpus("0-1"), cpus("2-3")},
		IRQs: []sysfstest.IRQ{
			sysfstest.SPI(13, 33, "Level", "uart-pl011"),
			// A SATA controller on INTx.
			sysfstest.SPI(16, 36, "Level", "ahci[0000:00:1f.2]").WithDevice("0000:00:1f.2", "ahci"),
			sysfstest.MSI(40, nvmeChip, 0, "nvme0q0").WithNode(1).WithDevice(nvmeBDF, "nvme"),
			sysfstest.Managed(41, nvmeChip, 1, 0, "nvme0q1").WithNode(1).WithDevice(nvmeBDF, "nvme"),
			// The chip names the device, the sibling IRQs the driver.
			sysfstest.Managed(42, nvmeChip, 2, 2, "nvme0q2").WithNode(1),
			// MSI, not MSI-X; the device of the chip, no driver given.
			sysfstest.MSI(50, "ITS-PCI-MSI-"+mlxBDF, 0, "eth0").WithNode(0),
			// Platform MSI: an SMMU's event queue.
			sysfstest.MSI(60, "ITS-pMSI-2b400000.smmu", 0, "arm-smmu-v3-evtq").WithNode(-1).
				WithDevice("2b400000.smmu", "arm-smmu-v3"),
		}}
	s := sysfstest.New(t, cfg)
	nvmeDir := "sys/devices/pci0000:00/" + nvmeBDF
	for rel, want := range map[string]string{
		"sys/bus/pci/devices/" + nvmeBDF:                     "../../../devices/pci0000:00/" + nvmeBDF,
		"sys/bus/pci/devices/" + mlxBDF:                      "../../../devices/pci0000:00/" + mlxBDF,
		"sys/bus/pci/devices/0000:00:1f.2":                   "../../../devices/pci0000:00/0000:00:1f.2",
		"sys/bus/platform/devices/2b400000.smmu":             "../../../devices/platform/2b400000.smmu",
		nvmeDir + "/driver":                                  "../../../bus/pci/drivers/nvme",
		"sys/devices/pci0000:00/0000:00:1f.2/driver":         "../../../bus/pci/drivers/ahci",
		"sys/devices/platform/2b400000.smmu/driver":          "../../../bus/platform/drivers/arm-smmu-v3",
		"sys/bus/pci/drivers/nvme/" + nvmeBDF:                "../../../../devices/pci0000:00/" + nvmeBDF,
		"sys/bus/platform/drivers/arm-smmu-v3/2b400000.smmu": "../../../../devices/platform/2b400000.smmu",
		"sys/devices/pci0000:00/" + mlxBDF + "/driver":       "",
	} {
		if got := link(t, s, rel); got != want {
			t.Errorf("%s → %q, want %q", rel, got, want)
		}
	}
	for rel, want := range map[string]string{
		nvmeDir + "/msi_irqs/40":                            "msix\n",
		nvmeDir + "/msi_irqs/42":                            "msix\n",
		nvmeDir + "/irq":                                    "0\n",
		nvmeDir + "/numa_node":                              "1\n",
		"sys/devices/pci0000:00/" + mlxBDF + "/msi_irqs/50": "msi\n",
		"sys/devices/pci0000:00/" + mlxBDF + "/numa_node":   "0\n",
		"sys/devices/pci0000:00/0000:00:1f.2/irq":           "16\n",
		"sys/devices/platform/2b400000.smmu/msi_irqs/60":    "msi\n",
	} {
		if got := readTree(t, s, rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	if got := msiIRQs(t, s, nvmeDir); !slices.Equal(got, []string{"40", "41", "42"}) {
		t.Errorf("nvme msi_irqs %v", got)
	}
	for _, rel := range []string{"sys/devices/pci0000:00/0000:00:1f.2/msi_irqs", "sys/devices/platform/2b400000.smmu/irq"} {
		if exists(s, rel) {
			t.Errorf("%s exists", rel)
		}
	}
	if info, err := os.Stat(filepath.Join(s.SysDir(), "bus", "pci", "drivers", "nvme")); err != nil || !info.IsDir() {
		t.Errorf("nvme's driver directory: %v", err)
	}
	// The numa_node readers find is the device's, through the symlink.
	data, err := os.ReadFile(s.FS().PCINodePath(nvmeBDF))
	if err != nil || string(data) != "1\n" {
		t.Errorf("%s = %q, %v", s.FS().PCINodePath(nvmeBDF), data, err)
	}

	nvme := sysfs.Device{Name: nvmeBDF, Bus: "pci", Driver: "nvme"}
	want := wantDevices(nil, nvme, 40, 41, 42)
	want[16] = sysfs.Device{Name: "0000:00:1f.2", Bus: "pci", Driver: "ahci"}
	want[50] = sysfs.Device{Name: mlxBDF, Bus: "pci"}
	want[60] = sysfs.Device{Name: "2b400000.smmu", Bus: "platform", Driver: "arm-smmu-v3"}
	checkDevices(t, s, want)
	if got := s.FS().PCIDriver(nvmeBDF); got != "nvme" {
		t.Errorf("PCIDriver = %q", got)
	}

	// The INTx device unbound: its IRQ freed, its irq file 0.
	if err := s.UnbindDevice("0000:00:1f.2"); err != nil {
		t.Fatal(err)
	}
	delete(want, 16)
	checkDevices(t, s, want)
	if got := readTree(t, s, "sys/devices/pci0000:00/0000:00:1f.2/irq"); got != "0\n" || s.Kind(16) != 0 {
		t.Errorf("after unbind: irq %q, IRQ 16 %v", got, s.Kind(16))
	}
}

// TestUnbindBind: a driver unbound and bound again, with the same IRQ
// numbers and then with new ones (and another driver, as vfio-pci takes a
// NIC over), as sysfs's snapshot and IRQDevices see it.
func TestUnbindBind(t *testing.T) {
	s := sysfstest.New(t, deviceMachine())
	nvme := sysfs.Device{Name: nvmeBDF, Bus: "pci", Driver: "nvme"}
	mlx := sysfs.Device{Name: mlxBDF, Bus: "pci", Driver: "mlx5_core"}
	mlxDir := "sys/devices/pci0000:00/" + mlxBDF
	checkDevices(t, s, wantDevices(wantDevices(nil, nvme, 40, 41, 42, 43), mlx, 50, 51, 52))
	// Move one vector off the kernel's default, to see the bind restore it.
	if err := s.WriteAffinity(51, cpus("1")); err != nil {
		t.Fatal(err)
	}

	if err := s.UnbindDevice(mlxBDF); err != nil {
		t.Fatal(err)
	}
	checkDevices(t, s, wantDevices(nil, nvme, 40, 41, 42, 43))
	snap := snapshot(t, s)
	for _, irq := range []int{50, 51, 52} {
		if _, ok := snap.Affinity[irq]; ok || exists(s, fmt.Sprintf("proc/irq/%d", irq)) || s.Kind(irq) != 0 {
			t.Errorf("IRQ %d still there after the unbind", irq)
		}
	}
	if len(snap.Vanished) != 0 || len(snap.Affinity) != 5 {
		t.Errorf("snapshot: %d IRQs, vanished %v; want 5 and none", len(snap.Affinity), snap.Vanished)
	}
	if msi := msiIRQs(t, s, mlxDir); msi != nil || link(t, s, mlxDir+"/driver") != "" ||
		exists(s, "sys/bus/pci/drivers/mlx5_core/"+mlxBDF) {
		t.Errorf("after unbind: msi_irqs %v, driver %q", msi, link(t, s, mlxDir+"/driver"))
	}
	// The device stays, and its driver loaded.
	if readTree(t, s, mlxDir+"/numa_node") != "1\n" || !exists(s, "sys/bus/pci/drivers/mlx5_core") ||
		link(t, s, "sys/bus/pci/devices/"+mlxBDF) == "" {
		t.Error("the device or its driver went with the unbind")
	}
	if err := s.UnbindDevice(mlxBDF); err == nil {
		t.Error("second unbind: no error")
	}

	// Bound again with the same numbers: the kernel's node-local default
	// masks, not the admin's pin.
	if err := s.BindDevice(mlxBDF, "mlx5_core", mlxVectors(50, 51, 52)...); err != nil {
		t.Fatal(err)
	}
	checkDevices(t, s, wantDevices(wantDevices(nil, nvme, 40, 41, 42, 43), mlx, 50, 51, 52))
	snap = snapshot(t, s)
	for _, irq := range []int{50, 51, 52} {
		aff, ok := snap.Affinity[irq]
		if !ok || !aff.Affinity.Equal(cpus("4-7")) || !aff.Effective.IsSubsetOf(cpus("4-7")) || snap.IRQNodes[irq] != 1 {
			t.Errorf("IRQ %d after bind: %+v, %v, node %d; want mask 4-7 on node 1", irq, aff, ok, snap.IRQNodes[irq])
		}
	}
	if msi := msiIRQs(t, s, mlxDir); !slices.Equal(msi, []string{"50", "51", "52"}) ||
		link(t, s, mlxDir+"/driver") != "../../../bus/pci/drivers/mlx5_core" ||
		link(t, s, "sys/bus/pci/drivers/mlx5_core/"+mlxBDF) == "" {
		t.Errorf("after bind: msi_irqs %v, driver %q", msi, link(t, s, mlxDir+"/driver"))
	}
	if err := s.BindDevice(mlxBDF, "mlx5_core", mlxVectors(53)...); err == nil {
		t.Error("bind of a bound device: no error")
	}

	// Unbound, then bound to vfio-pci, which allocates new numbers.
	if err := s.UnbindDevice(mlxBDF); err != nil {
		t.Fatal(err)
	}
	vfio := mlxVectors(70, 71)
	for i := range vfio {
		vfio[i].Actions = []string{fmt.Sprintf("vfio-msix[%d](%s)", i, mlxBDF)}
		vfio[i].Driver = "vfio-pci"
	}
	if err := s.BindDevice(mlxBDF, "vfio-pci", vfio...); err != nil {
		t.Fatal(err)
	}
	mlx.Driver = "vfio-pci"
	checkDevices(t, s, wantDevices(wantDevices(nil, nvme, 40, 41, 42, 43), mlx, 70, 71))
	snap = snapshot(t, s)
	var rows []int
	for _, row := range snap.Interrupts.IRQs {
		rows = append(rows, row.IRQ)
	}
	if want := []int{13, 40, 41, 42, 43, 70, 71}; !slices.Equal(rows, want) {
		t.Errorf("/proc/interrupts rows %v, want %v", rows, want)
	}
	if msi := msiIRQs(t, s, mlxDir); !slices.Equal(msi, []string{"70", "71"}) ||
		link(t, s, mlxDir+"/driver") != "../../../bus/pci/drivers/vfio-pci" ||
		exists(s, "sys/bus/pci/drivers/mlx5_core/"+mlxBDF) || !exists(s, "sys/bus/pci/drivers/vfio-pci/"+mlxBDF) {
		t.Errorf("after vfio bind: msi_irqs %v, driver %q", msi, link(t, s, mlxDir+"/driver"))
	}

	// The managed queues: unbound and bound again with their own masks.
	if err := s.UnbindDevice(nvmeBDF); err != nil {
		t.Fatal(err)
	}
	checkDevices(t, s, wantDevices(nil, mlx, 70, 71))
	var queues []sysfstest.IRQ
	for i := range 4 {
		queues = append(queues, sysfstest.Managed(40+i, nvmeChip, uint64(i), 2*i, fmt.Sprintf("nvme0q%d", i)).WithNode(1))
	}
	if err := s.BindDevice(nvmeBDF, "nvme", queues...); err != nil {
		t.Fatal(err)
	}
	checkDevices(t, s, wantDevices(wantDevices(nil, nvme, 40, 41, 42, 43), mlx, 70, 71))
	for i := range 4 {
		if aff, _, _ := s.State(40 + i); aff.String() != fmt.Sprint(2*i) || s.Kind(40+i) != sysfstest.KindManaged {
			t.Errorf("queue %d: mask %s, %s", i, aff, s.Kind(40+i))
		}
	}
	if len(queues[0].Device) != 0 {
		t.Error("BindDevice changed the caller's IRQs")
	}
}

// TestBindDeviceRefused: a bind that cannot be done changes nothing.
func TestBindDeviceRefused(t *testing.T) {
	s := sysfstest.New(t, deviceMachine())
	if err := s.UnbindDevice(mlxBDF); err != nil {
		t.Fatal(err)
	}
	before := s.IRQs()
	for name, bind := range map[string]func() error{
		"a number in use":      func() error { return s.BindDevice(mlxBDF, "mlx5_core", mlxVectors(50, 13)...) },
		"a number twice":       func() error { return s.BindDevice(mlxBDF, "mlx5_core", mlxVectors(50, 50)...) },
		"another device's IRQ": func() error { return s.BindDevice(mlxBDF, "mlx5_core", mlxVectors(50)[0].WithDevice(nvmeBDF, "")) },
		"a bad IRQ":            func() error { return s.BindDevice(mlxBDF, "mlx5_core", sysfstest.MSI(0, mlxChip, 0, "x")) },
		"a bad driver name":    func() error { return s.BindDevice(mlxBDF, "../nvme", mlxVectors(50)...) },
		"a bad device name":    func() error { return s.BindDevice("a/b", "mlx5_core") },
		"a bound device":       func() error { return s.BindDevice(nvmeBDF, "nvme") },
	} {
		if err := bind(); err == nil {
			t.Errorf("bind with %s: no error", name)
		}
		if got := s.IRQs(); !slices.Equal(got, before) {
			t.Fatalf("bind with %s: IRQs %v, want %v", name, got, before)
		}
		if link(t, s, "sys/devices/pci0000:00/"+mlxBDF+"/driver") != "" {
			t.Fatalf("bind with %s bound the device", name)
		}
	}
	for name, dev := range map[string]string{"an unknown device": "0000:09:00.0", "a device without driver": mlxBDF} {
		if err := s.UnbindDevice(dev); err == nil {
			t.Errorf("unbind of %s: no error", name)
		}
	}
	// A device plugged in and bound: made on the spot.
	if err := s.BindDevice("0000:03:00.0", "virtio-pci", sysfstest.MSI(80, "ITS-PCI-MSIX-0000:03:00.0", 0, "virtio0-config")); err != nil {
		t.Fatal(err)
	}
	if got := devicesOf(t, s)[80]; got != (sysfs.Device{Name: "0000:03:00.0", Bus: "pci", Driver: "virtio-pci"}) {
		t.Errorf("hot-plugged device: %+v", got)
	}
}

// TestDeviceConfigErrors: IRQs that disagree on their device's driver, or
// name a driver without a device, or a device that is no file name.
func TestDeviceConfigErrors(t *testing.T) {
	for name, irqs := range map[string][]sysfstest.IRQ{
		"two drivers": {
			sysfstest.MSI(40, nvmeChip, 0, "a").WithDevice(nvmeBDF, "nvme"),
			sysfstest.MSI(41, nvmeChip, 1, "b").WithDevice(nvmeBDF, "vfio-pci"),
		},
		"driver without device": {func() sysfstest.IRQ { q := sysfstest.MSI(40, "ITS-MSI", 0, "a"); q.Driver = "nvme"; return q }()},
		"device ..":             {sysfstest.MSI(40, "ITS-MSI", 0, "a").WithDevice("..", "nvme")},
		"device a/b":            {sysfstest.MSI(40, "ITS-MSI", 0, "a").WithDevice("a/b", "nvme")},
		"driver a/b":            {sysfstest.MSI(40, "ITS-MSI", 0, "a").WithDevice(nvmeBDF, "a/b")},
	} {
		cfg := sysfstest.Config{Possible: 2, IRQs: irqs}
		if _, err := sysfstest.Build(sysfstest.TempDir(t), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s := sysfstest.New(t, deviceMachine())
	if err := s.AddIRQ(sysfstest.MSI(53, mlxChip, 3, "x").WithDevice(mlxBDF, "vfio-pci")); err == nil ||
		!strings.Contains(err.Error(), "mlx5_core") || s.Kind(53) != 0 {
		t.Errorf("AddIRQ of another driver: %v", err)
	}
}

// TestAddRemoveDeviceIRQ: a vector added or freed at run time comes and
// goes in its device's msi_irqs.
func TestAddRemoveDeviceIRQ(t *testing.T) {
	s := sysfstest.New(t, deviceMachine())
	mlxDir := "sys/devices/pci0000:00/" + mlxBDF
	if err := s.AddIRQ(mlxVectors(53)[0]); err != nil {
		t.Fatal(err)
	}
	if got := msiIRQs(t, s, mlxDir); !slices.Equal(got, []string{"50", "51", "52", "53"}) {
		t.Errorf("msi_irqs after AddIRQ: %v", got)
	}
	// The device of the chip, where the tree writes PCI devices.
	if err := s.AddIRQ(sysfstest.MSI(54, mlxChip, 4, "y")); err != nil {
		t.Fatal(err)
	}
	if got := devicesOf(t, s)[54]; got != (sysfs.Device{Name: mlxBDF, Bus: "pci", Driver: "mlx5_core"}) {
		t.Errorf("IRQ 54: %+v", got)
	}
	for _, irq := range []int{50, 53, 54} {
		if err := s.RemoveIRQ(irq); err != nil {
			t.Fatal(err)
		}
	}
	if got := msiIRQs(t, s, mlxDir); !slices.Equal(got, []string{"51", "52"}) {
		t.Errorf("msi_irqs after RemoveIRQ: %v", got)
	}
}

// TestVM4HasNoBus: the trees of VM4 and its variants stay as captured,
// without /sys/bus, and IRQDevices reads them as no device at all.
func TestVM4HasNoBus(t *testing.T) {
	cfgs := map[string]sysfstest.Config{"gicv5": sysfstest.GICv5VM4(), "numa8-6.1": sysfstest.NUMA8(sysfstest.Kernel61)}
	for _, v := range versions {
		cfgs["vm4-"+v.String()] = sysfstest.VM4(v)
		cfgs["vm4busy-"+v.String()] = sysfstest.VM4Busy(v)
	}
	for name, cfg := range cfgs {
		s := sysfstest.New(t, cfg)
		for _, dir := range []string{"sys/bus", "sys/devices/platform", "sys/devices/pci0000:00"} {
			if exists(s, dir) {
				t.Errorf("%s has %s", name, dir)
			}
		}
		if got := devicesOf(t, s); len(got) != 0 {
			t.Errorf("%s: devices %v", name, got)
		}
	}
	// A device set by a test is written, and only it.
	cfg := sysfstest.VM4(sysfstest.Kernel612)
	for i, q := range cfg.IRQs {
		if q.IRQ == 21 {
			cfg.IRQs[i] = q.WithDevice("0000:00:02.0", "virtio-pci")
		}
	}
	s := sysfstest.New(t, cfg)
	checkDevices(t, s, map[int]sysfs.Device{21: {Name: "0000:00:02.0", Bus: "pci", Driver: "virtio-pci"}})
	if exists(s, "sys/devices/pci0000:00/0000:00:02.0/numa_node") {
		t.Error("numa_node written where the tree writes none")
	}
}
