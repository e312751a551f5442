//go:build vm

package vmtest

// Busy IRQs (issue 17, rates in the plan): with run.sh --busy N the VM has N virtio-serial devices
// whose one MSI-X IRQ each (virtioK-virtqueues) fires while the test reads the device's port. The
// rate-aware irqshift (--balance load, the default) measures each movable IRQ's rate and, keeping
// the count of IRQs per CPU within one, puts busy IRQs on distinct CPUs; --balance count is the
// old behaviour. Placement is asserted on the kernel's effective_affinity_list; how evenly the
// interrupts land (the busiest CPU's share of the busy interrupts, from /proc/interrupts deltas)
// is only logged (BUSY-SHARE lines; make bench-vm compares the modes). No assertion is about
// time: the tests poll for the expected state with hang guards of many check intervals.
//
// suite.sh boots the newest kernel's GICv3 4-vCPU VM and the NUMA VM with --busy 3; elsewhere
// these tests skip, saying why.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// busyShareWindow is how long the tests count the busy interrupts for a BUSY-SHARE line.
const busyShareWindow = 5 * time.Second

// rateListDoc is the part of `irqshift list --json` about rates (docs/JSON.md): each IRQ's rate,
// interrupts per second over the --sample window, absent (null) when not measured.
type rateListDoc struct {
	IRQs []struct {
		IRQ     int      `json:"irq"`
		Actions []string `json:"actions"`
		Movable bool     `json:"movable"`
		Rate    *float64 `json:"rate"`
	} `json:"irqs"`
}

// TestBusyDevices pins down the harness (docs/KERNELS.md, "Busy IRQs in the VM"): each busy
// device has one virtqueues IRQ, irqshift lists it movable, reading the port makes it fire, and it
// is idle again once nobody reads. It logs where the kernel put them (at boot when it runs first).
func TestBusyDevices(t *testing.T) {
	devs := needBusy(t, 1, 1)
	rows := map[int]irqRow{}
	for _, r := range readInterrupts(t) {
		rows[r.IRQ] = r
	}
	_, movable := listMovable(t)
	var where []string
	cpus := map[int]int{}
	for _, b := range devs {
		r := rows[b.IRQ]
		eff := effCPUs(t, b.IRQ)
		where = append(where, fmt.Sprintf("%s on %s (mask %s)", b, formatCPUList(eff), affinity(t, b.IRQ)))
		for _, c := range eff {
			cpus[c]++
		}
		t.Logf("%s: port %s, chip %s hwirq %d %s", b, b.Port, r.Chip, r.HWIRQ, r.Trigger)
		if !contains(movable, b.IRQ) {
			t.Errorf("%s: irqshift list --json does not call it movable", b)
		}
		if gicVersion(readInterrupts(t)) == "3" && !isITS(r) {
			t.Errorf("%s: chip %q, want an ITS MSI on GICv3", b, r.Chip)
		}
	}
	shared := 0
	for _, n := range cpus {
		if n > 1 {
			shared += n
		}
	}
	t.Logf("BUSY-KERNEL-PLACEMENT %s: %s; %d of %d busy IRQs share a CPU with another", vmLabel(t), strings.Join(where, ", "), shared, len(devs))

	load := startBusy(t, devs)
	time.Sleep(time.Second) // the host connects the port and the first buffers come
	// A 2 s window in which every busy IRQ fired, trying again for up to 30 s: how fast the host
	// feeds the ports depends on its load, and a slow host must not fail the test.
	read := measureBusy(t, devs, 2*time.Second)
	for try := 1; try < 15 && slices.ContainsFunc(devs, func(b busyDev) bool { return read.perIRQ[b.IRQ] == 0 }); try++ {
		read = measureBusy(t, devs, 2*time.Second)
	}
	bytes := load.total()
	load.stop(t)
	time.Sleep(500 * time.Millisecond)
	idle := measureBusy(t, devs, 2*time.Second)
	t.Logf("read for 2 s (%d bytes): %s", bytes, read)
	t.Logf("not read for 2 s: %s", idle)
	for _, b := range devs {
		if read.perIRQ[b.IRQ] == 0 {
			t.Errorf("%s: no interrupt while %s was read (%d bytes read from all ports)", b, b.Port, bytes)
		}
	}
	if idle.total >= read.total {
		t.Errorf("the busy IRQs fired %d times unread, %d times read: not idle when nobody reads", idle.total, read.total)
	}
}

// TestBusyDaemon runs `irqshift watch --check-interval 2s` (balance load, the default) with every
// busy port read, from all busy IRQs on CPU1: once it has measured rates they are on distinct CPUs
// (counts still within one); then over several checks nothing moves; then the CPU of a busy IRQ
// goes offline (the IRQ goes to a CPU with no busy IRQ) and comes back (still distinct), with no
// movable IRQ on an offline CPU whenever the test looks.
func TestBusyDaemon(t *testing.T) {
	devs := needBusy(t, 2, 2)
	needRates(t)
	if n := len(onlineCPUs(t)); len(devs) >= n {
		t.Skipf("needs more online CPUs (%d) than busy devices (%d): one goes offline", n, len(devs))
	}
	restoreAtEnd(t)
	_, movable := listMovable(t)
	irqs := busyIRQs(devs)
	for _, irq := range irqs {
		if !contains(movable, irq) {
			t.Fatalf("busy IRQ %d is not movable in irqshift list --json (movable: %v)", irq, movable)
		}
	}
	st := statePath(t)
	placeBusy(t, st, collide(devs, 1))
	startBusy(t, devs)
	label := vmLabel(t)
	start := time.Now()
	d := startRateWatch(t, st)
	t.Logf("daemon ready in %.1fs; busy IRQs %v on CPU1, every port read", time.Since(start).Seconds(), irqs)

	t.Run("at rest", func(t *testing.T) {
		text := ""
		pollBusy(t, d, "three periodic checks (rates measured) and the busy IRQs on distinct CPUs", nil, func() (bool, string) {
			var ok bool
			ok, text = busyPlacement(t, devs, nil)
			n := d.checksNow(0)
			return ok && n >= 3, fmt.Sprintf("%s after %d checks", text, n)
		})
		t.Logf("distinct after %d periodic checks (%.1fs): %s", d.checksNow(0), time.Since(start).Seconds(), text)
		var forLoad []string
		for _, l := range d.linesSince(0) {
			if kv := parseLogfmt(l); kv["reason"] == "load" && kv["msg"] != "settled" {
				forLoad = append(forLoad, l)
			}
		}
		t.Logf("the daemon logged %d move(s) with reason=load:\n%s", len(forLoad), strings.Join(forLoad, "\n"))
		t.Logf("movable IRQs per CPU: %s", countsWithinOneByHome(t, "at rest", movable))
		w := measureBusy(t, devs, busyShareWindow)
		m := checkRateMetrics(t, "at rest")
		t.Logf("BUSY-SHARE %s kind=daemon-load %s", label, w)
		t.Logf("daemon metrics: %s", rateMetrics(m))
		if ok, text := busyPlacement(t, devs, nil); !ok {
			t.Errorf("after the window the busy IRQs share a CPU again: %s", text)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("steady load", func(t *testing.T) {
		// At rest first: two periodic checks in a row that moved nothing.
		pollBusy(t, d, "two periodic checks in a row that moved nothing", nil, func() (bool, string) {
			d.mu.Lock()
			defer d.mu.Unlock()
			quiet := 0
			for _, s := range d.settles {
				switch {
				case s.Moved > 0:
					quiet = 0
				case s.Reason == "check":
					quiet++
				}
			}
			return quiet >= 2, fmt.Sprintf("%d quiet checks", quiet)
		})
		mark, lineMark := d.settleCount(), d.lineCount()
		m0 := scrapeMetrics(t)
		before := map[int]string{}
		for _, irq := range movable {
			before[irq] = effective(t, irq)
		}
		const n = 5
		d.waitChecks(t, mark, n)
		moved, lines := d.moves(mark, lineMark)
		m1 := scrapeMetrics(t)
		changed := 0
		for _, irq := range movable {
			if e := effective(t, irq); e != before[irq] {
				changed++
				t.Errorf("IRQ %d: effective %s -> %s over %d periodic checks under steady load", irq, before[irq], e, n)
			}
		}
		was, now := metricSum(m0, "irqshift_irq_moves_total"), metricSum(m1, "irqshift_irq_moves_total")
		t.Logf("over %d periodic checks: %d moves in the log, irqshift_irq_moves_total %g -> %g, %d effective CPUs changed", n, moved, was, now, changed)
		if moved > 0 || len(lines) > 0 || now != was {
			t.Errorf("the daemon moved IRQs under steady load (hysteresis): %d moved, irqshift_irq_moves_total %g -> %g:\n%s",
				moved, was, now, strings.Join(lines, "\n"))
		}
	})

	t.Run("offline and online", func(t *testing.T) {
		cpu, irq := -1, -1
		for _, b := range devs {
			if eff := effCPUs(t, b.IRQ); len(eff) == 1 && eff[0] != 0 {
				cpu, irq = eff[0], b.IRQ
				break
			}
		}
		if cpu < 0 {
			t.Fatalf("no busy IRQ on a CPU other than CPU0: %v", irqs)
		}
		ensureOnlineAtEnd(t, cpu)
		reported := map[string]bool{}
		never := func() {
			for _, bad := range onOffline(t, movable) {
				if !reported[bad] {
					reported[bad] = true
					t.Errorf("a movable IRQ on an offline CPU: %s", bad)
				}
			}
		}
		for _, on := range []bool{false, true} {
			what := fmt.Sprintf("offline %d", cpu)
			event := fmt.Sprintf("offline:%d", cpu)
			if on {
				what, event = fmt.Sprintf("online %d", cpu), fmt.Sprintf("online:%d", cpu)
			}
			mark := d.settleCount()
			if err := setCPUOnline(cpu, on); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			never()
			d.waitSettles(t, mark, []string{event})
			never()
			text := ""
			pollBusy(t, d, what+": busy IRQs on distinct online CPUs", never, func() (bool, string) {
				var ok bool
				ok, text = busyPlacement(t, devs, onlineCPUs(t))
				return ok, text
			})
			t.Logf("%s (busy IRQ %d was on CPU%d): distinct again after %d periodic checks: %s; movable IRQs per CPU: %s",
				what, irq, cpu, d.checksNow(mark), text, countsWithinOneByHome(t, what, movable))
			checkRateMetrics(t, what)
		}
	})
}

// TestBusyRebalance: with every busy port read, `list --sample 1s` gives the busy IRQs a rate; a
// one-shot `rebalance --sample 1s` from all busy IRQs on CPU1 puts them on distinct CPUs (counts
// within one) and a second one plans nothing; `--balance count rebalance` keeps counts within one
// and need not separate them. The commands share one state file, as on a machine: with one each,
// the single-CPU masks an earlier command wrote would be the admin's pins to the next.
func TestBusyRebalance(t *testing.T) {
	devs := needBusy(t, 2, 2)
	needRates(t)
	if n := len(onlineCPUs(t)); len(devs) > n {
		t.Skipf("more busy devices (%d) than online CPUs (%d)", len(devs), n)
	}
	restoreAtEnd(t)
	st := statePath(t)
	_, movable := listMovable(t, "--state", st)
	startBusy(t, devs)
	irqs := busyIRQs(devs)
	time.Sleep(time.Second)

	t.Run("list --sample", func(t *testing.T) {
		r := irqshift(t, "--state", st, "list", "--json", "--sample", "1s")
		mustExit(t, r, 0)
		var doc rateListDoc
		decodeJSON(t, r, &doc)
		var rates []string
		for _, q := range doc.IRQs {
			if q.Rate != nil && *q.Rate > 0 {
				rates = append(rates, fmt.Sprintf("%d(%s)=%.1f", q.IRQ, strings.Join(q.Actions, ","), *q.Rate))
			}
			if contains(irqs, q.IRQ) && (q.Rate == nil || *q.Rate <= 0) {
				t.Errorf("busy IRQ %d (%s): rate %v in list --json --sample 1s, want > 0 (its port is read)", q.IRQ, strings.Join(q.Actions, ","), q.Rate)
			}
		}
		t.Logf("IRQs with a rate (interrupts/s over 1 s): %s", strings.Join(rates, " "))

		r = irqshift(t, "--state", st, "list", "--json", "--sample", "0")
		mustExit(t, r, 0)
		doc = rateListDoc{}
		decodeJSON(t, r, &doc)
		for _, q := range doc.IRQs {
			if q.Rate != nil && *q.Rate > 0 {
				t.Errorf("IRQ %d: rate %g with --sample 0 (counts only)", q.IRQ, *q.Rate)
			}
		}
	})

	t.Run("load separates", func(t *testing.T) {
		// Three busy IRQs on one vCPU fire more slowly than apart (that
		// vCPU handles them all, under TCG), and on a loaded host one may
		// fall below the planner's busy threshold for the sample: then
		// leaving it beside another is right, not a miss. The rates the
		// plan used are in its JSON: the separation is required of a plan
		// that saw all three busy; a window that did not is sampled again
		// (up to four times).
		var r cliRun
		var ok, premise bool
		var text string
		for try := 1; try <= 4 && !premise; try++ {
			placeBusy(t, st, collide(devs, 1))
			r = irqshift(t, "--state", st, "rebalance", "--sample", "1s", "--json")
			mustExit(t, r, 0)
			var d applyDoc
			decodeJSON(t, r, &d)
			checkResults(t, d)
			var rates string
			premise, rates = allBusy(d, devs)
			ok, text = busyPlacement(t, devs, nil)
			t.Logf("rebalance --sample 1s, try %d: rates %s; all three busy: %v; after: %s", try, rates, premise, text)
		}
		if !premise {
			t.Fatalf("in four 1 s windows the busy devices never all fired above the planner's busy threshold: the VM is starved, the test has no load to separate")
		}
		if !ok {
			t.Errorf("after rebalance --sample 1s, whose rates had all three busy, the busy IRQs share a CPU: %s\n%s", text, r.Stdout)
		}
		t.Logf("after rebalance --sample 1s: busy %s; movable IRQs per CPU: %s", text, countsWithinOneByHome(t, "rebalance", movable))
		dry := irqshift(t, "--state", st, "rebalance", "--sample", "1s", "--dry-run", "--json")
		mustExit(t, dry, 0)
		var plan applyDoc
		decodeJSON(t, dry, &plan)
		if len(plan.Moves) != 0 {
			t.Errorf("a second rebalance --sample 1s --dry-run plans %d moves under the same load, want 0 (hysteresis): %+v", len(plan.Moves), plan.Moves)
		}
	})

	t.Run("count", func(t *testing.T) {
		placeBusy(t, st, collide(devs, 1))
		r := irqshift(t, "--state", st, "--balance", "count", "rebalance", "--json")
		mustExit(t, r, 0)
		var d applyDoc
		decodeJSON(t, r, &d)
		checkResults(t, d)
		ok, text := busyPlacement(t, devs, nil)
		t.Logf("after --balance count rebalance: busy IRQs distinct: %v (%s), movable IRQs per CPU: %s (counts only: it need not separate them)",
			ok, text, countsWithinOneByHome(t, "--balance count rebalance", movable))
	})
}

// TestNUMABusyDaemon (the NUMA VM, run.sh -c 8 --numa 2 --pci-node 1 --busy 3): the busy IRQs,
// devices of the PCI node, all start on one CPU of it; the daemon (--check-interval 2s) puts them
// on distinct CPUs of that node, keeping node locality and counts (numaVM.check), also with the CPU
// of one of them offline and back.
func TestNUMABusyDaemon(t *testing.T) {
	devs := needBusy(t, 2, 2)
	v := needNUMA(t)
	needRates(t)
	if len(v.home) <= len(devs) {
		t.Skipf("needs more CPUs on the PCI node (%v) than busy devices (%d)", v.home, len(devs))
	}
	irqs := busyIRQs(devs)
	for _, irq := range irqs {
		if !contains(v.byNode[v.pciNode], irq) {
			t.Fatalf("busy IRQ %d is not among node %d's movable IRQs in list --json: %v", irq, v.pciNode, v.byNode)
		}
	}
	restoreAtEnd(t)
	for _, c := range v.home {
		ensureOnlineAtEnd(t, c)
	}
	st := statePath(t)
	placeBusy(t, st, collide(devs, v.home[1]))
	startBusy(t, devs)
	d := startRateWatch(t, st)
	text := ""
	pollBusy(t, d, fmt.Sprintf("three periodic checks and the busy IRQs on distinct CPUs of node %d", v.pciNode), nil, func() (bool, string) {
		var ok bool
		ok, text = busyPlacement(t, devs, v.home)
		return ok && d.checksNow(0) >= 3, text
	})
	t.Logf("at rest after %d periodic checks: busy %s", d.checksNow(0), text)
	v.check(t, "at rest")
	t.Logf("BUSY-SHARE %s nodes=%d kind=daemon-load %s", vmLabel(t), len(v.nodes), measureBusy(t, devs, busyShareWindow))

	eff := effCPUs(t, irqs[0])
	if len(eff) != 1 {
		t.Fatalf("busy IRQ %d effective %v", irqs[0], eff)
	}
	cpu := eff[0]
	never := func() {
		if bad := onOffline(t, v.movable); len(bad) > 0 {
			t.Fatalf("a movable IRQ on an offline CPU: %s", strings.Join(bad, "; "))
		}
	}
	for _, on := range []bool{false, true} {
		what, event := "offline "+strconv.Itoa(cpu), "offline:"+strconv.Itoa(cpu)
		if on {
			what, event = "online "+strconv.Itoa(cpu), "online:"+strconv.Itoa(cpu)
		}
		mark := d.settleCount()
		if err := setCPUOnline(cpu, on); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		never()
		d.waitSettles(t, mark, []string{event})
		pollBusy(t, d, what+": busy IRQs on distinct online CPUs of the node", never, func() (bool, string) {
			var ok bool
			ok, text = busyPlacement(t, devs, intersect(v.home, onlineCPUs(t)))
			return ok, text
		})
		t.Logf("%s: busy %s", what, text)
		v.check(t, what)
	}
}

// TestBusyBench compares, in one VM run, how evenly the busy interrupts land (BUSY-SHARE: the
// busiest CPU's share of them, from /proc/interrupts over IRQSHIFT_VM_BUSY_WINDOW, default 10s)
// with the kernel's own placement, the daemon at --balance count and at --balance load, and a
// one-shot rebalance at each; IRQSHIFT_VM_BUSY_ROUNDS (default 1) repeats all but the kernel's,
// each from the kernel's placement. Only `make bench-vm` runs it (IRQSHIFT_VM_BUSY_BENCH=1).
func TestBusyBench(t *testing.T) {
	if os.Getenv("IRQSHIFT_VM_BUSY_BENCH") == "" {
		t.Skip("the busy-IRQ benchmark runs under make bench-vm only (tests/vm/bench.sh sets IRQSHIFT_VM_BUSY_BENCH=1)")
	}
	devs := needBusy(t, 2, 2)
	needRates(t)
	window := 10 * time.Second
	if s := os.Getenv("IRQSHIFT_VM_BUSY_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("IRQSHIFT_VM_BUSY_WINDOW=%q: %v", s, err)
		}
		window = d
	}
	rounds := 1
	if s := os.Getenv("IRQSHIFT_VM_BUSY_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("IRQSHIFT_VM_BUSY_ROUNDS=%q", s)
		}
		rounds = n
	}
	restoreAtEnd(t)
	label := vmLabel(t)
	kernel := map[int]int{}
	for _, b := range devs {
		eff := effCPUs(t, b.IRQ)
		if len(eff) != 1 {
			t.Fatalf("%s: effective %v at start", b, eff)
		}
		kernel[b.IRQ] = eff[0]
	}
	startBusy(t, devs)
	time.Sleep(2 * time.Second)
	report := func(kind string, round int, extra string) {
		t.Helper()
		t.Logf("BUSY-SHARE %s kind=%s round=%d %s%s", label, kind, round, measureBusy(t, devs, window), extra)
	}
	report("kernel", 0, "")
	st := statePath(t)
	for round := 1; round <= rounds; round++ {
		placeBusy(t, st, kernel)
		for _, balance := range []string{"count", "load"} {
			d := startRateWatch(t, st, "--balance", balance)
			mark := 0
			if balance == "load" {
				pollBusy(t, d, "the daemon at --balance load: busy IRQs on distinct CPUs", nil, func() (bool, string) {
					return busyPlacement(t, devs, nil)
				})
				mark = d.settleCount()
			}
			d.waitChecks(t, mark, 3)
			m := scrapeMetrics(t)
			report("daemon-"+balance, round, fmt.Sprintf(" metric_share=%.3f checks=%d", m["irqshift_busiest_cpu_rate_share"], d.checksNow(0)))
			if code := d.stop(t); code != 0 {
				t.Errorf("irqshift watch --balance %s: exit %d after SIGTERM", balance, code)
			}
		}
		placeBusy(t, st, kernel)
		for _, balance := range []string{"count", "load"} {
			mustExit(t, irqshift(t, "--state", st, "--balance", balance, "rebalance", "--sample", "1s", "--json"), 0)
			report("rebalance-"+balance, round, "")
		}
	}
}
