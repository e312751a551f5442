//go:build vm

package vmtest

// Tests that run the real /bin/irqshift (bin/irqshift-linux-arm64) on the live arm64 kernel and
// check what it did against the kernel's own files (/proc/interrupts, /proc/irq/N/*,
// /sys/devices/system/cpu/*), not only against irqshift's output. Each test puts every CPU back
// online and every mask back as it was.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func irqNumbers(rows []irqRow) []int {
	var n []int
	for _, r := range rows {
		n = append(n, r.IRQ)
	}
	sort.Ints(n)
	return n
}

// TestCLIListMatchesKernel: `irqshift list --json` describes the same IRQs as the kernel, with
// the documented classes, and the virtio-blk queues are managed (6.12: 0444 files) or become
// known as managed once the kernel refuses a write (6.1: EIO), which is not an error.
func TestCLIListMatchesKernel(t *testing.T) {
	needIrqshift(t, 2)
	state := restoreAtEnd(t)
	before := readInterrupts(t)
	r := irqshift(t, "list", "--json")
	mustExit(t, r, 0)
	var doc listDoc
	decodeJSON(t, r, &doc)
	after := readInterrupts(t)

	var got []int
	for _, q := range doc.IRQs {
		got = append(got, q.IRQ)
	}
	if g, b, a := fmt.Sprint(got), fmt.Sprint(irqNumbers(before)), fmt.Sprint(irqNumbers(after)); g != b && g != a {
		t.Errorf("irqshift lists IRQs %s; /proc/interrupts has %s (before) and %s (after)", g, b, a)
	}
	online := onlineCPUs(t)
	if !sameCPUs(doc.CPUs.Online, online) {
		t.Errorf("cpus.online %v, /sys/devices/system/cpu/online %v", doc.CPUs.Online, online)
	}
	if possible := cpuList(t, "/sys/devices/system/cpu/possible"); !sameCPUs(doc.CPUs.Possible, possible) {
		t.Errorf("cpus.possible %v, kernel %v", doc.CPUs.Possible, possible)
	}
	if !sameCPUs(doc.CPUs.Allowed, online) || len(doc.CPUs.Banned) != 0 || doc.CPUs.Banned == nil {
		t.Errorf("cpus.allowed %v banned %v, want the online CPUs and [] (nothing banned or isolated here)", doc.CPUs.Allowed, doc.CPUs.Banned)
	}

	rows := map[int]irqRow{}
	for _, row := range after {
		rows[row.IRQ] = row
	}
	header := interruptsHeaderCPUs(t)
	managed := kernelManaged(t)
	is612 := kernelAtLeast(t, 6, 12)
	seen := map[string]bool{}
	for _, q := range doc.IRQs {
		row, ok := rows[q.IRQ]
		if !ok {
			continue // gone meanwhile (never in this VM)
		}
		name := fmt.Sprintf("IRQ %d (%s)", q.IRQ, row.Actions)
		if q.Chip != row.Chip || q.Trigger != row.Trigger || strings.Join(q.Actions, ", ") != row.Actions {
			t.Errorf("%s: chip %q trigger %q actions %q, /proc/interrupts says %q %q %q", name, q.Chip, q.Trigger, q.Actions, row.Chip, row.Trigger, row.Actions)
		}
		if (q.HWIRQ == nil) != (row.HWIRQ < 0) || (q.HWIRQ != nil && int64(*q.HWIRQ) != row.HWIRQ) {
			t.Errorf("%s: hwirq %v, /proc/interrupts says %d", name, q.HWIRQ, row.HWIRQ)
		}
		var keys []int
		var sum uint64
		for k, v := range q.Counts {
			c, err := strconv.Atoi(k)
			if err != nil {
				t.Errorf("%s: counts key %q is not a CPU", name, k)
			}
			keys = append(keys, c)
			sum += v
		}
		if !sameCPUs(keys, header) || sum != q.Total {
			t.Errorf("%s: counts for CPUs %v summing to %d, total %d; header CPUs %v", name, keys, sum, q.Total, header)
		}
		// affinity and effective are the files, read back by the test.
		if a := affCPUs(t, q.IRQ); !sameCPUs(q.Affinity, a) {
			t.Errorf("%s: affinity %v, smp_affinity_list %v", name, q.Affinity, a)
		}
		if e := effCPUs(t, q.IRQ); !sameCPUs(q.Effective, e) || q.Effective == nil {
			t.Errorf("%s: effective %v, effective_affinity_list %v (want an array, [] when empty)", name, q.Effective, e)
		}
		if q.Movable != (q.Class == "movable") || q.Movable != (q.Reason == "") {
			t.Errorf("%s: class %q movable %v reason %q disagree", name, q.Class, q.Movable, q.Reason)
		}

		dev := virtioDevOf(row.Actions)
		switch {
		case row.Actions == "arch_timer" || row.Actions == "arm-pmu":
			seen[row.Actions] = true
			if q.Class != "per-cpu" || len(q.Effective) != 0 {
				t.Errorf("%s: class %q effective %v, want per-cpu with no effective CPU", name, q.Class, q.Effective)
			}
		case row.Actions == "uart-pl011" || row.Actions == "rtc-pl031":
			if q.Class != "movable" {
				t.Errorf("%s: class %q (%s), want movable (a GIC SPI)", name, q.Class, q.Reason)
			}
		case managed[q.IRQ]:
			seen["virtio-blk queue"] = true
			mode := fileMode(t, irqFile(q.IRQ, "smp_affinity_list"))
			t.Logf("%s: smp_affinity_list mode %04o, class %q (%s), pin %v", name, mode, q.Class, q.Reason, q.Pin)
			if q.Pin != nil {
				t.Errorf("%s: the kernel's managed mask %v is taken for an admin pin", name, q.Pin)
			}
			if is612 {
				if mode != 0o444 || q.Class != "managed" || !strings.Contains(q.Reason, "read-only") {
					t.Errorf("%s on %s: mode %04o class %q reason %q, want 0444 and managed (read-only) from the start",
						name, readTrim(t, "/proc/sys/kernel/osrelease"), mode, q.Class, q.Reason)
				}
			} else if mode != 0o644 || q.Class != "movable" {
				// 6.1 gives no sign of a managed IRQ until a write is refused.
				t.Errorf("%s on %s: mode %04o class %q, want 0644 and movable (until a write is refused)",
					name, readTrim(t, "/proc/sys/kernel/osrelease"), mode, q.Class)
			}
		case dev != "":
			seen["virtio"] = true
			if q.Class != "movable" {
				t.Errorf("%s: class %q (%s), want movable", name, q.Class, q.Reason)
			}
		}
	}
	for _, want := range []string{"arch_timer", "arm-pmu", "virtio", "virtio-blk queue"} {
		if !seen[want] {
			t.Errorf("no %s IRQ in irqshift's list", want)
		}
	}
	rng := rngMMIO(t, after)
	for _, q := range doc.IRQs {
		if q.IRQ == rng.IRQ && (q.Class != "movable" || !isSPI(rng)) {
			t.Errorf("virtio-mmio rng IRQ %d (%s, chip %s hwirq %d): class %q, want a movable SPI", q.IRQ, rng.Actions, rng.Chip, rng.HWIRQ, q.Class)
		}
	}

	// Make rebalance write the virtio-blk queues: with every other movable IRQ on CPU0 the
	// planner cannot leave queue 0 where it is (CPU0 is full), so it writes it. Masks set by
	// hand are admin pins to irqshift: --include-pinned lets rebalance move them anyway.
	var others []int
	for _, q := range doc.IRQs {
		if q.Movable && !managed[q.IRQ] {
			others = append(others, q.IRQ)
		}
	}
	pin(t, others, "0")
	rr := irqshift(t, "--include-pinned", "rebalance", "--json")
	mustExit(t, rr, 0) // a refused managed write is not a failure
	var d applyDoc
	decodeJSON(t, rr, &d)
	checkResults(t, d)
	refusedQueues := 0
	for irq := range managed {
		res, wrote := d.result(irq)
		skip, skipped := d.skipped(irq)
		switch {
		case is612 && (wrote || !skipped || skip.Class != "managed"):
			t.Errorf("6.12: virtio-blk queue IRQ %d: result %+v skipped %+v, want skipped as managed and never written", irq, res, skip)
		case wrote && res.Status != "unmovable":
			t.Errorf("virtio-blk queue IRQ %d: written with status %q, want unmovable (the kernel refuses)", irq, res.Status)
		case wrote:
			refusedQueues++
			t.Logf("virtio-blk queue IRQ %d: %s, error_class %s (%s)", irq, res.Status, res.ErrorClass, res.Reason)
		case !is612 && skipped && skip.Class == "managed" && strings.Contains(skip.Reason, "refused"):
			// irqshift probed the queue's mask, which looked like an admin pin,
			// before planning: the refusal told it the queue is managed.
			refusedQueues++
			t.Logf("virtio-blk queue IRQ %d: skipped: %s", irq, skip.Reason)
		}
		if a := affinity(t, irq); a != state.masks[irq] {
			t.Errorf("virtio-blk queue IRQ %d: affinity %q -> %q", irq, state.masks[irq], a)
		}
	}
	if !is612 && refusedQueues == 0 {
		t.Errorf("6.1: rebalance found no virtio-blk queue managed (by a refused write or probe)\n%s", rr.Stdout)
	}
	refusedNow := d.unmovable()
	for irq := range refusedNow {
		if !managed[irq] {
			t.Errorf("IRQ %d: unmovable, but it is not a virtio-blk queue", irq)
		}
	}
	// irqshift remembers (state file) what the kernel refused: the next list calls it managed.
	lr := irqshift(t, "list", "--json")
	mustExit(t, lr, 0)
	var doc2 listDoc
	decodeJSON(t, lr, &doc2)
	for _, q := range doc2.IRQs {
		if !managed[q.IRQ] {
			continue
		}
		t.Logf("list after the refusals: IRQ %d (%s): class %q (%s)", q.IRQ, strings.Join(q.Actions, ","), q.Class, q.Reason)
		if refusedNow[q.IRQ] && (q.Class != "managed" || !strings.Contains(q.Reason, "refused")) {
			t.Errorf("IRQ %d: the kernel refused a write, but the next list says class %q (%s), want managed (refused)", q.IRQ, q.Class, q.Reason)
		}
	}
}

// checkBalanced asserts that counts (movable IRQs per CPU) differ by at most one, as the README
// promises for rebalance, and reports the other problems found. On 6.1 the virtio-blk queues look
// movable until the kernel refuses a write; irqshift then re-plans, so refusals in the same run
// are no excuse (refusedInRun is logged only).
func checkBalanced(t *testing.T, what string, counts map[int]int, refusedInRun map[int]bool, problems ...string) {
	t.Helper()
	d, text := spread(counts)
	t.Logf("%s: %s (writes refused in the run: %d)", what, text, len(refusedInRun))
	if d > 1 {
		problems = append(problems, fmt.Sprintf("%s differ by %d (%s), want at most 1", what, d, text))
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestCLIRebalance: after `irqshift rebalance` the movable IRQs' effective CPUs (read from the
// kernel) differ in count by at most one across the online CPUs, each has a single-CPU mask, and
// a second rebalance plans nothing. Run from the boot masks and from everything on CPU0.
func TestCLIRebalance(t *testing.T) {
	needIrqshift(t, 2)
	for _, sc := range []struct {
		name string
		pin0 bool
	}{{"from the boot masks", false}, {"from every movable IRQ pinned to CPU0 (--include-pinned)", true}} {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			restoreAtEnd(t)
			doc, movable := listMovable(t)
			online := onlineCPUs(t)
			if sc.pin0 {
				pin(t, movable, "0")
			}
			t.Log(table("before irqshift rebalance ("+sc.name+")", snapshot(t), nil))
			var flags []string
			if sc.pin0 {
				// Masks set by hand are admin pins to irqshift; spread them anyway.
				flags = []string{"--include-pinned"}
			}
			r := irqshift(t, append(flags, "rebalance", "--json")...)
			mustExit(t, r, 0)
			var d applyDoc
			decodeJSON(t, r, &d)
			checkResults(t, d)
			refusedNow := d.unmovable()
			t.Log(table("after irqshift rebalance", snapshot(t), nil))
			for _, irq := range movable {
				a, e := affCPUs(t, irq), effCPUs(t, irq)
				if len(a) != 1 || !sameCPUs(a, e) {
					t.Errorf("IRQ %d: smp_affinity_list %v effective %v, want one CPU in both", irq, a, e)
				}
				if res, ok := d.result(irq); ok && !sameCPUs(res.To, a) {
					t.Errorf("IRQ %d: irqshift wrote %v but smp_affinity_list is %v", irq, res.To, a)
				}
			}
			dry := irqshift(t, append(flags, "rebalance", "--dry-run", "--json")...)
			mustExit(t, dry, 0)
			var plan applyDoc
			decodeJSON(t, dry, &plan)
			var problems []string
			if len(plan.Moves) != 0 || plan.Results != nil {
				problems = append(problems, fmt.Sprintf("a second rebalance --dry-run plans %d moves (want 0): %+v", len(plan.Moves), plan.Moves))
			}
			// irqshift's own view: what it listed as movable, minus what turned out unmovable.
			var listed []int
			for _, q := range doc.IRQs {
				if q.Movable && !refusedNow[q.IRQ] {
					listed = append(listed, q.IRQ)
				}
			}
			_, listedText := spread(perCPU(t, listed, online))
			t.Logf("IRQs irqshift listed as movable (minus refused) per effective CPU: %s", listedText)
			checkBalanced(t, "movable IRQs per effective CPU", perCPU(t, movable, online), refusedNow, problems...)
		})
	}
}

// TestCLIDrainAndOffline: every movable IRQ pinned to CPU2; `irqshift drain 2` spreads them
// round-robin over the other CPUs, `irqshift offline 2` leaves none behind. Then the kernel
// alone does the same with CPU3, as the baseline: its SPIs pile onto CPU0.
func TestCLIDrainAndOffline(t *testing.T) {
	needIrqshift(t, 4)
	const cpu, kcpu = 2, 3
	state := restoreAtEnd(t)
	online := onlineCPUs(t)
	others := without(online, cpu)
	_, movable := listMovable(t)
	if len(movable) < len(others) {
		t.Fatalf("only %d movable IRQs", len(movable))
	}
	managed := kernelManaged(t)
	pin(t, movable, strconv.Itoa(cpu))
	t.Log(table(fmt.Sprintf("before: every movable IRQ pinned to CPU%d", cpu), snapshot(t), marks(movable, "pinned")))

	// drain 2
	r := irqshift(t, "drain", strconv.Itoa(cpu), "--json")
	mustExit(t, r, 0)
	var d applyDoc
	decodeJSON(t, r, &d)
	checkResults(t, d)
	refusedNow := d.unmovable()
	for irq := range refusedNow {
		if !managed[irq] {
			t.Errorf("drain: IRQ %d refused, but it is not a managed virtio-blk queue", irq)
		}
		t.Logf("drain: IRQ %d (a managed virtio-blk queue) refused: unmovable, exit code still 0", irq)
	}
	for _, irq := range movable {
		res, ok := d.result(irq)
		if !ok || res.Status != "moved" || contains(res.To, cpu) {
			t.Errorf("drain: IRQ %d: result %+v (found %v), want moved off CPU%d", irq, res, ok, cpu)
			continue
		}
		if e := effCPUs(t, irq); !sameCPUs(e, res.To) || contains(e, cpu) {
			t.Errorf("drain: IRQ %d: effective_affinity_list %v, irqshift wrote %v", irq, e, res.To)
		}
	}
	drained := perCPU(t, movable, others)
	dd, text := spread(drained)
	t.Logf("irqshift drain %d: the %d IRQs now per CPU: %s", cpu, len(movable), text)
	limit := 1
	if len(refusedNow) > 0 {
		limit = 2 // a refused managed write used up one round-robin turn
	}
	for _, c := range others {
		if drained[c] == 0 {
			t.Errorf("drain: CPU%d got none of the %d IRQs (%s): not round-robin", c, len(movable), text)
		}
	}
	if dd > limit {
		t.Errorf("drain: spread %s differs by %d, want <= %d", text, dd, limit)
	}
	t.Log(table(fmt.Sprintf("after irqshift drain %d", cpu), snapshot(t), marks(movable, "was on 2")))

	// offline 2
	r = irqshift(t, "offline", strconv.Itoa(cpu), "--json")
	mustExit(t, r, 0)
	var off applyDoc
	decodeJSON(t, r, &off)
	checkResults(t, off)
	checkOfflined(t, off, cpu, others)
	after := snapshot(t)
	for _, irq := range movable {
		e, _ := parseCPUList(after[irq].Effective)
		if len(e) == 0 || contains(e, cpu) {
			t.Errorf("after offline: movable IRQ %d (%s) effective %q", irq, after[irq].Row.Actions, after[irq].Effective)
		}
		if a, _ := parseCPUList(after[irq].Affinity); len(a) > 1 {
			t.Logf("IRQ %d (%s): mask rewritten to %s during the offline (a driver's CPU hotplug callback, not irqshift)",
				irq, after[irq].Row.Actions, after[irq].Affinity)
		}
	}
	shiftCounts := perCPU(t, movable, others)
	_, shiftText := spread(shiftCounts)
	if shiftCounts[others[0]] == len(movable) {
		t.Errorf("after irqshift offline %d every movable IRQ is on CPU%d: %s", cpu, others[0], shiftText)
	}
	t.Log(table(fmt.Sprintf("irqshift: after `irqshift drain %d` + `irqshift offline %d` (online %s)", cpu, cpu, formatCPUList(others)), after, marks(movable, "was on 2")))

	// Baseline: the kernel alone, the same IRQs pinned to CPU3, CPU3 offlined by a plain write.
	state.restore(t)
	if !cpuIsOnline(t, cpu) {
		t.Fatalf("cpu%d did not come back online", cpu)
	}
	kothers := without(onlineCPUs(t), kcpu)
	pin(t, movable, strconv.Itoa(kcpu))
	if err := setCPUOnline(kcpu, false); err != nil {
		t.Fatalf("echo 0 > cpu%d/online: %v", kcpu, err)
	}
	kafter := snapshot(t)
	kernelCounts := perCPU(t, movable, kothers)
	_, kernelText := spread(kernelCounts)
	spis, spisOn0 := 0, 0
	shiftSPIsOn0 := 0
	for _, irq := range movable {
		if !isSPI(kafter[irq].Row) {
			continue
		}
		spis++
		if kafter[irq].Effective == strconv.Itoa(kothers[0]) {
			spisOn0++
		}
		if after[irq].Effective == strconv.Itoa(others[0]) {
			shiftSPIsOn0++
		}
	}
	t.Log(table(fmt.Sprintf("kernel alone: every movable IRQ pinned to CPU%d, then echo 0 > cpu%d/online (online %s)", kcpu, kcpu, formatCPUList(kothers)), kafter, marks(movable, "was pinned 3")))
	t.Logf("movable IRQs per CPU after the CPU went offline:\n  kernel alone (CPU%d): %s; GIC SPIs on CPU%d: %d of %d\n  irqshift     (CPU%d): %s; GIC SPIs on CPU%d: %d of %d",
		kcpu, kernelText, kothers[0], spisOn0, spis, cpu, shiftText, others[0], shiftSPIsOn0, spis)
	if spis == 0 || spisOn0 != spis {
		t.Errorf("kernel baseline: %d of %d GIC SPIs on CPU%d, want all (the kernel's own migration)", spisOn0, spis, kothers[0])
	}
}

// TestCLIOnline: CPU2 taken offline by the kernel alone; `irqshift online 2` brings it back and
// rebalances, so CPU2 is the effective CPU of movable IRQs again.
func TestCLIOnline(t *testing.T) {
	needIrqshift(t, 4)
	const cpu = 2
	restoreAtEnd(t)
	_, movable := listMovable(t)
	if err := setCPUOnline(cpu, false); err != nil {
		t.Fatalf("echo 0 > cpu%d/online: %v", cpu, err)
	}
	t.Log(table(fmt.Sprintf("CPU%d offline (plain write)", cpu), snapshot(t), nil))
	r := irqshift(t, "online", strconv.Itoa(cpu), "--json")
	mustExit(t, r, 0)
	var d applyDoc
	decodeJSON(t, r, &d)
	checkResults(t, d)
	if v := cpuOnlineFile(t, cpu); v != "1" || !cpuIsOnline(t, cpu) {
		t.Fatalf("after irqshift online %d: cpu%d/online = %q, online %v", cpu, cpu, v, onlineCPUs(t))
	}
	t.Log(table(fmt.Sprintf("after irqshift online %d", cpu), snapshot(t), nil))
	counts := perCPU(t, movable, onlineCPUs(t))
	if counts[cpu] == 0 {
		_, text := spread(counts)
		t.Errorf("after irqshift online %d no movable IRQ is effective on CPU%d: %s", cpu, cpu, text)
	}
	checkBalanced(t, "movable IRQs per effective CPU after online", counts, d.unmovable())
}

// TestCLIBadInput: bad CPU arguments on the live kernel exit 2 with a message and change nothing.
func TestCLIBadInput(t *testing.T) {
	needIrqshift(t, 4)
	restoreAtEnd(t)
	n := len(onlineCPUs(t))
	all := make([]string, n)
	for i := range all {
		all[i] = strconv.Itoa(i)
	}
	check := func(msg string, args ...string) {
		t.Helper()
		before := fileSnapshot(t)
		r := irqshift(t, args...)
		after := fileSnapshot(t)
		if r.Code != 2 {
			t.Errorf("irqshift %s: exit %d, want 2\n%s", strings.Join(args, " "), r.Code, r)
		}
		if !strings.HasPrefix(r.Stderr, "irqshift: ") || !regexp.MustCompile(msg).MatchString(r.Stderr) {
			t.Errorf("irqshift %s: stderr %q, want \"irqshift: \" and /%s/", strings.Join(args, " "), r.Stderr, msg)
		}
		if diff := diffSnapshots(before, after); len(diff) > 0 {
			t.Errorf("irqshift %s changed files:\n  %s", strings.Join(args, " "), strings.Join(diff, "\n  "))
		}
	}
	check("are all the allowed CPUs", append([]string{"drain"}, all...)...)
	check("are all the allowed CPUs|cannot be taken offline", append([]string{"offline"}, all...)...)
	check("CPU 9 does not exist", "drain", "9")
	check("CPU 9 does not exist", "online", "9")
	check("CPU 9 does not exist", "offline", "9")
	check(`"-1" is not a CPU`, "drain", "--", "-1")
	check("already online", "online", "2")

	mustExit(t, irqshift(t, "offline", "2"), 0)
	check("CPU 2 is offline", "offline", "2")
	check("CPU 2 is offline", "drain", "2")
	if v := cpuOnlineFile(t, 2); v != "0" {
		t.Errorf("cpu2/online = %q after the refused commands, want still 0", v)
	}
}

// TestCLIBannedCPUs: `irqshift --banned-cpus 3 rebalance` leaves no movable IRQ on CPU3, and the
// irqbalance variable bans the same CPU.
func TestCLIBannedCPUs(t *testing.T) {
	needIrqshift(t, 4)
	const banned = 3
	restoreAtEnd(t)
	_, movable := listMovable(t)
	t.Log(table("before", snapshot(t), nil))
	r := irqshift(t, "--banned-cpus", strconv.Itoa(banned), "rebalance", "--json")
	mustExit(t, r, 0)
	var d applyDoc
	decodeJSON(t, r, &d)
	checkResults(t, d)
	allowed := without(onlineCPUs(t), banned)
	for _, res := range d.Results {
		if !subset(res.To, allowed) {
			t.Errorf("IRQ %d written %v with CPU%d banned", res.IRQ, res.To, banned)
		}
	}
	t.Log(table(fmt.Sprintf("after irqshift --banned-cpus %d rebalance", banned), snapshot(t), nil))
	for _, irq := range movable {
		if e := effCPUs(t, irq); contains(e, banned) || len(e) == 0 {
			t.Errorf("IRQ %d: effective %v with CPU%d banned", irq, e, banned)
		}
	}
	lr := irqshift(t, "--banned-cpus", strconv.Itoa(banned), "list", "--json")
	mustExit(t, lr, 0)
	var doc listDoc
	decodeJSON(t, lr, &doc)
	if !sameCPUs(doc.CPUs.Banned, []int{banned}) || !sameCPUs(doc.CPUs.Allowed, allowed) {
		t.Errorf("list --json with --banned-cpus %d: banned %v allowed %v", banned, doc.CPUs.Banned, doc.CPUs.Allowed)
	}
	// The irqbalance variable bans the same CPU: nothing left to do.
	er := irqshiftEnv(t, []string{"IRQBALANCE_BANNED_CPULIST=" + strconv.Itoa(banned)}, "rebalance", "--dry-run", "--json")
	mustExit(t, er, 0)
	var plan applyDoc
	decodeJSON(t, er, &plan)
	managed := kernelManaged(t)
	for _, m := range plan.Moves {
		if !managed[m.IRQ] { // 6.1 still plans the managed queue of CPU3 (a new process has not seen it refused)
			t.Errorf("IRQBALANCE_BANNED_CPULIST=%d rebalance --dry-run plans %+v after the same ban was applied", banned, m)
		}
	}
	checkBalanced(t, fmt.Sprintf("movable IRQs per allowed CPU (%s)", formatCPUList(allowed)), perCPU(t, movable, allowed), d.unmovable())
}

// TestCLIKernelOverwriteIsNotAPin: an admin pinned IRQs to CPU2, the kernel offlined CPU2 without
// irqshift (the masks became the online mask, 0-1,3) and CPU2 came back. A first irqshift run,
// with no state, must not take the kernel's 0-1,3 for the admin's intent: rebalance spreads them.
func TestCLIKernelOverwriteIsNotAPin(t *testing.T) {
	needIrqshift(t, 4)
	restoreAtEnd(t)
	_, movable := listMovable(t)
	pin(t, movable, "2")
	if err := setCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	if err := setCPUOnline(2, true); err != nil {
		t.Fatal(err)
	}
	broken := 0
	for _, irq := range movable {
		if aff := affinity(t, irq); aff == "0-1,3" {
			broken++
		}
	}
	if broken == 0 {
		t.Fatal("the kernel did not overwrite any pin with 0-1,3; the test proves nothing")
	}
	r := irqshift(t, "rebalance", "--json")
	mustExit(t, r, 0)
	var doc applyDoc
	decodeJSON(t, r, &doc)
	for _, irq := range movable {
		if sk, ok := doc.skipped(irq); ok && strings.Contains(sk.Reason, "pinned") {
			t.Errorf("IRQ %d left as %q: the kernel's overwrite taken for a pin", irq, sk.Reason)
		}
	}
	checkBalanced(t, "movable IRQs per CPU after rebalance", perCPU(t, movable, onlineCPUs(t)), nil)
}
