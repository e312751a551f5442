package affinity

import (
	"fmt"
	"maps"
	"slices"

	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Pin is a mask the admin set on an IRQ (state.Pin): intent that
// irqshift keeps.
type Pin = state.Pin

// Pins are keyed by Key(irq).
type Pins map[string]Pin

// Written holds, by Key(irq), the last mask that is known not to be the
// admin's: one irqshift wrote, or one covering every online CPU when it was
// seen (the kernel's default, or the online mask the kernel writes when it
// breaks a pin). After CPU2 returns, the kernel's "0-1,3" no longer covers
// the online CPUs, and this record is what tells it from a pin.
type Written map[string]sysfs.CPUSet

// LearnPins records as pins the masks of movable IRQs that look set by
// hand: not covering every online CPU (the kernel's default, and what it
// writes when it breaks a pin), not covering more than half of the possible
// CPUs (what the kernel's overwrite still looks like once the CPU is back,
// when irqshift was not running to see it happen: "0-1,3" with 0-3
// online), and not the mask irqshift last wrote. A broad pin can still be
// recorded with `irqshift pin`. It returns the pins that are new or
// changed. A recorded pin is never dropped because the mask now looks
// default: that is exactly what the kernel leaves after an offline.
// `irqshift unpin` drops one.
func (p Pins) LearnPins(irqs []IRQ, online, possible sysfs.CPUSet, written Written) []Pin {
	var learned []Pin
	for _, irq := range irqs {
		if !irq.Movable() {
			continue
		}
		key := Key(irq)
		mask := irq.Affinity
		if mask.IsEmpty() {
			continue
		}
		if online.IsSubsetOf(mask) || 2*mask.Len() > possible.Len() {
			if written != nil {
				written[key] = mask
			}
			continue
		}
		if w, ok := written[key]; ok && w.Equal(mask) {
			continue
		}
		if old, ok := p[key]; ok && !old.CPUs.IsSubsetOf(online) {
			// The pin is displaced: a CPU of it is offline, so the IRQ was
			// moved off by the kernel or by irqshift (whose write may not
			// have reached the state file if it was killed). The mask is
			// theirs; the pin waits for its CPUs.
			if written != nil {
				written[key] = mask
			}
			continue
		}
		if old, ok := p[key]; ok && old.CPUs.Equal(mask) {
			continue
		}
		pin := Pin{IRQ: irq.IRQ, CPUs: mask}
		p[key] = pin
		learned = append(learned, pin)
	}
	return learned
}

// Forget drops the pins of IRQ number irq and returns whether there was one.
func (p Pins) Forget(irq int) bool {
	found := false
	for _, key := range slices.Collect(maps.Keys(p)) {
		if p[key].IRQ == irq {
			delete(p, key)
			found = true
		}
	}
	return found
}

// pinTarget returns the part of irq's pin that is allowed now; ok is false
// when the IRQ has no pin.
func (p Pins) pinTarget(irq IRQ, allowed sysfs.CPUSet) (target sysfs.CPUSet, pin Pin, ok bool) {
	if len(p) == 0 {
		return sysfs.CPUSet{}, pin, false
	}
	pin, ok = p[Key(irq)]
	if !ok {
		return sysfs.CPUSet{}, pin, false
	}
	return pin.CPUs.Intersect(allowed), pin, true
}

func pinnedReason(pin Pin) string {
	return fmt.Sprintf("pinned by the admin to %s (--include-pinned moves it)", pin.CPUs)
}

// SetForeignWriters says whether another balancer is writing IRQ masks
// now (irqbalance --oneshot, run by CRI-O at a pod's start and stop): its
// masks are not the operator's intent. While it is, and in the first Load
// after it ended, no mask is learned as a pin: each is recorded as not
// the admin's, so that irqshift puts its own placement back. A mask the
// operator sets by hand while a balancer runs is not told apart; `irqshift
// pin` records one for certain.
func (e *Engine) SetForeignWriters(active bool) {
	e.foreignActive = active
	e.foreign = e.foreign || active
}

// disownMasks records every movable IRQ's mask as not the admin's.
func (e *Engine) disownMasks(st *State) {
	for _, irq := range st.IRQs {
		if irq.Movable() && !irq.Affinity.IsEmpty() {
			e.written[Key(irq)] = irq.Affinity
		}
	}
}

// driversOwn takes back the learned pins whose mask is the IRQ's
// affinity_hint: a driver that spreads its own queues (NIC drivers at
// probe, on a channel count change, on CPU hotplug) writes the mask with
// the hint, and that is not the operator's intent. It returns the pins
// that stay learned.
func (e *Engine) driversOwn(learned []Pin, st *State) []Pin {
	kept := learned[:0]
	for _, pin := range learned {
		hint, err := e.fs.ReadHint(pin.IRQ)
		if err != nil || hint.IsEmpty() || !hint.Equal(pin.CPUs) {
			kept = append(kept, pin)
			continue
		}
		i := slices.IndexFunc(st.IRQs, func(irq IRQ) bool { return irq.IRQ == pin.IRQ })
		if i < 0 {
			kept = append(kept, pin)
			continue
		}
		key := Key(st.IRQs[i])
		delete(e.planner.Pins, key)
		e.written[key] = pin.CPUs
		if e.logger != nil {
			e.logger.Debug("mask is the driver's affinity hint, not a pin", "irq", pin.IRQ, "mask", pin.CPUs.String())
		}
	}
	return kept
}
