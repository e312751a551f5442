package sysfs

// The device of each IRQ: which PCI or platform device an IRQ number belongs to, and that
// device's driver, from the buses' directories in /sys. IRQ numbers change across boots and
// when a driver is unbound and bound again, so rules about devices are matched through this
// map, read afresh at every full settle.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is the device an IRQ belongs to, as /sys shows it.
type Device struct {
	// Name is the device's name on its bus: a PCI address
	// ("0000:01:00.0") or a platform device's name ("9000000.pl011").
	Name string
	// Bus is "pci" or "platform".
	Bus string
	// Driver is the basename of the device's driver symlink; "" when no
	// driver is bound, or not known (DeviceFromChip).
	Driver string
}

// The buses IRQDevices reads, as named under /sys/bus.
const (
	busPCI      = "pci"
	busPlatform = "platform"
)

// IRQDevices maps IRQ numbers to their devices, from:
//
//   - /sys/bus/pci/devices/<BDF>/msi_irqs/<N>: one entry per MSI or MSI-X
//     vector the device has allocated, named by its IRQ number. Since
//     Linux 3.14 each is a file saying "msi" or "msix" (kernel/irq/msi.c);
//     before, a directory. Only the names are read, so both do; names
//     that are not IRQ numbers are ignored. The directory exists only
//     while the driver holds vectors: it goes when the driver is unbound.
//   - /sys/bus/platform/devices/<name>/msi_irqs/<N>: platform MSI, alike.
//   - /sys/bus/pci/devices/<BDF>/irq ("%u\n", 0 for none): the legacy
//     INTx IRQ, for IRQs that no msi_irqs names. It is read only for a
//     device with a driver and no MSI vector: with MSI-X enabled the file
//     still shows the INTx line the firmware routed (which another
//     device's INTx may use), with MSI the first vector (in msi_irqs
//     already), and a device without a driver has requested no IRQ.
//     Devices sharing an INTx line all claim it; the lowest address wins.
//   - <device>/driver: the symlink to the bound driver, whose basename is
//     Device.Driver.
//
// The entries of /sys/bus/*/devices are symlinks to the device
// directories under /sys/devices; they are followed. Where two devices
// name the same IRQ in msi_irqs (a rebind caught halfway), the first by
// bus (pci, then platform) and name wins.
//
// A missing /sys/bus/pci or /sys/bus/platform is no error: that bus has
// no device. A device gone by the time it is read (unplugged: a dangling
// bus symlink; or its driver unbound: vectors freed, msi_irqs gone) is
// skipped; one that goes while it is read may be listed with the IRQs it
// is freeing, which then match nothing. A device whose files make no
// sense (an msi_irqs that is no directory, an irq file that cannot be
// read or parsed) is skipped too: its IRQs are left out, not the whole
// map. The only error is a failure to list a bus's devices directory
// that exists; it wraps ErrFileRead.
//
// Cost: per PCI device, one directory listing (msi_irqs) and one readlink
// (driver), plus the irq file of a device with a driver and no MSI
// vector; per platform device without MSI, one failed open.
func (fs FS) IRQDevices() (map[int]Device, error) {
	r := devReader{dirents: make([]byte, 8<<10), file: make([]byte, 0, 32), drivers: map[string]string{}}
	// Collected first and put in a map of the right size after: growing
	// the map was a quarter of the time.
	var (
		msi  []int     // the MSI vectors of every device, device after device
		devs []devSpan // the devices with vectors, each with its span of msi
		intx []intxClaim
	)
	for _, bus := range []string{busPCI, busPlatform} {
		dir := fs.SysPath("bus", bus, "devices")
		names, err := listNames(dir)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFileRead, err)
		}
		// Sorted, so that the first claim of an IRQ is the same at every
		// read, whatever order the directory lists.
		slices.Sort(names)
		for _, name := range names {
			r.setDevice(dir, name)
			start := len(msi)
			var ok bool
			if msi, ok = r.appendMSI(msi); !ok || len(msi) == start && bus != busPCI {
				msi = msi[:start]
				continue // unreadable, or a platform device without MSI: nothing of it is read
			}
			driver, bound := r.driver()
			if driver == virtioPCIDriver {
				if child := r.virtioDriver(); child != "" {
					driver = child
				}
			}
			dev := Device{Name: name, Bus: bus, Driver: driver}
			switch {
			case len(msi) > start:
				if !bound && !r.exists() {
					msi = msi[:start]
					continue // gone between the listing and the readlink
				}
				devs = append(devs, devSpan{dev: dev, start: start, end: len(msi)})
			case bound:
				if irq, ok := r.intx(); ok {
					intx = append(intx, intxClaim{irq: irq, dev: dev})
				}
			}
		}
	}
	out := make(map[int]Device, len(msi)+len(intx))
	for _, d := range devs {
		for _, irq := range msi[d.start:d.end] {
			if _, taken := out[irq]; !taken {
				out[irq] = d.dev
			}
		}
	}
	for _, c := range intx {
		if _, taken := out[c.irq]; !taken {
			out[c.irq] = c.dev
		}
	}
	return out, nil
}

// devSpan is a device with MSI vectors, msi[start:end] in IRQDevices.
type devSpan struct {
	dev        Device
	start, end int
}

// intxClaim is a PCI device's legacy INTx IRQ, from its irq file.
type intxClaim struct {
	irq int
	dev Device
}

// DeviceFromChip returns the PCI device that an IRQ's chip name names, as
// kernel 6.12 and later name per-device PCI MSI domains
// ("ITS-PCI-MSIX-0000:00:02.0": see ChipPCIAddress), for IRQs that no
// /sys entry names. The driver is not known from the chip: Driver is ""
// (PCIDriver reads it). ok is false for any other chip name.
func DeviceFromChip(chip string) (Device, bool) {
	bdf, ok := ChipPCIAddress(chip)
	if !ok {
		return Device{}, false
	}
	return Device{Name: bdf, Bus: busPCI}, true
}

// PCIDriver returns the driver bound to the PCI device bdf: the basename
// of /sys/bus/pci/devices/<bdf>/driver, or "" when no driver is bound,
// the device does not exist, or bdf is not a PCI address as pci_name
// prints it ("0000:00:02.0"; checked, so that it is safe in a path).
func (fs FS) PCIDriver(bdf string) string {
	if !validPCIAddress(bdf) {
		return ""
	}
	target, err := os.Readlink(fs.SysPath("bus", busPCI, "devices", bdf, "driver"))
	if err != nil {
		return ""
	}
	return driverName(target)
}

// driverName is the driver's name in the target of a driver symlink
// ("../../../bus/pci/drivers/nvme"), or "" when it has none.
func driverName(target string) string {
	name := filepath.Base(target)
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	return name
}

// listNames lists the names in dir, unsorted.
func listNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// devReader reads the files of one device after another, reusing its
// buffers: the NUL-terminated path, the getdents buffer, the irq file's
// content and the drivers' names seen (so that a thousand devices of five
// drivers make five strings).
type devReader struct {
	path    []byte
	dir     int // len(path) of "<bus>/devices/<name>/"
	dirents []byte
	file    []byte
	link    [256]byte
	drivers map[string]string
}

// setDevice points r at the device name in the bus's devices directory.
func (r *devReader) setDevice(devices, name string) {
	r.path = append(append(append(r.path[:0], devices...), '/'), name...)
	r.path = append(r.path, '/')
	r.dir = len(r.path)
}

// filePath returns the NUL-terminated path of name in the device's directory
// (the device's directory itself for ""), valid until the next call.
func (r *devReader) filePath(name string) []byte {
	if name == "" {
		r.path = append(r.path[:r.dir-1], 0)
		return r.path
	}
	r.path = append(append(r.path[:r.dir], name...), 0)
	return r.path
}

// appendMSI appends to irqs the IRQ numbers in the device's msi_irqs
// directory: none where it does not exist (no vector allocated, or no
// device any more: what is read next of the device tells). ok is false
// when it cannot be listed (not a directory, no permission, gone while
// listed): the device is skipped.
func (r *devReader) appendMSI(irqs []int) (_ []int, ok bool) {
	// O_DIRECTORY makes anything else fail (ENOTDIR) rather than be
	// opened: a FIFO in a fixture tree would block.
	fd, err := openZ(r.filePath("msi_irqs"), unix.O_DIRECTORY)
	if err == unix.ENOENT {
		return irqs, true
	}
	if err != nil {
		return irqs, false
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, r.dirents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return irqs, false
		}
		if n <= 0 {
			return irqs, true
		}
		irqs = appendDirentNumbers(irqs, r.dirents[:n])
	}
}

// exists reports whether the device's directory still exists (through
// its bus symlink).
func (r *devReader) exists() bool {
	var st unix.Stat_t
	err := unix.Stat(zString(r.filePath("")), &st)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// driver reads the device's driver symlink: its basename and true, or ""
// and false when there is none (no driver bound, or no device).
func (r *devReader) driver() (string, bool) {
	n, err := readlinkZ(r.filePath("driver"), r.link[:])
	if err != nil || n <= 0 || n >= len(r.link) {
		return "", false // a target longer than the buffer is no kernel's
	}
	target := r.link[:n]
	if i := bytes.LastIndexByte(target, '/'); i >= 0 {
		target = target[i+1:]
	}
	if name, seen := r.drivers[string(target)]; seen {
		return name, name != ""
	}
	name := driverName(string(target))
	r.drivers[string(target)] = name
	return name, name != ""
}

// virtioPCIDriver is the driver of every virtio device on PCI: the
// transport. The IRQs are the virtio driver's, bound to the virtio device
// under it (virtio_rng, virtio_net), which requests them in its probe.
const virtioPCIDriver = "virtio-pci"

// virtioDriver returns the driver of the virtio device under the PCI
// device (its "virtioN" child), "" when there is none or it has no driver:
// for a virtio device, that is the name an operator knows (virtio_rng).
func (r *devReader) virtioDriver() string {
	names, err := listNames(string(r.path[:r.dir-1]))
	if err != nil {
		return ""
	}
	slices.Sort(names)
	for _, name := range names {
		if !strings.HasPrefix(name, "virtio") {
			continue
		}
		n, err := readlinkZ(r.filePath(name+"/driver"), r.link[:])
		if err != nil || n <= 0 || n >= len(r.link) {
			continue
		}
		return driverName(string(r.link[:n]))
	}
	return ""
}

// intx reads the device's irq file: its IRQ and true where it names one
// (not 0), false where it names none or cannot be read or parsed.
func (r *devReader) intx() (int, bool) {
	data, _, err := readSmallZ(r.filePath("irq"), r.file, false)
	if err != nil {
		return 0, false
	}
	r.file = data[:0]
	irq, ok := parseIRQFile(data)
	return irq, ok && irq > 0
}

// parseIRQFile parses a PCI device's irq file as the kernel prints it
// ("%u\n"): the number and true, or false for anything else (empty, a
// sign, leading zeros, spaces, a number past maxIRQ, a second line).
func parseIRQFile(data []byte) (int, bool) {
	text := data
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	if len(text) > 1 && text[0] == '0' {
		return 0, false
	}
	return parseDecimalInt(text, maxIRQ)
}

// readlinkZ reads the symlink at the NUL-terminated pathz into buf, without
// copying the path, and returns the target's length.
func readlinkZ(pathz []byte, buf []byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, atFDCWD, uintptr(unsafe.Pointer(&pathz[0])),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
