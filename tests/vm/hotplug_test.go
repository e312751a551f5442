//go:build vm

package vmtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// irqState is one IRQ's place at one moment.
type irqState struct {
	Row       irqRow
	Affinity  string
	Effective string
}

func snapshot(t *testing.T) map[int]irqState {
	t.Helper()
	m := map[int]irqState{}
	for _, r := range readInterrupts(t) {
		m[r.IRQ] = irqState{Row: r, Affinity: affinity(t, r.IRQ), Effective: effective(t, r.IRQ)}
	}
	return m
}

// table renders a before/after table for the test log (and for `make demo` narration).
func table(title string, s map[int]irqState, mark map[int]string) string {
	var irqs []int
	for n := range s {
		irqs = append(irqs, n)
	}
	sort.Ints(irqs)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	fmt.Fprintf(&b, "  %4s  %-28s %6s  %-18s %-9s %-9s %s\n", "IRQ", "chip", "hwirq", "action", "affinity", "effective", "")
	for _, n := range irqs {
		st := s[n]
		hw := ""
		if st.Row.HWIRQ >= 0 {
			hw = strconv.FormatInt(st.Row.HWIRQ, 10)
		}
		fmt.Fprintf(&b, "  %4d  %-28s %6s  %-18s %-9s %-9s %s\n", n, st.Row.Chip, hw, st.Row.Actions,
			orDash(st.Affinity), orDash(st.Effective), mark[n])
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TestKernelHotplugBaseline records what the kernel alone does to pinned IRQs when a CPU goes
// offline and comes back: the behaviour irqshift exists to fix. Every movable IRQ is pinned to
// CPU2 (one GIC SPI to 2-3 instead), CPU2 is taken offline and brought back.
func TestKernelHotplugBaseline(t *testing.T) {
	mustRoot(t)
	const cpu = 2
	online := onlineCPUs(t)
	if len(online) < 4 || !cpuIsOnline(t, cpu) {
		t.Skipf("needs >= 4 online CPUs with cpu%d online, have %v", cpu, online)
	}
	netDev := map[string]bool{}

	orig := snapshot(t)
	gic := gicVersion(readInterrupts(t))
	ensureOnlineAtEnd(t, cpu)

	// Pin every movable IRQ (not per-CPU, writes accepted) to CPU2.
	pinned := map[int]string{} // IRQ -> the mask written
	mark := map[int]string{}
	var refusedIRQs []int
	var spi23 = -1
	for n, st := range orig {
		r := st.Row
		if drv, _ := virtioDriver(virtioDevOf(r.Actions)); drv == "virtio_net" {
			netDev[virtioDevOf(r.Actions)] = true
		}
		if isPerCPU(r) {
			mark[n] = "per-CPU"
			continue
		}
		mask := strconv.Itoa(cpu)
		if spi23 < 0 && isSPI(r) && r.Actions == "rtc-pl031" {
			spi23 = n
			mask = fmt.Sprintf("%d-%d", cpu, cpu+1)
		}
		if err := writeAffinity(n, mask); err != nil {
			if !refused(err) {
				t.Errorf("IRQ %d (%s): write %s: %v, want success, EIO or EPERM", n, r.Actions, mask, err)
			}
			refusedIRQs = append(refusedIRQs, n)
			mark[n] = "refused (" + err.Error() + ")"
			continue
		}
		pinned[n] = mask
		mark[n] = "pinned " + mask
	}
	t.Cleanup(func() {
		for n := range pinned {
			if err := writeAffinity(n, orig[n].Affinity); err != nil {
				t.Errorf("restore IRQ %d to %s: %v", n, orig[n].Affinity, err)
			}
		}
	})
	if len(pinned) < 3 {
		t.Fatalf("only %d movable IRQs accepted a pin to cpu%d", len(pinned), cpu)
	}
	sort.Ints(refusedIRQs)
	t.Logf("pinned %d IRQs to cpu%d; the kernel refused %v", len(pinned), cpu, refusedIRQs)
	before := snapshot(t)
	t.Log(table(fmt.Sprintf("before: every movable IRQ pinned to CPU%d (online %s)", cpu, formatCPUList(online)), before, mark))
	for n, mask := range pinned {
		if e := before[n].Effective; e != strconv.Itoa(cpu) {
			t.Errorf("IRQ %d (%s) pinned to %s: effective %q, want %d", n, before[n].Row.Actions, mask, e, cpu)
		}
	}

	// The managed virtio-blk queue of CPU2.
	managed := -1
	for _, r := range blkQueues(readInterrupts(t)) {
		if before[r.IRQ].Affinity == strconv.Itoa(cpu) {
			managed = r.IRQ
		}
	}
	if managed < 0 {
		t.Errorf("no managed virtio-blk queue with affinity %d", cpu)
	}

	// Offline CPU2: the kernel migrates everything inside the offline path.
	if err := setCPUOnline(cpu, false); err != nil {
		t.Fatalf("offline cpu%d: %v", cpu, err)
	}
	nowOnline := onlineCPUs(t)
	onlineMask := formatCPUList(nowOnline)
	after := snapshot(t)
	t.Log(table(fmt.Sprintf("after offlining CPU%d (online %s): kernel moved them, pins lost", cpu, onlineMask), after, mark))

	var wantOnline []int
	for _, c := range online {
		if c != cpu {
			wantOnline = append(wantOnline, c)
		}
	}
	if want := formatCPUList(wantOnline); onlineMask != want { // 0-1,3 at -smp 4
		t.Fatalf("online after offlining cpu%d = %q, want %s", cpu, onlineMask, want)
	}
	for n, mask := range pinned {
		a := after[n]
		if a.Effective == strconv.Itoa(cpu) || a.Effective == "" {
			t.Errorf("IRQ %d (%s): effective %q after cpu%d went offline", n, a.Row.Actions, a.Effective, cpu)
		}
		if n == spi23 {
			// Mask 2-3 still has an online CPU: it silently moves to 3 and keeps 2-3.
			if a.Affinity != mask || a.Effective != strconv.Itoa(cpu+1) {
				t.Errorf("IRQ %d (%s) pinned %s: now affinity %q effective %q, want %s and %d",
					n, a.Row.Actions, mask, a.Affinity, a.Effective, mask, cpu+1)
			}
			continue
		}
		// The admin's pin is lost: the affinity became the online mask.
		if a.Affinity != onlineMask {
			t.Errorf("IRQ %d (%s) pinned %s: affinity %q after offline, want the online mask %s",
				n, a.Row.Actions, mask, a.Affinity, onlineMask)
		}
		// GIC SPIs all go to the lowest online CPU; on GICv2 so do the MSIs (GICv2m MSIs are
		// SPIs underneath). GICv3 ITS MSIs go to the least-loaded CPU instead.
		if (isSPI(a.Row) || gic == "2") && a.Effective != strconv.Itoa(nowOnline[0]) {
			t.Errorf("IRQ %d (%s, chip %s): effective %q, want CPU%d (lowest online)", n, a.Row.Actions, a.Row.Chip, a.Effective, nowOnline[0])
		}
	}
	if managed >= 0 {
		a := after[managed]
		t.Logf("managed IRQ %d (%s) of cpu%d: affinity %q effective %q", managed, a.Row.Actions, cpu, a.Affinity, a.Effective)
		if a.Affinity != strconv.Itoa(cpu) || a.Effective != strconv.Itoa(cpu) {
			t.Errorf("managed IRQ %d (%s): affinity %q effective %q after offline, want %d and %d (shut down, not moved)",
				managed, a.Row.Actions, a.Affinity, a.Effective, cpu, cpu)
		}
	}
	perCPU := map[string]int{}
	for n := range pinned {
		if n != spi23 {
			perCPU[after[n].Effective]++
		}
	}
	t.Logf("after offline, pinned IRQs per effective CPU: %v", perCPU)

	// Online CPU2 again: nothing moves back (virtio-net's own hotplug callback rewrites its
	// queues to all CPUs, so those are only logged).
	if err := setCPUOnline(cpu, true); err != nil {
		t.Fatalf("online cpu%d: %v", cpu, err)
	}
	back := snapshot(t)
	t.Log(table(fmt.Sprintf("after onlining CPU%d again (online %s): nothing came back", cpu, formatCPUList(onlineCPUs(t))), back, mark))
	for n := range pinned {
		a, b := after[n], back[n]
		if netDev[virtioDevOf(b.Row.Actions)] && strings.Contains(b.Row.Actions, "put.") {
			t.Logf("virtio-net queue IRQ %d (%s): affinity %q -> %q, effective %q -> %q (driver callback)",
				n, b.Row.Actions, a.Affinity, b.Affinity, a.Effective, b.Effective)
			continue
		}
		if b.Effective == strconv.Itoa(cpu) {
			t.Errorf("IRQ %d (%s) moved back to cpu%d on online", n, b.Row.Actions, cpu)
		}
		if b.Affinity != a.Affinity || b.Effective != a.Effective {
			t.Errorf("IRQ %d (%s) changed on online: affinity %q -> %q, effective %q -> %q",
				n, b.Row.Actions, a.Affinity, b.Affinity, a.Effective, b.Effective)
		}
	}
	if managed >= 0 {
		b := back[managed]
		if b.Affinity != strconv.Itoa(cpu) || b.Effective != strconv.Itoa(cpu) {
			t.Errorf("managed IRQ %d (%s) after online: affinity %q effective %q, want %d", managed, b.Row.Actions, b.Affinity, b.Effective, cpu)
		}
	}
}
