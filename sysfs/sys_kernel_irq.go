package sysfs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/internal/quote"
)

// KernelIRQ is /sys/kernel/irq/N, present on CONFIG_SPARSE_IRQ kernels
// (arm64 always). It names the chip and hwirq even for descriptors that
// /proc/interrupts leaves out.
type KernelIRQ struct {
	IRQ      int
	Actions  []string // /sys/kernel/irq/N/actions, split on ","
	ChipName string
	HWIRQ    uint64
	HasHWIRQ bool
	Name     string // flow handler name ("edge", "fasteoi"), may be empty
	Type     string // "level" or "edge"
	Wakeup   string // "enabled" or "disabled"
}

// KernelIRQ reads /sys/kernel/irq/N.
func (fs FS) KernelIRQ(irq int) (KernelIRQ, error) {
	dir := fs.SysPath("kernel", "irq", strconv.Itoa(irq))
	k := KernelIRQ{IRQ: irq}
	read := func(name string) (string, error) {
		data, err := readFile(dir + "/" + name)
		return strings.TrimSpace(string(data)), err
	}
	actions, err := read("actions")
	if err != nil {
		return k, err
	}
	if actions != "" {
		k.Actions = strings.Split(actions, ",")
	}
	if k.ChipName, err = read("chip_name"); err != nil {
		return k, err
	}
	hwirq, err := read("hwirq")
	if err != nil {
		return k, err
	}
	if hwirq != "" {
		if k.HWIRQ, err = strconv.ParseUint(hwirq, 10, 64); err != nil {
			return k, fmt.Errorf("%w: %s/hwirq %s", ErrFileParse, dir, quote.Quote(hwirq))
		}
		k.HasHWIRQ = true
	}
	// name, type and wakeup are informative; older kernels lack some.
	k.Name, _ = read("name")
	k.Type, _ = read("type")
	k.Wakeup, _ = read("wakeup")
	return k, nil
}
