//go:build vm

package vmtest

// The daemon, `irqshift watch`, on the live arm64 kernel: the test offlines and onlines CPUs
// with plain writes to /sys/devices/system/cpu/cpuN/online (the daemon only hears the uevents),
// waits for the settle each event caused (the daemon's `msg=settled` log line), and then checks
// the kernel's own files: no movable IRQ is effective on an offline CPU, the movable IRQs are
// spread over the online CPUs (counts differ by at most one), and pins come back with their
// CPUs. It also kills the daemon with SIGKILL mid-run, restarts it on the same state file, and
// scrapes its Prometheus metrics.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const metricsAddr = "127.0.0.1:9815"

// sanityReactionMS bounds the median reaction time to one CPU event. It is no performance goal
// (the goal, 20 ms median on 6.12 GICv3, and the measured figures live in docs/BENCHMARKS.md,
// measured by `make bench-vm`, never asserted): it is more than 10x the goal, so that only a real
// regression (a settle that sleeps, retries or rereads everything per IRQ) fails the test, not an
// emulator slowed down by a busy shared host. IRQSHIFT_VM_MAX_REACTION_MS replaces it.
const sanityReactionMS = 250.0

// settleLog is one `msg=settled` line of the daemon.
type settleLog struct {
	Reason   string
	Events   []string // "offline:2", "online:3", "resync:start"
	Moved    int
	Failed   int
	Online   string
	Reaction float64 // reaction_ms; -1 when the line has none (no CPU event)
	// Full: the settle read the whole state (snapshot=full, or no snapshot= as before quick
	// settles); false for the quick settle of CPU events (snapshot=events), after which the daemon
	// runs a full "recheck" once no event waits.
	Full bool
	Line string
}

// daemonProc is a running `irqshift watch` whose stderr (log/slog text) is parsed as it comes.
type daemonProc struct {
	cmd  *exec.Cmd
	args []string

	mu      sync.Mutex
	lines   []string
	settles []settleLog
	notify  chan struct{} // a token after each new line
	done    chan struct{} // closed when the process has exited and stderr is drained
	state   *os.ProcessState
}

// parseLogfmt splits a slog text line into its key=value pairs (values may be quoted).
func parseLogfmt(line string) map[string]string {
	m := map[string]string{}
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != '=' && line[j] != ' ' {
			j++
		}
		key := line[i:j]
		if j >= len(line) || line[j] != '=' {
			i = j
			continue
		}
		j++
		val := ""
		if j < len(line) && line[j] == '"' {
			k := j + 1
			for k < len(line) && line[k] != '"' {
				if line[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(line) {
				k = len(line) - 1
			}
			if v, err := strconv.Unquote(line[j : k+1]); err == nil {
				val = v
			} else {
				val = line[j+1 : k]
			}
			j = k + 1
		} else {
			k := j
			for k < len(line) && line[k] != ' ' {
				k++
			}
			val = line[j:k]
			j = k
		}
		m[key] = val
		i = j
	}
	return m
}

func parseSettle(line string) (settleLog, bool) {
	kv := parseLogfmt(line)
	if kv["msg"] != "settled" {
		return settleLog{}, false
	}
	s := settleLog{Reason: kv["reason"], Online: kv["online"], Reaction: -1, Full: kv["snapshot"] != "events", Line: line}
	if ev := kv["events"]; ev != "" {
		s.Events = strings.Split(ev, ",")
	}
	s.Moved, _ = strconv.Atoi(kv["moved"])
	s.Failed, _ = strconv.Atoi(kv["failed"])
	if r, ok := kv["reaction_ms"]; ok {
		if v, err := strconv.ParseFloat(r, 64); err == nil {
			s.Reaction = v
		}
	}
	return s, true
}

// startWatch starts `irqshift --state STATE --log-level debug watch ARGS...` and registers a
// cleanup that stops it. (--log-level is a global flag: after `watch` it is refused.)
func startWatch(t *testing.T, state string, args ...string) *daemonProc {
	t.Helper()
	full := append([]string{"--state", state, "--log-level", "debug", "watch"}, args...)
	return startDaemon(t, full, nil)
}

// startDaemon starts /bin/irqshift with exactly args (which must run watch) and env added to a
// minimal environment, and parses its log as it comes.
func startDaemon(t *testing.T, full, env []string) *daemonProc {
	t.Helper()
	d := &daemonProc{args: full, notify: make(chan struct{}, 1), done: make(chan struct{})}
	d.cmd = exec.Command(irqshiftBin, full...)
	d.cmd.Env = append([]string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"}, env...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start irqshift %s: %v", strings.Join(full, " "), err)
	}
	t.Logf("started irqshift %s (pid %d)", strings.Join(full, " "), d.cmd.Process.Pid)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.lines = append(d.lines, line)
			if s, ok := parseSettle(line); ok {
				d.settles = append(d.settles, s)
			}
			d.mu.Unlock()
			select {
			case d.notify <- struct{}{}:
			default:
			}
		}
		_ = d.cmd.Wait()
		d.mu.Lock()
		d.state = d.cmd.ProcessState
		d.mu.Unlock()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("daemon log (pid %d):\n%s", d.cmd.Process.Pid, d.tail(120))
		}
	})
	return d
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 10 s); it returns the exit code.
func (d *daemonProc) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Errorf("irqshift watch (pid %d) did not stop within 10 s of SIGTERM; killing it", d.cmd.Process.Pid)
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state.ExitCode()
}

func (d *daemonProc) tail(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	from := max(0, len(d.lines)-n)
	return strings.Join(d.lines[from:], "\n")
}

func (d *daemonProc) settleCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.settles)
}

// linesSince returns the log lines from index i on.
func (d *daemonProc) linesSince(i int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines[min(i, len(d.lines)):]...)
}

// waitFor polls cond (called with d.mu held) on every new log line until it holds, the process
// exits, or timeout passes.
func (d *daemonProc) waitFor(timeout time.Duration, cond func() bool) (ok, exited bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		c := cond()
		d.mu.Unlock()
		if c {
			return true, false
		}
		select {
		case <-d.notify:
		case <-d.done:
			d.mu.Lock()
			c := cond()
			d.mu.Unlock()
			return c, true
		case <-deadline.C:
			return false, false
		}
	}
}

// settleTimeout bounds the wait for one settle: hotplug under TCG on a shared 2-core host is slow,
// and the first daemon of a 128-vCPU boot was ready only after 18-21 s. A hang guard only: every
// wait on it ends as soon as the settle is there.
const settleTimeout = 60 * time.Second

// waitSettles waits until the settles logged from index from on cover every event of want
// ("offline:2"), and returns them. An event is covered once a full settle has followed (or been)
// the settle that names it: the quick settle of CPU events does not promise the placement (it
// cannot see masks a driver's own hotplug callback rewrote before it learned that driver), the
// recheck after it does.
func (d *daemonProc) waitSettles(t *testing.T, from int, want []string) []settleLog {
	t.Helper()
	var got []settleLog
	ok, exited := d.waitFor(settleTimeout, func() bool {
		seen := map[string]bool{}
		var pending []string
		for _, s := range d.settles[min(from, len(d.settles)):] {
			pending = append(pending, s.Events...)
			if s.Full {
				for _, e := range pending {
					seen[e] = true
				}
				pending = nil
			}
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		got = append([]settleLog(nil), d.settles[from:]...)
		return true
	})
	if !ok {
		what := "did not settle within " + settleTimeout.String()
		if exited {
			what = "exited"
		}
		t.Fatalf("waiting for the settle of %v: irqshift watch %s; log:\n%s", want, what, d.tail(60))
	}
	return got
}

// waitReady waits for the start-up settles: "start", then the resync the event source sends once
// its uevent socket is open (events=resync:start). Only after that is a hotplug event certain to
// be heard.
func (d *daemonProc) waitReady(t *testing.T, from int) []settleLog {
	t.Helper()
	return d.waitSettles(t, from, []string{"resync:start"})
}

// ensureLoopback brings lo up for the metrics endpoint (guest/init does it too).
func ensureLoopback(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/sys/class/net/lo/flags")
	if err != nil {
		t.Fatalf("no loopback device: %v", err)
	}
	flags, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")), 16, 64)
	if flags&1 != 0 {
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
}

// scrapeMetrics fetches /metrics and returns every sample by its series text
// (`irqshift_hotplug_events_total{action="offline"}`).
func scrapeMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return m
}

// hotplugRun is the state of TestDaemonHotplug: the daemon, the IRQs to check, the pins the
// daemon keeps, and the reaction times it logged.
type hotplugRun struct {
	top     *testing.T // the daemons live as long as the whole test, not one subtest
	d       *daemonProc
	state   string
	movable []int
	// pins is what the daemon keeps as pins (IRQ -> CPUs), as its `learned pin` lines say;
	// admin holds the ones the test set on purpose.
	pins     map[int][]int
	admin    map[int][]int
	bogus    []string // pins learned from masks nobody set by hand (known bug, see scanLog)
	cpus     []int    // every CPU this VM has (possible)
	offlines int      // offline events caused since the current daemon started
	onlines  int
	reaction []float64 // ms, one per settle caused by our CPU events
	single   []float64 // ms, settles of one write (subset of reaction)
	writes   []float64 // ms, how long each single hotplug write took
	burst    []float64 // ms, settles of back-to-back writes (subset of reaction)
	lineMark int       // daemon log lines already scanned for `learned pin`
	misroute int       // "moved IRQ fires outside its new affinity" warnings seen
	// quick and fullEvents count the settles of CPU events that read only what the events
	// changed (snapshot=events) and those that read everything; recheckMoved sums what the full
	// rechecks after quick settles still moved, recheckMovedSingle in steps of one write (in a
	// burst the recheck after the first event may already see the second CPU change).
	quick, fullEvents, recheckMoved, recheckMovedSingle int
}

// strict makes the known irqshift bugs fail the test instead of being logged.
func strict() bool { return os.Getenv("IRQSHIFT_VM_STRICT") != "" }

// scanLog reads the daemon log lines not seen yet: every `learned pin` updates the model of the
// daemon's pins; a pin the test did not set is the known bug "a mask the kernel or a driver wrote
// during a burst of hotplug events is learned as an admin pin" (reported with the tests; it makes
// the daemon keep such IRQs on stale CPU sets and can replace a real pin). The checks then follow
// the daemon's pins, so the rest of the run still tests everything else; IRQSHIFT_VM_STRICT=1
// makes it an error.
func (h *hotplugRun) scanLog(t *testing.T, label string) {
	t.Helper()
	lines := h.d.linesSince(h.lineMark)
	h.lineMark += len(lines)
	for _, l := range lines {
		kv := parseLogfmt(l)
		switch kv["msg"] {
		case "moved IRQ fires outside its new affinity":
			h.misroute++
			t.Logf("%s: daemon: %s", label, l)
		case "learned pin":
			irq, err := strconv.Atoi(kv["irq"])
			if err != nil {
				t.Fatalf("bad learned pin line %q", l)
			}
			cpus, err := parseCPUList(kv["cpus"])
			if err != nil {
				t.Fatalf("bad learned pin line %q", l)
			}
			if !contains(h.movable, irq) {
				// A kernel-managed virtio-blk queue on 6.1: its mask looks like a pin until the
				// daemon's probe write is refused, which drops it (documented behaviour).
				t.Logf("%s: learned pin of managed IRQ %d (%s), to be dropped by the probe write", label, irq, kv["cpus"])
				continue
			}
			old, hadPin := h.pins[irq]
			h.pins[irq] = cpus
			if a, ok := h.admin[irq]; ok && sameCPUs(a, cpus) {
				continue
			}
			replaced := ""
			if hadPin {
				replaced = fmt.Sprintf(", replacing its pin %s", formatCPUList(old))
			}
			msg := fmt.Sprintf("%s: the daemon learned IRQ %d's mask %s as an admin pin%s, but nobody set it: the kernel "+
				"(its overwrite on offline) or virtio-net's hotplug callback wrote it during a burst of hotplug events, and "+
				"affinity.Engine.Load/Pins.LearnPins compared it with the online set of another moment", label, irq, kv["cpus"], replaced)
			h.bogus = append(h.bogus, fmt.Sprintf("IRQ %d pin %s (%s)", irq, kv["cpus"], label))
			if strict() {
				t.Errorf("IRQSHIFT BUG: %s", msg)
			} else {
				t.Logf("KNOWN IRQSHIFT BUG: %s; the checks follow the daemon's pins from here", msg)
			}
		}
	}
}

// writeOps makes the CPU changes of ops ("-2" offlines CPU2, "+2" onlines it), one write right
// after the other, and returns the events they cause and how long the writes took (kept, for one
// write, as a yardstick of the emulator's speed).
func (h *hotplugRun) writeOps(t *testing.T, label string, ops []string) (want []string, wrote time.Duration) {
	t.Helper()
	start := time.Now()
	for _, op := range ops {
		cpu, err := strconv.Atoi(op[1:])
		if err != nil {
			t.Fatalf("bad op %q", op)
		}
		on := op[0] == '+'
		if err := setCPUOnline(cpu, on); err != nil {
			t.Fatalf("%s: cpu%d online=%v: %v", label, cpu, on, err)
		}
		if on {
			want = append(want, "online:"+strconv.Itoa(cpu))
			h.onlines++
		} else {
			want = append(want, "offline:"+strconv.Itoa(cpu))
			h.offlines++
		}
	}
	wrote = time.Since(start)
	if len(ops) == 1 {
		h.writes = append(h.writes, float64(wrote.Microseconds())/1000)
	}
	return want, wrote
}

// step makes the CPU changes of ops ("-2" offlines CPU2, "+2" onlines it), one write right after
// the other, waits for the settles of all of their uevents, and checks the kernel's files.
func (h *hotplugRun) step(t *testing.T, label string, ops ...string) []settleLog {
	t.Helper()
	from := h.d.settleCount()
	want, wrote := h.writeOps(t, label, ops)
	settles := h.d.waitSettles(t, from, want)
	var parts []string
	for _, s := range settles {
		switch {
		case s.Reason == "recheck":
			h.recheckMoved += s.Moved
			if len(ops) == 1 {
				h.recheckMovedSingle += s.Moved
			}
		case s.Reaction >= 0 && s.Reason != "resync" && s.Full:
			h.fullEvents++
		case s.Reaction >= 0 && s.Reason != "resync":
			h.quick++
		}
		if s.Reaction >= 0 && s.Reason != "resync" {
			h.reaction = append(h.reaction, s.Reaction)
			if len(ops) > 1 {
				h.burst = append(h.burst, s.Reaction)
			} else {
				h.single = append(h.single, s.Reaction)
			}
		}
		if s.Failed > 0 {
			t.Errorf("%s: settle %q reports %d failed moves", label, s.Line, s.Failed)
		}
		parts = append(parts, fmt.Sprintf("reason=%s events=%s moved=%d reaction_ms=%g", s.Reason, strings.Join(s.Events, ","), s.Moved, s.Reaction))
	}
	t.Logf("%s: %s (writes %.0f ms) -> %s", label, strings.Join(ops, " "), float64(wrote.Microseconds())/1000, strings.Join(parts, "; "))
	h.scanLog(t, label)
	h.check(t, label)
	return settles
}

// check asserts the daemon's invariants on the kernel's files: no movable IRQ effective on an
// offline CPU; an IRQ whose pin has an online CPU sits on the online part of its pin; the others
// (pinned IRQs whose CPUs are all offline are spread like them) differ by at most one per CPU.
func (h *hotplugRun) check(t *testing.T, label string) bool {
	t.Helper()
	online := onlineCPUs(t)
	var counted []int
	ok := true
	for _, irq := range h.movable {
		eff := effCPUs(t, irq)
		if len(eff) == 0 {
			t.Errorf("%s: IRQ %d has an empty effective_affinity_list", label, irq)
			ok = false
		}
		for _, c := range eff {
			if !contains(online, c) {
				t.Errorf("%s: IRQ %d effective %v holds offline CPU%d (online %v)", label, irq, eff, c, online)
				ok = false
			}
		}
		if p, pinned := h.pins[irq]; pinned && len(intersect(p, online)) > 0 {
			aff := affCPUs(t, irq)
			if want := intersect(p, online); !sameCPUs(aff, want) || !subset(eff, want) {
				t.Errorf("%s: IRQ %d pinned to %v (online %v) has smp_affinity_list %v, effective %v, want %v", label, irq, p, online, aff, eff, want)
				ok = false
			}
			continue
		}
		counted = append(counted, irq)
	}
	if d, txt := spread(perCPU(t, counted, online)); d > 1 {
		t.Errorf("%s: movable IRQs per online CPU differ by %d: %s (IRQs %v)", label, d, txt, counted)
		ok = false
	}
	return ok
}

// allOnline brings every offline CPU back (one write after the other) and waits for the settles.
func (h *hotplugRun) allOnline(t *testing.T, label string) {
	t.Helper()
	var ops []string
	for _, c := range h.cpus {
		if !cpuIsOnline(t, c) {
			ops = append(ops, "+"+strconv.Itoa(c))
		}
	}
	if len(ops) > 0 {
		h.step(t, label, ops...)
	}
}

// restart starts a daemon on h.state and waits for its start-up settles.
func (h *hotplugRun) restart(t *testing.T, args []string) {
	t.Helper()
	h.offlines, h.onlines, h.lineMark = 0, 0, 0
	h.d = startWatch(h.top, h.state, args...)
	start := time.Now()
	h.d.waitReady(t, 0)
	t.Logf("daemon ready (start-up settle, then the resync once its uevent socket is open) in %.2fs", time.Since(start).Seconds())
	h.scanLog(t, "start-up")
}

// reactionBound is the sanity bound on the median single-event reaction time:
// sanityReactionMS, or IRQSHIFT_VM_MAX_REACTION_MS when set.
func reactionBound(t *testing.T) (float64, string) {
	if s := os.Getenv("IRQSHIFT_VM_MAX_REACTION_MS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("IRQSHIFT_VM_MAX_REACTION_MS=%q", s)
		}
		return v, "IRQSHIFT_VM_MAX_REACTION_MS"
	}
	return sanityReactionMS, "sanity bound, more than 10x the 20 ms goal; the goal is measured by `make bench-vm`, not asserted"
}

func intersect(a, b []int) []int {
	var out []int
	for _, c := range a {
		if contains(b, c) {
			out = append(out, c)
		}
	}
	return out
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func summary(v []float64) (median, p90, maxv float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0, 0, 0
	}
	if len(s)%2 == 1 {
		median = s[len(s)/2]
	} else {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return median, percentile(s, 0.9), s[len(s)-1]
}

// vmLabel is "kernel=6.12.117+deb12-arm64 gic=3 cpus=4" for marker lines.
func vmLabel(t *testing.T) string {
	return fmt.Sprintf("kernel=%s gic=%s cpus=%d", readTrim(t, "/proc/sys/kernel/osrelease"), gicVersion(readInterrupts(t)),
		len(cpuList(t, "/sys/devices/system/cpu/possible")))
}

// churnSteps is the number of random hotplug steps: 60 on the reference configuration (the newest
// kernel with GICv3), 20 on the others to keep `make vm-test` short; IRQSHIFT_VM_CHURN overrides.
func churnSteps(t *testing.T) int {
	if s := os.Getenv("IRQSHIFT_VM_CHURN"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("IRQSHIFT_VM_CHURN=%q", s)
		}
		return n
	}
	if kernelAtLeast(t, 6, 12) && gicVersion(readInterrupts(t)) == "3" {
		return 60
	}
	return 20
}

// pinCandidate returns an IRQ to pin to cpu by hand: a wired GIC SPI (rtc, uart, the mmio rng)
// whose mask is not cpu already. (A mask equal to the one irqshift last wrote is, rightly, not
// taken for the admin's.)
func pinCandidate(t *testing.T, movable []int, cpu int) irqRow {
	t.Helper()
	rows := readInterrupts(t)
	var spis []irqRow
	for _, want := range []string{"rtc", "uart", "virtio"} {
		for _, r := range rows {
			if strings.HasPrefix(r.Actions, want) && isSPI(r) && contains(movable, r.IRQ) {
				spis = append(spis, r)
			}
		}
	}
	for _, r := range spis {
		if affinity(t, r.IRQ) != strconv.Itoa(cpu) {
			return r
		}
	}
	t.Fatalf("every movable GIC SPI %v already has the mask %d", spis, cpu)
	return irqRow{}
}

// TestDaemonHotplug runs `irqshift watch` through fixed hotplug steps, an admin pin, a SIGKILL
// and restart on the same state file, random churn, and checks its metrics.
func TestDaemonHotplug(t *testing.T) {
	needIrqshift(t, 4)
	ensureLoopback(t)
	restoreAtEnd(t)
	_, movable := listMovable(t)
	h := &hotplugRun{top: t, state: statePath(t), movable: movable, pins: map[int][]int{}, admin: map[int][]int{},
		cpus: cpuList(t, "/sys/devices/system/cpu/possible")}
	t.Cleanup(func() {
		// Every CPU back online after the daemons have stopped (cleanups run last-in first-out,
		// and each daemon's stop was registered after this).
		if err := setOffline(nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	label := vmLabel(t)
	t.Logf("%s; movable IRQs (minus the kernel-managed virtio-blk queues): %v", label, movable)

	watchArgs := []string{"--metrics-address", metricsAddr, "--check-interval", "0"}
	// IRQSHIFT_VM_WATCH_ARGS adds flags, e.g. --no-verify to see what the eBPF confirmation costs.
	watchArgs = append(watchArgs, strings.Fields(os.Getenv("IRQSHIFT_VM_WATCH_ARGS"))...)
	h.restart(t, watchArgs)
	if !h.check(t, "after start-up") {
		t.Fatal("invariants do not hold after the start-up settle")
	}

	t.Run("sequence", func(t *testing.T) {
		h.step(t, "offline 2", "-2")
		h.step(t, "offline 3", "-3")
		h.step(t, "online 2", "+2")
		h.step(t, "online 3", "+3")
		settles := h.step(t, "burst offline 1+2", "-1", "-2")
		t.Logf("burst offline: %d settle(s) for 2 back-to-back writes", len(settles))
		settles = h.step(t, "burst online 1+2", "+1", "+2")
		t.Logf("burst online: %d settle(s) for 2 back-to-back writes", len(settles))
	})

	var spi irqRow
	t.Run("pin", func(t *testing.T) {
		h.allOnline(t, "every CPU online")
		// The admin pins an SPI to CPU3 by hand; SIGHUP makes the daemon take a snapshot, which
		// learns the pin.
		spi = pinCandidate(t, movable, 3)
		t.Logf("pinning IRQ %d (%s, GIC SPI hwirq %d) by hand: smp_affinity_list %s -> 3", spi.IRQ, spi.Actions, spi.HWIRQ, affinity(t, spi.IRQ))
		if err := writeAffinity(spi.IRQ, "3"); err != nil {
			t.Fatalf("pin IRQ %d (%s) to CPU3: %v", spi.IRQ, spi.Actions, err)
		}
		h.admin[spi.IRQ] = []int{3}
		from := h.d.settleCount()
		if err := h.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if ok, _ := h.d.waitFor(settleTimeout, func() bool {
			for _, s := range h.d.settles[from:] {
				if s.Reason == "reload" {
					return true
				}
			}
			return false
		}); !ok {
			t.Fatalf("no settle after SIGHUP; log:\n%s", h.d.tail(40))
		}
		h.scanLog(t, "SIGHUP")
		if p, ok := h.pins[spi.IRQ]; !ok || !sameCPUs(p, []int{3}) {
			t.Fatalf("no `learned pin irq=%d cpus=3` after SIGHUP (pins %v); log:\n%s", spi.IRQ, h.pins, h.d.tail(20))
		}
		h.check(t, "after SIGHUP")

		h.step(t, "offline 3 (pinned CPU)", "-3")
		t.Logf("IRQ %d (%s) with CPU3 offline: smp_affinity_list %s, effective %s", spi.IRQ, spi.Actions, affinity(t, spi.IRQ), effective(t, spi.IRQ))
		if contains(effCPUs(t, spi.IRQ), 3) {
			t.Errorf("IRQ %d still effective on CPU3", spi.IRQ)
		}
		h.step(t, "online 3 (pinned CPU)", "+3")
		if a, e := affinity(t, spi.IRQ), effective(t, spi.IRQ); a != "3" || e != "3" {
			t.Errorf("IRQ %d: after CPU3 came back smp_affinity_list %q effective %q, want the pin 3 restored", spi.IRQ, a, e)
		} else {
			t.Logf("IRQ %d (%s): pin restored: smp_affinity_list 3, effective 3", spi.IRQ, spi.Actions)
		}
	})

	t.Run("kill -9 and restart", func(t *testing.T) {
		if spi.Actions == "" {
			t.Skip("no pin (the pin step failed)")
		}
		h.allOnline(t, "before the kill: every CPU online")
		m := scrapeMetrics(t)
		t.Logf("first daemon before the kill: irqshift_hotplug_events_total{action=\"offline\"}=%g (we caused %d), {action=\"online\"}=%g (we caused %d)",
			m[`irqshift_hotplug_events_total{action="offline"}`], h.offlines, m[`irqshift_hotplug_events_total{action="online"}`], h.onlines)
		if got := m[`irqshift_hotplug_events_total{action="offline"}`]; got != float64(h.offlines) {
			t.Errorf("first daemon: irqshift_hotplug_events_total{action=\"offline\"} = %g, we caused %d offline events", got, h.offlines)
		}
		if a, e := affinity(t, spi.IRQ), effective(t, spi.IRQ); a != "3" || e != "3" {
			t.Fatalf("IRQ %d not on its pin 3 before the kill (affinity %s, effective %s)", spi.IRQ, a, e)
		}

		old := h.d
		before := old.settleCount()
		if err := setCPUOnline(3, false); err != nil {
			t.Fatal(err)
		}
		_ = old.cmd.Process.Kill()
		<-old.done
		settled := false
		old.mu.Lock()
		for _, s := range old.settles[before:] {
			settled = settled || slices.Contains(s.Events, "offline:3")
		}
		old.mu.Unlock()
		t.Logf("SIGKILL right after `echo 0 > cpu3/online` returned; the killed daemon had logged the settle of that event: %v (%v)", settled, old.state)
		if old.state.ExitCode() != -1 {
			t.Errorf("daemon %v, want killed by SIGKILL", old.state)
		}
		t.Logf("IRQ %d with CPU3 offline and no daemon: smp_affinity_list %s, effective %s", spi.IRQ, affinity(t, spi.IRQ), effective(t, spi.IRQ))

		h.restart(t, watchArgs)
		h.check(t, "after restart with CPU3 offline")
		h.step(t, "online 3 after restart", "+3")
		if a, e := affinity(t, spi.IRQ), effective(t, spi.IRQ); a != "3" || e != "3" {
			t.Errorf("IRQ %d: the pin recorded before the kill was not restored: smp_affinity_list %q effective %q", spi.IRQ, a, e)
		} else {
			t.Logf("IRQ %d: the pin recorded before the kill is restored by the restarted daemon", spi.IRQ)
		}
	})

	t.Run("churn", func(t *testing.T) {
		seed := time.Now().UnixNano()
		if s := os.Getenv("IRQSHIFT_VM_SEED"); s != "" {
			seed, _ = strconv.ParseInt(s, 10, 64)
		}
		n := churnSteps(t)
		t.Logf("CHURN seed=%d steps=%d (IRQSHIFT_VM_SEED and IRQSHIFT_VM_CHURN reproduce or resize it)", seed, n)
		rng := rand.New(rand.NewSource(seed))
		hot := without(h.cpus, 0) // CPU0 stays online, so the last CPU is never offlined
		started := time.Now()
		doubles := 0
		for i := 1; i <= n; i++ {
			k := 1
			if rng.Intn(3) == 0 {
				k = 2
				doubles++
			}
			var ops []string
			for _, j := range rng.Perm(len(hot))[:k] {
				c := hot[j]
				if cpuIsOnline(t, c) {
					ops = append(ops, "-"+strconv.Itoa(c))
				} else {
					ops = append(ops, "+"+strconv.Itoa(c))
				}
			}
			h.step(t, fmt.Sprintf("churn %d/%d", i, n), ops...)
			if t.Failed() {
				t.Fatalf("churn stopped at step %d of seed %d", i, seed)
			}
		}
		t.Logf("churn: %d steps (%d with two CPUs) in %.1fs", n, doubles, time.Since(started).Seconds())
		h.allOnline(t, "after churn: every CPU online")
	})

	t.Run("metrics", func(t *testing.T) {
		m := scrapeMetrics(t)
		var keys []string
		for k := range m {
			if strings.HasPrefix(k, "irqshift_") && !strings.Contains(k, "_bucket") {
				keys = append(keys, fmt.Sprintf("%s %g", k, m[k]))
			}
		}
		sort.Strings(keys)
		t.Logf("metrics of the restarted daemon:\n  %s", strings.Join(keys, "\n  "))
		if got := m[`irqshift_hotplug_events_total{action="offline"}`]; got != float64(h.offlines) {
			t.Errorf("irqshift_hotplug_events_total{action=\"offline\"} = %g, we caused %d offline events since the restart", got, h.offlines)
		}
		if got := m[`irqshift_hotplug_events_total{action="online"}`]; got != float64(h.onlines) {
			t.Errorf("irqshift_hotplug_events_total{action=\"online\"} = %g, we caused %d online events since the restart", got, h.onlines)
		}
		if m["irqshift_reaction_seconds_count"] <= 0 {
			t.Errorf("irqshift_reaction_seconds_count = %g, want > 0", m["irqshift_reaction_seconds_count"])
		}
		online := onlineCPUs(t)
		kernel := perCPU(t, movable, online)
		for _, c := range online {
			key := fmt.Sprintf(`irqshift_movable_irqs{cpu="%d"}`, c)
			v, ok := m[key]
			if !ok {
				t.Errorf("no %s", key)
				continue
			}
			if int(v) != kernel[c] {
				t.Errorf("%s = %g, the kernel's effective_affinity_list files put %d movable IRQs there", key, v, kernel[c])
			}
		}
	})

	if len(h.bogus) > 0 {
		t.Logf("KNOWN IRQSHIFT BUG: %d pin(s) learned from masks written during a concurrent hotplug: %s", len(h.bogus), strings.Join(h.bogus, "; "))
	}
	if h.misroute > 0 {
		t.Logf("the daemon's eBPF confirmation warned %d time(s) that a moved IRQ fired outside its new affinity", h.misroute)
	}
	med, p90, mx := summary(h.reaction)
	t.Logf("REACTION-MS %s median=%.2f p90=%.2f max=%.2f n=%d (every settle caused by a CPU event)", label, med, p90, mx, len(h.reaction))
	sm, sp, sx := summary(h.single)
	t.Logf("REACTION-MS-SINGLE %s median=%.2f p90=%.2f max=%.2f n=%d (one write, one uevent)", label, sm, sp, sx, len(h.single))
	bm, bp, bx := summary(h.burst)
	t.Logf("REACTION-MS-BURST %s median=%.2f p90=%.2f max=%.2f n=%d (two back-to-back writes)", label, bm, bp, bx, len(h.burst))
	if len(h.reaction) == 0 || len(h.single) == 0 {
		t.Fatal("no reaction times logged")
	}
	wm, wp, wx := summary(h.writes)
	t.Logf("HOTPLUG-WRITE-MS %s median=%.2f p90=%.2f max=%.2f n=%d (one echo 0|1 > cpuN/online: how fast the emulator runs)", label, wm, wp, wx, len(h.writes))
	t.Logf("QUICK-SETTLES %s quick=%d full=%d recheck-moved=%d recheck-moved-single=%d (settles of CPU events that read only what changed, that read everything; IRQs the rechecks still moved, in all and after one write)",
		label, h.quick, h.fullEvents, h.recheckMoved, h.recheckMovedSingle)
	// The quick path falls back to a full snapshot only when the machine changed again while it
	// read (five times in a row) or another irqshift changed the state file: on this VM, rarely.
	if h.quick == 0 || h.quick < 2*h.fullEvents {
		t.Errorf("%d of %d settles of CPU events took the quick path: it should be nearly all", h.quick, h.quick+h.fullEvents)
	}
	bound, why := reactionBound(t)
	t.Logf("REACTION-BOUND %.1f ms: %s", bound, why)
	if sm > bound {
		t.Errorf("median reaction to a single CPU event %.2f ms, want < %.1f ms (%s): a regression, far beyond what a slow emulator explains", sm, bound, why)
	}
}

// TestDaemonRefusesBesideIrqbalance: `irqshift watch` exits 1 naming irqbalance and --coexist
// while a process named irqbalance runs, and starts with --coexist.
func TestDaemonRefusesBesideIrqbalance(t *testing.T) {
	needIrqshift(t, 2)
	restoreAtEnd(t)
	// A shell that renames itself (its comm) to irqbalance and waits on its stdin.
	fake := exec.Command("sh", "-c", `printf irqbalance > /proc/$$/comm && read x`)
	stdin, err := fake.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = fake.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = fake.Process.Kill()
			<-done
		}
	})
	comm := fmt.Sprintf("/proc/%d/comm", fake.Process.Pid)
	for i := 0; ; i++ {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == "irqbalance" {
			break
		}
		if i == 100 {
			t.Fatalf("%s never became irqbalance", comm)
		}
		time.Sleep(20 * time.Millisecond)
	}
	state := statePath(t)

	d := startWatch(t, state, "--check-interval", "0")
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("irqshift watch still runs 20 s after start beside irqbalance (pid %d); log:\n%s", fake.Process.Pid, d.tail(20))
	}
	code := d.state.ExitCode()
	msg := d.tail(20)
	t.Logf("beside irqbalance (pid %d): exit %d, stderr: %s", fake.Process.Pid, code, msg)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(msg, "irqbalance") || !strings.Contains(msg, "--coexist") || !strings.Contains(msg, strconv.Itoa(fake.Process.Pid)) {
		t.Errorf("message does not name irqbalance, its PID %d and --coexist: %q", fake.Process.Pid, msg)
	}
	if d.settleCount() != 0 {
		t.Errorf("it settled before refusing: %s", msg)
	}

	d = startWatch(t, state, "--coexist", "--check-interval", "0")
	d.waitReady(t, 0)
	t.Log("with --coexist it starts beside irqbalance")
	if code := d.stop(t); code != 0 {
		t.Errorf("irqshift watch --coexist: exit %d after SIGTERM, want 0; log:\n%s", code, d.tail(20))
	}
}
