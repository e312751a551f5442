//go:build vm

package vmtest

// Helpers for the tests of busy_test.go: the busy devices of run.sh --busy N (virtio-serial ports
// the test reads to make their IRQs fire), reading them in the background, measuring where their
// interrupts land from /proc/interrupts, the rate-aware irqshift (issue 17: --balance, --sample)
// and a daemon with a periodic check.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// busyPrefix is the name run.sh --busy gives the K-th port: irqshift-busy.K.
const busyPrefix = "irqshift-busy."

// busyCheck is the daemon's --check-interval in these tests: the daemon measures rates between
// its full settles, so a short interval gives it three windows soon.
const busyCheck = 2 * time.Second

// busyGuard bounds every wait for an expected state: many check intervals, so that only a daemon
// that never gets there fails, never a slow emulator. No test asserts how long anything took.
const busyGuard = 60 * busyCheck

// busyDev is one busy device of run.sh --busy.
type busyDev struct {
	Name   string // irqshift-busy.K, the virtserialport's name
	Port   string // /dev/vportNp1, the char device to read
	Virtio string // virtioN
	IRQ    int    // virtioN-virtqueues: the one MSI of the device's virtqueues
}

func (b busyDev) String() string {
	return fmt.Sprintf("IRQ %d (%s-virtqueues, %s)", b.IRQ, b.Virtio, b.Name)
}

// busyPorts returns the virtio ports whose name starts with busyPrefix: name -> port directory.
func busyPorts() map[string]string {
	m := map[string]string{}
	files, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(b)); strings.HasPrefix(name, busyPrefix) {
			m[name] = filepath.Dir(f)
		}
	}
	return m
}

// needBusy returns the busy devices, sorted by name, once their ports exist. It skips outside
// the test VM and in a VM booted without them (run.sh --busy), fails when the VM has fewer than
// run.sh said (IRQSHIFT_VM_BUSY) or a device has no virtqueues IRQ, and skips when there are
// fewer than minDevs or fewer online CPUs than minCPUs. It touches nothing.
func needBusy(t *testing.T, minDevs, minCPUs int) []busyDev {
	t.Helper()
	if os.Getenv("IRQSHIFT_VM_KERNEL") == "" {
		t.Skip("runs only inside the test VM (tests/vm/run.sh --busy 3): it reads the busy devices and moves IRQs")
	}
	want := 0
	if s := os.Getenv("IRQSHIFT_VM_BUSY"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("IRQSHIFT_VM_BUSY=%q", s)
		}
		want = n
	}
	ports := busyPorts()
	// The host adds the ports with control messages after the driver's probe; /init waits for
	// them, this is a second chance.
	for deadline := time.Now().Add(20 * time.Second); len(ports) < want && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		ports = busyPorts()
	}
	switch {
	case want > 0 && len(ports) < want:
		t.Fatalf("booted with run.sh --busy %d (IRQSHIFT_VM_BUSY) but /sys/class/virtio-ports has %d ports named %s*: %v "+
			"(is virtio_console loaded? /sys/bus/virtio/drivers: %v)", want, len(ports), busyPrefix, ports, virtioDrivers())
	case len(ports) == 0:
		t.Skipf("no busy devices: boot with tests/vm/run.sh --busy 3 (suite.sh does so for the newest kernel's GICv3 " +
			"4-vCPU boot and the NUMA VM)")
	case len(ports) < minDevs:
		t.Skipf("needs %d busy devices, the VM has %d (run.sh --busy %d)", minDevs, len(ports), minDevs)
	}
	needIrqshift(t, minCPUs)
	rows := readInterrupts(t)
	var devs []busyDev
	for name, dir := range ports {
		link, err := os.Readlink(filepath.Join(dir, "device"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		b := busyDev{Name: name, Port: "/dev/" + filepath.Base(dir), Virtio: filepath.Base(link), IRQ: -1}
		var seen []string
		for _, r := range rows {
			if virtioDevOf(r.Actions) != b.Virtio {
				continue
			}
			seen = append(seen, fmt.Sprintf("%d %s %s", r.IRQ, r.Chip, r.Actions))
			if r.Actions == b.Virtio+"-virtqueues" {
				b.IRQ = r.IRQ
			}
		}
		if b.IRQ < 0 {
			t.Fatalf("busy device %s (%s): no %s-virtqueues IRQ in /proc/interrupts; its rows: %v", name, b.Virtio, b.Virtio, seen)
		}
		if drv, _ := virtioDriver(b.Virtio); drv != "virtio_console" {
			t.Fatalf("busy device %s (%s): driver %q, want virtio_console", name, b.Virtio, drv)
		}
		devs = append(devs, b)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	return devs
}

func virtioDrivers() []string {
	d, _ := filepath.Glob("/sys/bus/virtio/drivers/*")
	for i := range d {
		d[i] = filepath.Base(d[i])
	}
	return d
}

func busyIRQs(devs []busyDev) []int {
	var irqs []int
	for _, b := range devs {
		irqs = append(irqs, b.IRQ)
	}
	return irqs
}

// busyLoad reads every busy port in the background, which makes its IRQ fire (10-110 times a
// second under TCG); a port nobody has open is idle.
type busyLoad struct {
	files []*os.File
	bytes []atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	errs  []string
	once  sync.Once
}

// startBusy opens each port and reads it until stop (registered as a cleanup). A port open
// elsewhere (virtio_console allows one opener) fails the test.
func startBusy(t *testing.T, devs []busyDev) *busyLoad {
	t.Helper()
	l := &busyLoad{bytes: make([]atomic.Int64, len(devs))}
	for i, b := range devs {
		f, err := os.Open(b.Port)
		if err != nil {
			l.stop(t)
			t.Fatalf("open %s (%s): %v", b.Port, b.Name, err)
		}
		l.files = append(l.files, f)
		l.wg.Add(1)
		go func(i int, f *os.File) {
			defer l.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := f.Read(buf)
				l.bytes[i].Add(int64(n))
				switch {
				case errors.Is(err, os.ErrClosed):
					return
				case err != nil && n == 0:
					// 0 and EOF: the host end is not connected (yet); anything else is logged.
					if !errors.Is(err, io.EOF) {
						l.mu.Lock()
						l.errs = append(l.errs, fmt.Sprintf("%s: %v", f.Name(), err))
						l.mu.Unlock()
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(i, f)
	}
	t.Cleanup(func() { l.stop(t) })
	return l
}

// stop closes the ports (which ends the reads: Go polls char devices) and waits for the readers.
func (l *busyLoad) stop(t *testing.T) {
	l.once.Do(func() {
		for _, f := range l.files {
			_ = f.Close()
		}
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.errs) > 0 {
			t.Logf("busy readers saw errors: %s", strings.Join(l.errs[:min(len(l.errs), 5)], "; "))
		}
	})
}

func (l *busyLoad) total() int64 {
	var n int64
	for i := range l.bytes {
		n += l.bytes[i].Load()
	}
	return n
}

// busyWindow is where the busy IRQs' interrupts landed during one window, from /proc/interrupts.
type busyWindow struct {
	secs   float64
	perIRQ map[int]uint64 // interrupts per busy IRQ
	perCPU map[int]uint64 // busy interrupts per CPU
	where  map[int][]int  // each busy IRQ's effective CPUs at the end
	total  uint64
}

// share is the busiest CPU's share (0-1) of the busy interrupts; 0 when there were none.
func (w busyWindow) share() float64 {
	if w.total == 0 {
		return 0
	}
	var most uint64
	for _, n := range w.perCPU {
		most = max(most, n)
	}
	return float64(most) / float64(w.total)
}

func (w busyWindow) String() string {
	var cpus []int
	for c := range w.perCPU {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	var pc []string
	for _, c := range cpus {
		pc = append(pc, fmt.Sprintf("%d:%d", c, w.perCPU[c]))
	}
	var irqs []int
	for irq := range w.perIRQ {
		irqs = append(irqs, irq)
	}
	sort.Ints(irqs)
	var pi []string
	for _, irq := range irqs {
		pi = append(pi, fmt.Sprintf("%d@%s:%d", irq, formatCPUList(w.where[irq]), w.perIRQ[irq]))
	}
	return fmt.Sprintf("share=%.3f total=%d window_s=%.1f rate=%.1f per_cpu=%s irqs=%s",
		w.share(), w.total, w.secs, float64(w.total)/w.secs, strings.Join(pc, ","), strings.Join(pi, ","))
}

// measureBusy counts the busy IRQs' interrupts per CPU over d (the ports must be read meanwhile).
func measureBusy(t *testing.T, devs []busyDev, d time.Duration) busyWindow {
	t.Helper()
	before := readCounts(t)
	start := time.Now()
	time.Sleep(d)
	after := readCounts(t)
	w := busyWindow{secs: time.Since(start).Seconds(), perIRQ: map[int]uint64{}, perCPU: map[int]uint64{}, where: map[int][]int{}}
	for _, b := range devs {
		for cpu, n := range after[b.IRQ] {
			was, ok := before[b.IRQ][cpu]
			if !ok || n < was {
				continue // a CPU that came online meanwhile has no earlier column
			}
			w.perIRQ[b.IRQ] += n - was
			w.perCPU[cpu] += n - was
			w.total += n - was
		}
		w.where[b.IRQ] = effCPUs(t, b.IRQ)
	}
	return w
}

// busyPlacement reads each busy IRQ's effective CPUs and says whether they are distinct: one CPU
// each, no two the same, all within allowed (nil: any).
func busyPlacement(t *testing.T, devs []busyDev, allowed []int) (distinct bool, text string) {
	t.Helper()
	seen := map[int]bool{}
	distinct = true
	var parts []string
	for _, b := range devs {
		eff := effCPUs(t, b.IRQ)
		parts = append(parts, fmt.Sprintf("%d@%s", b.IRQ, formatCPUList(eff)))
		if len(eff) != 1 || seen[eff[0]] || (allowed != nil && !contains(allowed, eff[0])) {
			distinct = false
		}
		for _, c := range eff {
			seen[c] = true
		}
	}
	return distinct, strings.Join(parts, " ")
}

// onOffline returns the IRQs of irqs whose effective_affinity_list holds a CPU that is offline.
func onOffline(t *testing.T, irqs []int) []string {
	t.Helper()
	online := onlineCPUs(t)
	var bad []string
	for _, irq := range irqs {
		b, err := os.ReadFile(irqFile(irq, "effective_affinity_list"))
		if err != nil {
			continue // freed meanwhile (never in this VM)
		}
		eff, err := parseCPUList(string(b))
		if err != nil {
			t.Fatalf("IRQ %d: %v", irq, err)
		}
		if !subset(eff, online) {
			bad = append(bad, fmt.Sprintf("IRQ %d effective %s (online %s)", irq, formatCPUList(eff), formatCPUList(online)))
		}
	}
	return bad
}

// needRates fails the test when /bin/irqshift is not the rate-aware one of issue 17: no global
// --balance, or no --sample on rebalance.
func needRates(t *testing.T) {
	t.Helper()
	top := irqshift(t, "--help")
	reb := irqshift(t, "rebalance", "--help")
	if !strings.Contains(top.Stdout+top.Stderr, "--balance") || !strings.Contains(reb.Stdout+reb.Stderr, "--sample") {
		t.Fatalf("this /bin/irqshift has no global --balance or no rebalance --sample: it is not the rate-aware irqshift "+
			"these tests are for (issue 17)\n%s\n%s", top, reb)
	}
}

// placeBusy puts each busy IRQ on the CPU given for it with `irqshift pin` and then forgets the
// pin with `irqshift unpin`: the mask stays, recorded in the state file as irqshift's own (not an
// admin pin), so the next rebalance or daemon settle may move it. That is how the tests start
// from busy IRQs sharing a CPU, as the kernel's own placement left them. An IRQ already effective
// there is left alone when its mask is the kernel's default (every online CPU: no pin either) or
// that CPU alone (in these tests only irqshift, with the same state file, writes one).
func placeBusy(t *testing.T, state string, where map[int]int) {
	t.Helper()
	var irqs []int
	for irq := range where {
		irqs = append(irqs, irq)
	}
	sort.Ints(irqs)
	online := onlineCPUs(t)
	for _, irq := range irqs {
		want := []int{where[irq]}
		if aff := affCPUs(t, irq); sameCPUs(effCPUs(t, irq), want) && (sameCPUs(aff, want) || subset(online, aff)) {
			continue
		}
		mustExit(t, irqshift(t, "--state", state, "pin", strconv.Itoa(irq), strconv.Itoa(where[irq])), 0)
		mustExit(t, irqshift(t, "--state", state, "unpin", strconv.Itoa(irq)), 0)
		if e := effCPUs(t, irq); !sameCPUs(e, []int{where[irq]}) {
			t.Fatalf("IRQ %d: effective %v after irqshift pin %d %d", irq, e, irq, where[irq])
		}
	}
}

// collide returns a placement of every busy IRQ on cpu.
func collide(devs []busyDev, cpu int) map[int]int {
	m := map[int]int{}
	for _, b := range devs {
		m[b.IRQ] = cpu
	}
	return m
}

// startRateWatch starts `irqshift --state STATE --log-level debug GLOBAL... watch --metrics-address
// 127.0.0.1:9815 --check-interval 2s` (+ IRQSHIFT_VM_WATCH_ARGS) and waits until it is ready.
// The daemon lives until the test t ends.
func startRateWatch(t *testing.T, state string, global ...string) *daemonProc {
	t.Helper()
	ensureLoopback(t)
	full := append([]string{"--state", state, "--log-level", "debug"}, global...)
	full = append(full, "watch", "--metrics-address", metricsAddr, "--check-interval", busyCheck.String())
	full = append(full, strings.Fields(os.Getenv("IRQSHIFT_VM_WATCH_ARGS"))...)
	d := startDaemon(t, full, nil)
	d.waitReady(t, 0)
	return d
}

// checks counts the daemon's periodic checks (settles with reason=check) from settle index from.
func (d *daemonProc) checks(from int) int {
	n := 0
	for _, s := range d.settles[min(from, len(d.settles)):] {
		if s.Reason == "check" {
			n++
		}
	}
	return n
}

// waitChecks waits until the daemon has logged n more periodic checks after settle index from,
// and returns the settle index after them.
func (d *daemonProc) waitChecks(t *testing.T, from, n int) int {
	t.Helper()
	end := 0
	ok, exited := d.waitFor(busyGuard+time.Duration(n)*busyCheck, func() bool {
		end = len(d.settles)
		return d.checks(from) >= n
	})
	if !ok {
		t.Fatalf("the daemon logged %d of %d periodic checks (reason=check) (exited: %v); log:\n%s", d.checksNow(from), n, exited, d.tail(40))
	}
	return end
}

func (d *daemonProc) checksNow(from int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.checks(from)
}

// moves sums the moved= of the settles from index from on and returns the lines of those that
// moved something, and every other line naming reason=load (a move the planner made for load).
func (d *daemonProc) moves(from, fromLine int) (moved int, lines []string) {
	d.mu.Lock()
	settles := append([]settleLog(nil), d.settles[min(from, len(d.settles)):]...)
	d.mu.Unlock()
	for _, s := range settles {
		if s.Moved > 0 {
			moved += s.Moved
			lines = append(lines, s.Line)
		}
	}
	for _, l := range d.linesSince(fromLine) {
		kv := parseLogfmt(l)
		if kv["reason"] == "load" && kv["msg"] != "settled" {
			lines = append(lines, l)
		}
	}
	return moved, lines
}

func (d *daemonProc) lineCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

// pollBusy polls every 250 ms, until cond holds or busyGuard passes, calling each (when not nil)
// on every round first: the invariants that must hold at any time. It fails the test on timeout
// and returns the rounds it took.
func pollBusy(t *testing.T, d *daemonProc, what string, each func(), cond func() (bool, string)) int {
	t.Helper()
	deadline := time.Now().Add(busyGuard)
	last := ""
	for round := 1; ; round++ {
		if each != nil {
			each()
		}
		ok, text := cond()
		if ok {
			return round
		}
		last = text
		if time.Now().After(deadline) {
			tail := ""
			if d != nil {
				tail = "; daemon log:\n" + d.tail(60)
			}
			t.Fatalf("%s: not reached within the hang guard of %s (%d check intervals); last seen: %s%s", what, busyGuard, busyGuard/busyCheck, last, tail)
		}
		if d != nil {
			select {
			case <-d.done:
				t.Fatalf("%s: the daemon exited; log:\n%s", what, d.tail(60))
			default:
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// metricSum sums every series of the family name in m.
func metricSum(m map[string]float64, name string) float64 {
	s := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// rateMetrics is a one-line summary of the daemon's rate metrics in m.
func rateMetrics(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		if strings.HasPrefix(k, "irqshift_cpu_interrupt_rate{") || strings.HasPrefix(k, "irqshift_busiest_cpu_rate_share") ||
			k == "irqshift_movable_irqs_on_offline_cpus" {
			parts = append(parts, fmt.Sprintf("%s=%.3g", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// checkRateMetrics asserts the rate metrics the daemon must export: irqshift_cpu_interrupt_rate
// for each online CPU, irqshift_busiest_cpu_rate_share in 0-1, and
// irqshift_movable_irqs_on_offline_cpus = 0.
func checkRateMetrics(t *testing.T, label string) map[string]float64 {
	t.Helper()
	m := scrapeMetrics(t)
	for _, c := range onlineCPUs(t) {
		if _, ok := m[fmt.Sprintf(`irqshift_cpu_interrupt_rate{cpu="%d"}`, c)]; !ok {
			t.Errorf("%s: no irqshift_cpu_interrupt_rate{cpu=\"%d\"}", label, c)
		}
	}
	if v, ok := m["irqshift_busiest_cpu_rate_share"]; !ok || v < 0 || v > 1 {
		t.Errorf("%s: irqshift_busiest_cpu_rate_share = %v (present: %v), want a share 0-1", label, v, ok)
	}
	if v, ok := m["irqshift_movable_irqs_on_offline_cpus"]; !ok || v != 0 {
		t.Errorf("%s: irqshift_movable_irqs_on_offline_cpus = %v (present: %v), want 0", label, v, ok)
	}
	return m
}

// countsWithinOne asserts that the movable IRQs differ by at most one per CPU of cpus.
func countsWithinOne(t *testing.T, label string, movable, cpus []int) string {
	t.Helper()
	d, text := spread(perCPU(t, movable, cpus))
	if d > 1 {
		t.Errorf("%s: movable IRQs per CPU differ by %d: %s", label, d, text)
	}
	return text
}

// countsWithinOneByHome is countsWithinOne where the planner levels the counts: over every online
// CPU on a machine of one NUMA node, and per node on one of several (the IRQs irqshift gives node N
// in list --json, over N's online CPUs, as numaVM.check counts them). Node-less IRQs, and those of
// a node with no online CPU, may go anywhere allowed: their counts are shown, not checked.
func countsWithinOneByHome(t *testing.T, label string, movable []int) string {
	t.Helper()
	online := onlineCPUs(t)
	nodes := sysNodes(t)
	if len(nodes) < 2 {
		return countsWithinOne(t, label, movable, online)
	}
	r := irqshift(t, "list", "--json")
	mustExit(t, r, 0)
	var doc numaListDoc
	decodeJSON(t, r, &doc)
	byNode := map[int][]int{}
	for _, q := range doc.IRQs {
		if !contains(movable, q.IRQ) {
			continue
		}
		n := -1
		if q.Node != nil {
			n = *q.Node
		}
		byNode[n] = append(byNode[n], q.IRQ)
	}
	var parts []string
	for _, n := range sortedKeys(byNode) {
		irqs := byNode[n]
		home := []int(nil)
		if n >= 0 {
			home = intersect(nodes[n], online)
		}
		if len(home) == 0 {
			_, text := spread(perCPU(t, irqs, online))
			parts = append(parts, fmt.Sprintf("node %d, anywhere (%d IRQs): %s", n, len(irqs), text))
			continue
		}
		d, text := spread(perCPU(t, irqs, home))
		if d > 1 {
			t.Errorf("%s: node %d's movable IRQs per CPU of node %d differ by %d: %s (IRQs %v)", label, n, n, d, text, irqs)
		}
		parts = append(parts, fmt.Sprintf("node %d on %s: %s", n, formatCPUList(home), text))
	}
	return strings.Join(parts, "; ")
}

// allBusy tells whether each of devs' IRQs had, in the rates plan d was made with, at least the
// planner's busy threshold: affinity.MinBusyRate (5/s), and a tenth of the busiest rate of an
// IRQ that is not per-CPU (the planner leaves the arch timer out). It also returns the rates as
// text.
func allBusy(d applyDoc, devs []busyDev) (bool, string) {
	perCPU := map[string]bool{}
	for _, s := range d.Skipped {
		if s.Class == "per-cpu" {
			perCPU[strconv.Itoa(s.IRQ)] = true
		}
	}
	most := 0.0
	for irq, rate := range d.Rates {
		if !perCPU[irq] {
			most = math.Max(most, rate)
		}
	}
	rates := d.Rates
	threshold := math.Max(5, 0.1*most)
	all := len(devs) > 0
	var parts []string
	for _, b := range devs {
		rate := rates[strconv.Itoa(b.IRQ)]
		parts = append(parts, fmt.Sprintf("%d=%.1f/s", b.IRQ, rate))
		all = all && rate >= threshold
	}
	return all, strings.Join(parts, " ") + fmt.Sprintf(" (threshold %.1f/s)", threshold)
}
