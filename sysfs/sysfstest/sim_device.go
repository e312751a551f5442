package sysfstest

// Devices: the PCI and platform devices that IRQs belong to, their files in /sys (msi_irqs, irq,
// the driver symlink, the bus's symlinks), and unbinding and binding their drivers at run time.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
)

// device is a device that IRQs belong to (IRQ.Device).
type device struct {
	name string
	pci  bool
	// driver is the bound driver's name, "" when none is bound.
	driver string
}

// bus is the name of the device's bus under /sys/bus.
func (d *device) bus() string {
	if d.pci {
		return "pci"
	}
	return "platform"
}

// dir is the device's directory, relative to Root: where the kernel puts a
// device on a root bus, <sys>/devices/pci<domain>:00/<BDF> (devices behind
// a bridge are deeper in the kernel's tree, which readers reach through
// the bus's symlink alone), or <sys>/devices/platform/<name>.
func (d *device) dir() string {
	if d.pci {
		domain, _, _ := strings.Cut(d.name, ":")
		return filepath.Join("sys", "devices", "pci"+domain+":00", d.name)
	}
	return filepath.Join("sys", "devices", "platform", d.name)
}

// busLink is the device's entry in its bus, <sys>/bus/<bus>/devices/<name>,
// relative to Root.
func (d *device) busLink() string {
	return filepath.Join("sys", "bus", d.bus(), "devices", d.name)
}

// driverDir is the directory of driver on the device's bus,
// <sys>/bus/<bus>/drivers/<driver>, relative to Root.
func (d *device) driverDir(driver string) string {
	return filepath.Join("sys", "bus", d.bus(), "drivers", driver)
}

// isPCIAddress reports whether name is a PCI address as pci_name prints it
// ("0000:01:00.0"): ChipPCIAddress checks that format at the end of the
// chip name of a per-device PCI MSI domain, which "PCI-MSI-<name>" is.
func isPCIAddress(name string) bool {
	bdf, ok := sysfs.ChipPCIAddress("PCI-MSI-" + name)
	return ok && bdf == name
}

// checkName checks that name (a device's or a driver's) is one file name.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%s name %q is not a file name", what, name)
	}
	return nil
}

// defaultDevice gives st the PCI device its chip names (a per-device PCI
// MSI domain of 6.12: "ITS-PCI-MSIX-0000:00:02.0") as its Device, where
// it has none and the tree writes PCI device files (s.pciNode, see
// Build): the trees of VM4 keep no /sys/bus, as captured.
func (s *Sim) defaultDevice(st *irqState) {
	if st.Device != "" || s.pciNode == nil {
		return
	}
	if bdf, ok := sysfs.ChipPCIAddress(st.Chip); ok {
		st.Device = bdf
	}
}

// attach makes st's device known, created on first use, and binds the
// driver st names to it where it has none. A different driver than the
// one bound is an error: one device has one driver.
func (s *Sim) attach(st *irqState) error {
	if st.Device == "" {
		if st.Driver != "" {
			return fmt.Errorf("IRQ %d: driver %q without a device", st.IRQ.IRQ, st.Driver)
		}
		return nil
	}
	d, err := s.device(st.Device)
	if err != nil {
		return fmt.Errorf("IRQ %d: %w", st.IRQ.IRQ, err)
	}
	switch {
	case st.Driver == "" || st.Driver == d.driver:
	case d.driver == "":
		if err := checkName("driver", st.Driver); err != nil {
			return fmt.Errorf("IRQ %d: %w", st.IRQ.IRQ, err)
		}
		d.driver = st.Driver
	default:
		return fmt.Errorf("IRQ %d: device %s is bound to %s, not %s", st.IRQ.IRQ, d.name, d.driver, st.Driver)
	}
	return nil
}

// device returns the device name, made (unbound) if it is new.
func (s *Sim) device(name string) (*device, error) {
	if d := s.devices[name]; d != nil {
		return d, nil
	}
	if err := checkName("device", name); err != nil {
		return nil, err
	}
	if s.devices == nil {
		s.devices = map[string]*device{}
	}
	d := &device{name: name, pci: isPCIAddress(name)}
	s.devices[name] = d
	return d, nil
}

// attachDevices sets up the devices of the IRQs of Build, in IRQ order, and
// the PCI devices whose numa_node the tree writes.
func (s *Sim) attachDevices() error {
	for _, n := range s.order {
		st := s.irqs[n]
		s.defaultDevice(st)
		if err := s.attach(st); err != nil {
			return err
		}
	}
	for bdf := range s.pciNode {
		if _, err := s.device(bdf); err != nil {
			return err
		}
	}
	return nil
}

// msiVector reports whether st is one of its device's MSI or MSI-X
// vectors, listed in msi_irqs, rather than a wired line (INTx): an ITS
// MSI, managed or not, or an IRQ of an MSI domain's chip (the GICv5
// interrupts built as KindSPI with chips "ITS-v5-PCI-MSIX-<BDF>").
func msiVector(st *irqState) bool {
	return st.Kind == KindMSI || st.Kind == KindManaged || strings.Contains(st.Chip, "MSI")
}

// syncDevices writes the files of every device (Build), before syncPCI
// writes numa_node through the bus's symlinks.
func (s *Sim) syncDevices() error {
	if len(s.devices) == 0 {
		return nil
	}
	byDevice := map[string][]*irqState{}
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.Device != "" {
			byDevice[st.Device] = append(byDevice[st.Device], st)
		}
	}
	names := make([]string, 0, len(s.devices))
	for name := range s.devices {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := s.syncDevice(s.devices[name], byDevice[name]); err != nil {
			return err
		}
	}
	return nil
}

// syncDeviceOf rewrites the files of st's device, if it has one, after an
// IRQ of it was added or freed.
func (s *Sim) syncDeviceOf(st *irqState) error {
	d := s.devices[st.Device]
	if st.Device == "" || d == nil {
		return nil
	}
	return s.syncDevice(d, s.deviceIRQs(d.name))
}

// deviceIRQs returns the IRQs of the device name that exist, in order.
func (s *Sim) deviceIRQs(name string) []*irqState {
	var out []*irqState
	for _, n := range s.order {
		if st := s.irqs[n]; !st.removed && st.Device == name {
			out = append(out, st)
		}
	}
	return out
}

// syncDevice writes the files of d, whose IRQs are irqs (ascending), as
// the kernel shows them:
//
//   - the device's directory (device.dir) and its bus's symlink to it,
//     <sys>/bus/<bus>/devices/<name> → ../../../devices/…/<name>;
//   - msi_irqs/<N> for each MSI vector, a file saying "msix" or "msi"
//     (kernel/irq/msi.c, msi_mode_show: "msix" for a PCI device with
//     MSI-X enabled, else "msi"; a chip "…-PCI-MSI-<BDF>" means MSI). The
//     kernel adds the group with the first vector and removes it with
//     the driver (devm), so the directory exists only while there are
//     vectors;
//   - for a PCI device, irq: its wired INTx IRQ, the lowest wired IRQ of
//     irqs, else 0 (an MSI device: the kernel's file shows the INTx line
//     there too, or the first MSI vector, which readers do not trust);
//   - driver → ../../../bus/<bus>/drivers/<driver> where a driver is bound,
//     that driver's directory, and its symlink back to the device
//     (<sys>/bus/<bus>/drivers/<driver>/<name>), as driver_sysfs_add makes.
//
// numa_node is syncPCI's (through the bus's symlink).
func (s *Sim) syncDevice(d *device, irqs []*irqState) error {
	dir := d.dir()
	if err := os.MkdirAll(filepath.Join(s.root, dir), 0o755); err != nil {
		return err
	}
	if err := s.symlink(d.busLink(), dir); err != nil {
		return err
	}
	// msi_irqs is written anew: gone are the vectors freed. forget walks
	// every file the simulator knows, so only where it made the directory.
	msi := filepath.Join(dir, "msi_irqs")
	if err := os.RemoveAll(filepath.Join(s.root, msi)); err != nil {
		return err
	}
	s.fmu.Lock()
	made := s.dirs[msi]
	s.fmu.Unlock()
	if made {
		s.forget(msi)
	}
	intx := 0
	for _, st := range irqs {
		if !msiVector(st) {
			if intx == 0 {
				intx = st.IRQ.IRQ
			}
			continue
		}
		mode := "msi\n"
		if d.pci && !strings.Contains(st.Chip, "PCI-MSI-") {
			mode = "msix\n"
		}
		if err := s.writeFile(filepath.Join(msi, strconv.Itoa(st.IRQ.IRQ)), mode, 0o444); err != nil {
			return err
		}
	}
	if d.pci {
		if err := s.writeFile(filepath.Join(dir, "irq"), strconv.Itoa(intx)+"\n", 0o444); err != nil {
			return err
		}
	}
	// Unlink the old driver's back link, whichever driver that was.
	link := filepath.Join(dir, "driver")
	if old, err := os.Readlink(filepath.Join(s.root, link)); err == nil {
		if err := removeIfExists(filepath.Join(s.root, d.driverDir(filepath.Base(old)), d.name)); err != nil {
			return err
		}
	}
	if d.driver == "" {
		return removeIfExists(filepath.Join(s.root, link))
	}
	drv := d.driverDir(d.driver)
	if err := os.MkdirAll(filepath.Join(s.root, drv), 0o755); err != nil {
		return err
	}
	if err := s.symlink(link, drv); err != nil {
		return err
	}
	return s.symlink(filepath.Join(drv, d.name), dir)
}

// symlink makes rel (relative to Root) a symlink to target (relative to
// Root), relative as the kernel's are, so that a copied tree still reads.
func (s *Sim) symlink(rel, target string) error {
	to, err := filepath.Rel(filepath.Dir(rel), target)
	if err != nil {
		return err
	}
	path := filepath.Join(s.root, rel)
	if old, err := os.Readlink(path); err == nil && old == to {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := removeIfExists(path); err != nil {
		return err
	}
	return os.Symlink(to, path)
}

// removeIfExists removes the file or symlink at path, if there is one.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// UnbindDevice unbinds the driver of the device name, as
// "echo <name> > /sys/bus/<bus>/drivers/<driver>/unbind" does: the driver
// frees its IRQs (as RemoveIRQ does: /proc/irq/N, /sys/kernel/irq/N and
// the /proc/interrupts rows go; a wired line's descriptor, which the
// kernel keeps without an action, goes too), its MSI vectors with them
// (msi_irqs goes), and the device's driver symlink goes. The device
// stays, with its numa_node. Unbinding a device without a driver is an
// error, as the kernel's unbind file gives ENODEV.
func (s *Sim) UnbindDevice(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[name]
	if d == nil {
		return fmt.Errorf("no device %s", name)
	}
	if d.driver == "" {
		return fmt.Errorf("device %s has no driver bound", name)
	}
	for _, st := range s.deviceIRQs(name) {
		if err := s.freeIRQ(st); err != nil {
			return err
		}
	}
	d.driver = ""
	if err := s.syncDevice(d, nil); err != nil {
		return err
	}
	return s.syncInterrupts()
}

// BindDevice binds driver to the device name, as its probe does after
// "echo <name> > /sys/bus/<bus>/drivers/<driver>/bind": the driver
// allocates irqs (as AddIRQ does, each placed with the kernel's default
// mask), msi_irqs lists its MSI vectors again and the driver symlink is
// back. The numbers are the caller's choice: the same as before the
// unbind or new ones, but free. Device and Driver of irqs are set to name
// and driver (one naming another device is an error). A device not seen
// before is made, as a device plugged in. Nothing changes when any of
// irqs is refused.
func (s *Sim) BindDevice(name, driver string, irqs ...IRQ) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkName("driver", driver); err != nil {
		return err
	}
	if err := checkName("device", name); err != nil {
		return err
	}
	if d := s.devices[name]; d != nil && d.driver != "" {
		return fmt.Errorf("device %s is bound to %s", name, d.driver)
	}
	irqs = slices.Clone(irqs) // the caller's slice stays as it was
	seen := map[int]bool{}
	for i, spec := range irqs {
		if spec.Device != "" && spec.Device != name {
			return fmt.Errorf("IRQ %d: device %s, not %s", spec.IRQ, spec.Device, name)
		}
		irqs[i].Device, irqs[i].Driver = name, driver
		if old, ok := s.irqs[spec.IRQ]; ok && !old.removed || seen[spec.IRQ] {
			return fmt.Errorf("IRQ %d exists", spec.IRQ)
		}
		seen[spec.IRQ] = true
		if _, err := s.newState(irqs[i]); err != nil {
			return err
		}
	}
	d, err := s.device(name)
	if err != nil {
		return err
	}
	d.driver = driver
	for _, spec := range irqs {
		if _, err := s.addIRQ(spec); err != nil {
			return err
		}
	}
	if err := s.syncDevice(d, s.deviceIRQs(name)); err != nil {
		return err
	}
	return s.syncInterrupts()
}
