//go:build vm

package vmtest

// Device rules (`irqshift --rules DIR`) and a foreign balancer beside the daemon, on the live
// kernel:
//
//   - TestRulesDaemon: a rule puts the virtio-rng-pci device's IRQs on one CPU, exclusive; the
//     daemon applies it at start, spills the IRQs while that CPU is offline and brings them back,
//     places the IRQs of the device again after it is unbound from virtio-pci and bound again
//     (new IRQs, with the kernel's default masks), applies a pin kept with `pin --persist` in its
//     first settle after a simulated reboot (SIGKILL, no state file, every mask reset), and keeps
//     its last good rules while a rules file has a mistake.
//   - TestForeignBalancerCRIOOneshot: a pod start and stop as CRI-O does them, the ban file
//     rewritten and then Debian's `irqbalance --oneshot` run (fetch.sh puts it in the initramfs):
//     the masks irqbalance writes are not learned as pins, and the daemon's placement is back
//     once it has exited.
//
// Both run in one boot only, the newest kernel's GICv3 4-vCPU boot (suite.sh passes
// `run.sh -a IRQSHIFT_VM_RULES=1` there): elsewhere they skip. Every wait polls for the expected
// state with a hang guard and logs how long it took; no assertion is about time.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rulesBootEnv is set on the kernel command line of the one boot that runs these tests.
const rulesBootEnv = "IRQSHIFT_VM_RULES"

// rulesGuard bounds the polls of these tests, foreignGuard those for the daemon's placement after
// irqbalance exited (which takes a second or two): hang guards for a TCG guest on a shared 2-core
// host, never speed goals (each poll logs how long it took).
const (
	rulesGuard   = 60 * time.Second
	foreignGuard = 30 * time.Second
)

// virtio PCI IDs (vendor 0x1af4): transitional and modern device IDs.
var (
	virtioRNGIDs = []string{"0x1005", "0x1044"}
	virtioNetIDs = []string{"0x1000", "0x1041"}
)

// needRulesBoot skips the test outside the boot that runs it (run.sh -a IRQSHIFT_VM_RULES=1).
func needRulesBoot(t *testing.T) {
	t.Helper()
	if os.Getenv(rulesBootEnv) == "" {
		t.Skipf("runs in one boot only: the one with %s=1 on its kernel command line (suite.sh: the newest kernel's GICv3 4-vCPU "+
			"boot; by hand: run.sh -a %s=1 -r '^TestRules|^TestForeign')", rulesBootEnv, rulesBootEnv)
	}
}

// pciDevices returns the PCI addresses of the devices of vendor whose device ID is one of ids.
func pciDevices(vendor string, ids []string) []string {
	dirs, _ := filepath.Glob("/sys/bus/pci/devices/*")
	var out []string
	for _, d := range dirs {
		v, err1 := os.ReadFile(filepath.Join(d, "vendor"))
		id, err2 := os.ReadFile(filepath.Join(d, "device"))
		if err1 == nil && err2 == nil && strings.TrimSpace(string(v)) == vendor && slices.Contains(ids, strings.TrimSpace(string(id))) {
			out = append(out, filepath.Base(d))
		}
	}
	sort.Strings(out)
	return out
}

// onePCIDevice returns the first virtio PCI device with one of ids, failing the test without one.
func onePCIDevice(t *testing.T, what string, ids []string) string {
	t.Helper()
	devs := pciDevices("0x1af4", ids)
	if len(devs) == 0 {
		t.Fatalf("no %s in the VM (no /sys/bus/pci/devices/*/vendor 0x1af4 with device %v)", what, ids)
	}
	return devs[0]
}

// msiIRQs returns the IRQs of a PCI device, from /sys/bus/pci/devices/BDF/msi_irqs (none while it
// has no driver).
func msiIRQs(bdf string) []int {
	entries, _ := os.ReadDir(filepath.Join("/sys/bus/pci/devices", bdf, "msi_irqs"))
	var irqs []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			irqs = append(irqs, n)
		}
	}
	sort.Ints(irqs)
	return irqs
}

// pciDriver is the driver bound to a PCI device, "" when none.
func pciDriver(bdf string) string {
	l, err := os.Readlink(filepath.Join("/sys/bus/pci/devices", bdf, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// virtioFunctionDriver is the driver of the virtio device under a virtio PCI device (its virtioN
// child: virtio_rng, virtio_net), "" when none: the driver irqshift reports and rules match for
// a virtio device, rather than the transport's, virtio-pci.
func virtioFunctionDriver(bdf string) string {
	links, _ := filepath.Glob(filepath.Join("/sys/bus/pci/devices", bdf, "virtio*", "driver"))
	sort.Strings(links)
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil {
			return filepath.Base(target)
		}
	}
	return ""
}

// writeSys writes value to an existing kernel file.
func writeSys(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// irqCPUs reads one cpulist file of an IRQ without failing the test (the IRQ may be going away).
func irqCPUs(irq int, name string) ([]int, string, error) {
	b, err := os.ReadFile(irqFile(irq, name))
	if err != nil {
		return nil, "", err
	}
	s := strings.TrimSpace(string(b))
	c, err := parseCPUList(s)
	return c, s, err
}

// onCPU reports whether every IRQ of irqs has smp_affinity_list cpu and is effective there, with
// a description of where they are.
func onCPU(irqs []int, cpu int) (bool, string) {
	ok := len(irqs) > 0
	var parts []string
	for _, irq := range irqs {
		_, aff, err1 := irqCPUs(irq, "smp_affinity_list")
		eff, effText, err2 := irqCPUs(irq, "effective_affinity_list")
		if err1 != nil || err2 != nil {
			parts = append(parts, fmt.Sprintf("IRQ %d unreadable", irq))
			ok = false
			continue
		}
		parts = append(parts, fmt.Sprintf("IRQ %d mask %s effective %s", irq, aff, orDash(effText)))
		if aff != strconv.Itoa(cpu) || !sameCPUs(eff, []int{cpu}) {
			ok = false
		}
	}
	return ok, strings.Join(parts, ", ")
}

// pollFor polls cond every 100 ms until it holds, failing the test after guard (a hang guard) or
// when the daemon d (when not nil) exits. It returns how long it took.
func pollFor(t *testing.T, d *daemonProc, what string, guard time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, text := cond()
		if ok {
			return time.Since(start)
		}
		last = text
		if time.Since(start) > guard {
			tail := ""
			if d != nil {
				tail = "; daemon log:\n" + d.tail(60)
			}
			t.Fatalf("%s: not reached within the hang guard of %s; last seen: %s%s", what, guard, last, tail)
		}
		if d != nil {
			select {
			case <-d.done:
				t.Fatalf("%s: the daemon exited; log:\n%s", what, d.tail(60))
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resetMasks writes every possible CPU to each movable IRQ's smp_affinity_list, as after a
// reboot, so that no mask looks set by hand to a daemon with no state file. The kernel-managed
// queues refuse (and are not in movable anyway).
func resetMasks(t *testing.T, movable []int) {
	t.Helper()
	all := readTrim(t, "/sys/devices/system/cpu/possible")
	for _, irq := range movable {
		if err := writeAffinity(irq, all); err != nil && !refused(err) {
			t.Fatalf("reset IRQ %d to %s: %v", irq, all, err)
		}
	}
}

// The parts of the documented JSON these tests read (README, "JSON").

type rulesListDoc struct {
	IRQs []struct {
		IRQ     int      `json:"irq"`
		Actions []string `json:"actions"`
		Movable bool     `json:"movable"`
		Pin     []int    `json:"pin"`
		Device  string   `json:"device"`
		Driver  string   `json:"driver"`
		Rule    string   `json:"rule"`
	} `json:"irqs"`
}

type ruleDoc struct {
	Name      string `json:"name"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Device    string `json:"device"`
	Driver    string `json:"driver"`
	Actions   string `json:"actions"`
	Chip      string `json:"chip"`
	CPUs      []int  `json:"cpus"`
	Exclusive bool   `json:"exclusive"`
	Ignore    bool   `json:"ignore"`
	Node      string `json:"node"`
	IRQs      []int  `json:"irqs"`
	OnCPUs    []int  `json:"on_cpus"`
}

type rulesCmdDoc struct {
	Dir      string    `json:"dir"`
	Rules    []ruleDoc `json:"rules"`
	Problems []struct {
		Rule string `json:"rule"`
		File string `json:"file"`
		Line int    `json:"line"`
		Text string `json:"text"`
	} `json:"problems"`
}

func (d rulesCmdDoc) rule(name string) (ruleDoc, bool) {
	for _, r := range d.Rules {
		if r.Name == name {
			return r, true
		}
	}
	return ruleDoc{}, false
}

// rulesRun is the state of TestRulesDaemon: the rules directory, the state file, the daemon (which
// lives as long as the whole test and is replaced by the simulated reboot), the rng's PCI device
// and the CPU its rule gives it.
type rulesRun struct {
	top   *testing.T
	dir   string
	state string
	rng   string
	cpu   int
	d     *daemonProc
}

// cli runs irqshift with the test's state file and rules directory.
func (r *rulesRun) cli(t *testing.T, args ...string) cliRun {
	t.Helper()
	return irqshift(t, append([]string{"--state", r.state, "--rules", r.dir}, args...)...)
}

func (r *rulesRun) rules(t *testing.T) rulesCmdDoc {
	t.Helper()
	res := r.cli(t, "rules", "--json")
	mustExit(t, res, 0)
	var doc rulesCmdDoc
	decodeJSON(t, res, &doc)
	return doc
}

func (r *rulesRun) list(t *testing.T) rulesListDoc {
	t.Helper()
	res := r.cli(t, "list", "--json")
	mustExit(t, res, 0)
	var doc rulesListDoc
	decodeJSON(t, res, &doc)
	return doc
}

// rngIRQs returns the rng device's IRQs now, failing the test without any.
func (r *rulesRun) rngIRQs(t *testing.T) []int {
	t.Helper()
	irqs := msiIRQs(r.rng)
	if len(irqs) == 0 {
		t.Fatalf("%s (virtio-rng, driver %q) has no /sys/bus/pci/devices/%s/msi_irqs", r.rng, pciDriver(r.rng), r.rng)
	}
	return irqs
}

// start starts `irqshift watch` on the test's state file and rules directory and waits until it
// is ready. The daemon lives until the whole test ends.
func (r *rulesRun) start(t *testing.T) {
	t.Helper()
	args := []string{"--state", r.state, "--rules", r.dir, "--log-level", "debug", "watch", "--check-interval", "2s",
		"--no-verify", "--metrics-address", metricsAddr}
	r.d = startDaemon(r.top, args, nil)
	start := time.Now()
	r.d.waitReady(t, 0)
	t.Logf("daemon ready in %.1fs", time.Since(start).Seconds())
}

// needDaemon skips a step when the daemon is not running: an earlier step failed with it down.
func (r *rulesRun) needDaemon(t *testing.T) {
	t.Helper()
	select {
	case <-r.d.done:
		t.Skipf("the daemon is not running (an earlier step failed); its log:\n%s", r.d.tail(20))
	default:
	}
}

// checkRuleDoc asserts what `irqshift rules --json` says of the rng rule: its keys and the IRQs it
// places now (irqs), delivered on CPU r.cpu when onCPU.
func (r *rulesRun) checkRuleDoc(t *testing.T, label string, irqs []int, onCPU bool) {
	t.Helper()
	doc := r.rules(t)
	rule, ok := doc.rule("rng")
	if !ok {
		t.Fatalf("%s: rules --json has no rule rng: %+v", label, doc)
	}
	if len(doc.Problems) != 0 {
		t.Errorf("%s: rules --json reports problems: %+v", label, doc.Problems)
	}
	if rule.File != filepath.Join(r.dir, "10-rng.toml") || rule.Line != 1 || rule.Device != r.rng || !sameCPUs(rule.CPUs, []int{r.cpu}) || !rule.Exclusive || rule.Ignore {
		t.Errorf("%s: rules --json rule rng: %+v, want file 10-rng.toml line 1, device %s, cpus [%d], exclusive", label, rule, r.rng, r.cpu)
	}
	if !slices.Equal(rule.IRQs, irqs) {
		t.Errorf("%s: rules --json: rule rng places IRQs %v, the device has %v", label, rule.IRQs, irqs)
	}
	if onCPU && !sameCPUs(rule.OnCPUs, []int{r.cpu}) {
		t.Errorf("%s: rules --json: rule rng's IRQs on CPUs %v, want [%d]", label, rule.OnCPUs, r.cpu)
	}
}

// checkExclusive asserts, from the kernel's files, that no movable IRQ other than the rule's is
// effective on the rule's CPU and that the others (a pinned one included: it is load where it is)
// differ by at most one over the other online CPUs.
func (r *rulesRun) checkExclusive(t *testing.T, label string, ruled []int) {
	t.Helper()
	_, movable := listMovable(t)
	var others []int
	for _, irq := range movable {
		if !contains(ruled, irq) {
			others = append(others, irq)
		}
	}
	for _, irq := range others {
		if contains(effCPUs(t, irq), r.cpu) {
			t.Errorf("%s: IRQ %d (not the rule's) is effective on CPU%d, which the exclusive rule keeps for IRQs %v", label, irq, r.cpu, ruled)
		}
	}
	d, text := spread(perCPU(t, others, without(onlineCPUs(t), r.cpu)))
	if d > 1 {
		t.Errorf("%s: the other movable IRQs differ by %d per CPU: %s (IRQs %v)", label, d, text, others)
	}
	t.Logf("%s: the rule's IRQs %v on CPU%d; the others: %s", label, ruled, r.cpu, text)
}

// settlesSince returns the daemon's settles from index from on.
func (d *daemonProc) settlesSince(from int) []settleLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]settleLog(nil), d.settles[min(from, len(d.settles)):]...)
}

// waitLine waits for a log line from index from on that contains text, and returns it.
func (d *daemonProc) waitLine(t *testing.T, from int, text string) string {
	t.Helper()
	var got string
	ok, exited := d.waitFor(settleTimeout, func() bool {
		for _, l := range d.lines[min(from, len(d.lines)):] {
			if strings.Contains(l, text) {
				got = l
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no daemon log line with %q (exited %v); log:\n%s", text, exited, d.tail(60))
	}
	return got
}

func settleLines(s []settleLog) string {
	var lines []string
	for _, x := range s {
		lines = append(lines, "  "+x.Line)
	}
	return strings.Join(lines, "\n")
}

// TestRulesDaemon: a rules directory with one rule, the virtio-rng-pci device's IRQs on CPU2,
// exclusive; the daemon started with it applies it at start, across an offline and online of
// CPU2, after the device is unbound and bound again, after a simulated reboot (with a pin kept by
// `pin --persist`), and keeps it while another rules file has a mistake.
func TestRulesDaemon(t *testing.T) {
	needRulesBoot(t)
	needIrqshift(t, 4)
	ensureLoopback(t)
	restoreAtEnd(t)
	r := &rulesRun{top: t, dir: t.TempDir(), state: statePath(t), rng: onePCIDevice(t, "virtio-rng-pci", virtioRNGIDs), cpu: 2}
	ensureOnlineAtEnd(t, r.cpu)
	t.Cleanup(func() {
		// The rng bound again should the unbind step have failed half-way.
		if pciDriver(r.rng) == "" {
			if err := writeSys("/sys/bus/pci/drivers/virtio-pci/bind", r.rng); err != nil {
				t.Errorf("cleanup: bind %s to virtio-pci again: %v", r.rng, err)
			}
		}
	})
	if drv := pciDriver(r.rng); drv != "virtio-pci" {
		t.Fatalf("%s (virtio-rng-pci): driver %q, want virtio-pci", r.rng, drv)
	}
	rule := fmt.Sprintf("[[rule]]\nname = \"rng\"\ndevice = %q\ncpus = \"%d\"\nexclusive = true\n", r.rng, r.cpu)
	writeString(t, filepath.Join(r.dir, "10-rng.toml"), rule)
	t.Logf("rules directory %s, 10-rng.toml:\n%s", r.dir, rule)

	// What the CLI says before any daemon: the rule matches the device's IRQs. The driver of a
	// virtio device's IRQs is its virtio driver (virtio_rng), not the transport's (virtio-pci).
	irqs := r.rngIRQs(t)
	r.checkRuleDoc(t, "before the daemon", irqs, false)
	fn := virtioFunctionDriver(r.rng)
	if fn != "virtio_rng" {
		t.Fatalf("%s: the virtio device under it has driver %q, want virtio_rng", r.rng, fn)
	}
	for _, q := range r.list(t).IRQs {
		switch {
		case contains(irqs, q.IRQ):
			if q.Device != r.rng || q.Driver != fn || q.Rule != "rng" {
				t.Errorf("list --json: IRQ %d %v: device %q driver %q rule %q, want %s, %s, rng", q.IRQ, q.Actions, q.Device, q.Driver, q.Rule, r.rng, fn)
			} else {
				t.Logf("list --json: IRQ %d %v: device %s, driver %s, rule %s", q.IRQ, q.Actions, q.Device, q.Driver, q.Rule)
			}
		case q.Rule != "":
			t.Errorf("list --json: IRQ %d %v (device %q) has rule %q, which does not match it", q.IRQ, q.Actions, q.Device, q.Rule)
		}
	}
	// As after a boot: no mask that a daemon without state would take for the admin's.
	_, movable := listMovable(t)
	resetMasks(t, movable)
	r.start(t)

	t.Run("at start and across hotplug", func(t *testing.T) {
		if ok, text := onCPU(irqs, r.cpu); !ok {
			t.Fatalf("after the start-up settle the rule's IRQs are not on CPU%d: %s", r.cpu, text)
		}
		r.checkExclusive(t, "after start", irqs)
		r.checkRuleDoc(t, "after start", irqs, true)

		r.d.hotplug(t, r.cpu, false)
		online := onlineCPUs(t)
		var where []string
		for _, irq := range irqs {
			eff := effCPUs(t, irq)
			where = append(where, fmt.Sprintf("IRQ %d mask %s effective %s", irq, affinity(t, irq), orDash(formatCPUList(eff))))
			if len(eff) == 0 || !subset(eff, online) {
				t.Errorf("CPU%d offline: the rule's IRQ %d effective %v, want an online CPU of %v", r.cpu, irq, eff, online)
			}
		}
		for _, bad := range onOffline(t, movable) {
			t.Errorf("CPU%d offline: a movable IRQ on an offline CPU: %s", r.cpu, bad)
		}
		t.Logf("CPU%d offline: the rule's IRQs spilled: %s", r.cpu, strings.Join(where, ", "))

		r.d.hotplug(t, r.cpu, true)
		took := pollFor(t, r.d, fmt.Sprintf("the rule's IRQs back on CPU%d", r.cpu), rulesGuard, func() (bool, string) { return onCPU(irqs, r.cpu) })
		t.Logf("CPU%d online: the rule's IRQs back on it %.2fs after the online settle", r.cpu, took.Seconds())
		r.checkExclusive(t, "after online", irqs)
	})

	t.Run("unbind and bind", func(t *testing.T) {
		r.needDaemon(t)
		before := r.rngIRQs(t)
		if err := writeSys("/sys/bus/pci/drivers/virtio-pci/unbind", r.rng); err != nil {
			t.Fatalf("unbind %s from virtio-pci: %v", r.rng, err)
		}
		if drv := pciDriver(r.rng); drv != "" {
			t.Fatalf("after the unbind %s still has driver %q", r.rng, drv)
		}
		freed := 0
		for _, irq := range before {
			if _, err := os.Stat(irqFile(irq, "")); err != nil {
				freed++
			}
		}
		t.Logf("unbound %s from virtio-pci: %d of its IRQs %v freed, msi_irqs now %v", r.rng, freed, before, msiIRQs(r.rng))
		mark := r.d.settleCount()
		if err := writeSys("/sys/bus/pci/drivers/virtio-pci/bind", r.rng); err != nil {
			t.Fatalf("bind %s to virtio-pci: %v", r.rng, err)
		}
		bound := time.Now()
		if drv := pciDriver(r.rng); drv != "virtio-pci" {
			t.Fatalf("after the bind %s has driver %q, want virtio-pci", r.rng, drv)
		}
		var after []int
		var rows map[int]irqRow
		took := pollFor(t, r.d, fmt.Sprintf("the rebound device's IRQs on CPU%d", r.cpu), rulesGuard, func() (bool, string) {
			after = msiIRQs(r.rng)
			if len(after) == 0 {
				return false, "no msi_irqs yet"
			}
			rows = map[int]irqRow{}
			for _, row := range readInterrupts(t) {
				rows[row.IRQ] = row
			}
			for _, irq := range after {
				if _, ok := rows[irq]; !ok {
					return false, fmt.Sprintf("IRQ %d not in /proc/interrupts yet", irq)
				}
			}
			return onCPU(after, r.cpu)
		})
		sinceBind := time.Since(bound)
		var names []string
		for _, irq := range after {
			names = append(names, fmt.Sprintf("%d %s", irq, rows[irq].Actions))
		}
		// The settle that placed them logs its line once it is done: wait for it.
		r.d.waitReason(t, mark, "irqs")
		settles := r.d.settlesSince(mark)
		t.Logf("RULES-REBIND-MS %.0f: bound again, IRQs %s (before: %v) on CPU%d %.2fs after the bind returned (polled %.2fs); the daemon's settles since:\n%s",
			float64(sinceBind.Microseconds())/1000, strings.Join(names, ", "), before, r.cpu, sinceBind.Seconds(), took.Seconds(), settleLines(settles))
		r.checkExclusive(t, "after the bind", after)
		r.checkRuleDoc(t, "after the bind", after, true)
		irqs = after
	})

	t.Run("pin --persist and a simulated reboot", func(t *testing.T) {
		r.needDaemon(t)
		net := onePCIDevice(t, "virtio-net-pci", virtioNetIDs)
		rows := map[int]irqRow{}
		for _, row := range readInterrupts(t) {
			rows[row.IRQ] = row
		}
		irq := -1
		for _, n := range msiIRQs(net) {
			if strings.HasSuffix(rows[n].Actions, "-input.0") {
				irq = n
			}
		}
		if irq < 0 {
			t.Fatalf("virtio-net %s: no IRQ named *-input.0 among %v", net, msiIRQs(net))
		}
		const pinCPU = 1
		from := r.d.settleCount()
		res := r.cli(t, "pin", "--persist", strconv.Itoa(irq), strconv.Itoa(pinCPU))
		mustExit(t, res, 0)
		t.Logf("pin --persist: %s", strings.TrimSpace(res.Stdout))
		pins := filepath.Join(r.dir, "00-pins.toml")
		b, err := os.ReadFile(pins)
		if err != nil {
			t.Fatalf("pin --persist wrote no %s: %v", pins, err)
		}
		t.Logf("%s:\n%s", pins, b)
		doc := r.rules(t)
		var pinRule ruleDoc
		for _, x := range doc.Rules {
			if x.File == pins {
				pinRule = x
			}
		}
		if pinRule.Name == "" || !slices.Equal(pinRule.IRQs, []int{irq}) || !sameCPUs(pinRule.CPUs, []int{pinCPU}) || pinRule.Device != net {
			t.Fatalf("rules --json: the rule of %s is %+v, want one placing IRQ %d (device %s) on CPU%d", pins, pinRule, irq, net, pinCPU)
		}
		if !strings.Contains(res.Stdout, pinRule.Name) {
			t.Errorf("pin --persist says %q, which does not name the rule %s", res.Stdout, pinRule.Name)
		}
		if a, e := affinity(t, irq), effective(t, irq); a != strconv.Itoa(pinCPU) || e != strconv.Itoa(pinCPU) {
			t.Errorf("after pin --persist IRQ %d has mask %s effective %s, want %d", irq, a, e, pinCPU)
		}
		s := r.d.waitReason(t, from, "rules")
		t.Logf("the daemon followed the rules directory: %s", s.Line)

		// The reboot: the daemon dies, the state file (in /run on a real machine) is gone, every
		// mask is the kernel's default again.
		_ = r.d.cmd.Process.Kill()
		<-r.d.done
		t.Logf("daemon killed: %v", r.d.state)
		if err := os.Remove(r.state); err != nil {
			t.Fatalf("remove the state file: %v", err)
		}
		_, movable := listMovable(t)
		resetMasks(t, movable)
		all := readTrim(t, "/sys/devices/system/cpu/possible")
		if a := affinity(t, irq); a != all {
			t.Fatalf("IRQ %d mask %s after the reset, want %s", irq, a, all)
		}
		_, rngNow := onCPU(irqs, r.cpu)
		t.Logf("masks reset to %s: IRQ %d effective %s; rng: %s", all, irq, effective(t, irq), rngNow)

		r.start(t)
		t.Logf("the new daemon's start-up settles:\n%s", settleLines(r.d.settlesSince(0)))
		if a, e := affinity(t, irq), effective(t, irq); a != strconv.Itoa(pinCPU) || e != strconv.Itoa(pinCPU) {
			t.Errorf("after the simulated reboot IRQ %d has mask %s effective %s: the first settle did not apply the persisted pin %s (CPU%d)", irq, a, e, pinRule.Name, pinCPU)
		}
		if ok, text := onCPU(irqs, r.cpu); !ok {
			t.Errorf("after the simulated reboot the rng rule is not applied by the first settle: %s", text)
		}
		for _, l := range r.d.linesSince(0) {
			if parseLogfmt(l)["msg"] == "learned pin" {
				t.Errorf("the new daemon learned a pin from a reset mask: %s", l)
			}
		}
		for _, q := range r.list(t).IRQs {
			if q.IRQ == irq && q.Rule != pinRule.Name {
				t.Errorf("list --json: IRQ %d has rule %q, want %s", irq, q.Rule, pinRule.Name)
			}
		}
		r.checkExclusive(t, "after the simulated reboot", irqs)

		from = r.d.settleCount()
		res = r.cli(t, "unpin", "--persist", strconv.Itoa(irq))
		mustExit(t, res, 0)
		t.Logf("unpin --persist: %s", strings.TrimSpace(res.Stdout))
		if b, err := os.ReadFile(pins); err == nil && strings.Contains(string(b), pinRule.Name) {
			t.Errorf("after unpin --persist %s still holds %s:\n%s", pins, pinRule.Name, b)
		} else {
			t.Logf("after unpin --persist: %s %s", pins, map[bool]string{true: "still exists, without the pin", false: "removed"}[err == nil])
		}
		if _, ok := r.rules(t).rule(pinRule.Name); ok {
			t.Errorf("rules --json still lists %s after unpin --persist", pinRule.Name)
		}
		for _, q := range r.list(t).IRQs {
			if q.IRQ == irq && (q.Rule != "" || q.Pin != nil) {
				t.Errorf("after unpin --persist list --json: IRQ %d rule %q pin %v, want neither", irq, q.Rule, q.Pin)
			}
		}
		s = r.d.waitReason(t, from, "rules")
		t.Logf("the daemon followed the unpin: %s", s.Line)
	})

	t.Run("a bad rules file", func(t *testing.T) {
		r.needDaemon(t)
		bad := filepath.Join(r.dir, "50-bad.toml")
		lineFrom := r.d.lineCount()
		writeString(t, bad, "[[rule]]\nname = \"broken\"\ndriver = \"virtio-pci\"\ncpus = \"1-x\"\n")
		where := bad + ":4"
		for _, args := range [][]string{{"rules"}, {"list", "--json"}} {
			res := r.cli(t, args...)
			if res.Code != 1 || !strings.Contains(res.Stderr, where) {
				t.Errorf("with a mistake on line 4 of %s: irqshift %s exits %d, stderr %q; want exit 1 naming %s", bad, strings.Join(args, " "), res.Code, res.Stderr, where)
			}
		}
		line := r.d.waitLine(t, lineFrom, "keeping the last good rules")
		t.Logf("the daemon: %s", line)
		if !strings.Contains(line, "50-bad.toml") {
			t.Errorf("the daemon's log line does not name 50-bad.toml: %s", line)
		}
		if v := scrapeMetrics(t)["irqshift_rules_load_failures_total"]; v < 1 {
			t.Errorf("irqshift_rules_load_failures_total = %g, want >= 1", v)
		}
		// The good rule still holds: its IRQs leave the CPU and come back to it.
		r.d.hotplug(t, r.cpu, false)
		for _, bad := range onOffline(t, irqs) {
			t.Errorf("CPU%d offline: the rule's IRQ on an offline CPU: %s", r.cpu, bad)
		}
		r.d.hotplug(t, r.cpu, true)
		took := pollFor(t, r.d, fmt.Sprintf("the rule's IRQs back on CPU%d with a bad file beside", r.cpu), rulesGuard, func() (bool, string) { return onCPU(irqs, r.cpu) })
		t.Logf("with 50-bad.toml beside it the rule still holds: its IRQs back on CPU%d %.2fs after the online settle", r.cpu, took.Seconds())
		r.checkExclusive(t, "with a bad file beside", irqs)

		if err := os.Remove(bad); err != nil {
			t.Fatal(err)
		}
		r.checkRuleDoc(t, "after removing the bad file", irqs, true)
	})
}

// irqbalancePIDs returns the PIDs of the processes named irqbalance that have not exited (a
// zombie not yet reaped has exited).
func irqbalancePIDs() []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "irqbalance" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// irqbalanceBin is the wrapper fetch.sh's irqbalance gets in the initramfs (mkinitramfs.sh), and
// irqbalanceReal the Debian binary it runs with the libraries in /opt/irqbalance/lib.
const (
	irqbalanceBin  = "/usr/sbin/irqbalance"
	irqbalanceReal = "/opt/irqbalance/sbin/irqbalance"
)

// affinityTrace records every irq_set_affinity call (a write to /proc/irq/N/smp_affinity*, by
// anyone) with a kprobe event in a trace instance of its own: the task, the IRQ and the mask.
type affinityTrace struct {
	inst string
}

const (
	tracefs        = "/sys/kernel/tracing"
	affinityKprobe = "irqshift_vm/irq_set_affinity"
)

// traceLine is one line of the instance's trace: "irqbalance-228 [000] d.... 20.52: irq_set_affinity:
// (irq_set_affinity+0x0/0x90) irq=35 mask=0x1".
var traceLine = regexp.MustCompile(`^\s*(.+)-(\d+)\s+\[\d+\].*\birq=(\d+) mask=0x([0-9a-f]+)`)

func startAffinityTrace(t *testing.T) *affinityTrace {
	t.Helper()
	events := filepath.Join(tracefs, "kprobe_events")
	if _, err := os.Stat(events); err != nil {
		t.Fatalf("no %s (kprobe events): the test tells irqbalance's writes from the daemon's with a kprobe on irq_set_affinity: %v", events, err)
	}
	add := func(def string) error {
		f, err := os.OpenFile(events, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(def + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		return werr
	}
	_ = add("-:" + affinityKprobe) // left by an earlier run in this boot
	if err := add("p:" + affinityKprobe + " irq_set_affinity irq=$arg1:u32 mask=+0($arg2):x64"); err != nil {
		t.Fatalf("kprobe on irq_set_affinity: %v", err)
	}
	a := &affinityTrace{inst: filepath.Join(tracefs, "instances", "irqshift-vm-affinity")}
	_ = os.Remove(a.inst)
	if err := os.Mkdir(a.inst, 0o755); err != nil {
		_ = add("-:" + affinityKprobe)
		t.Fatalf("trace instance: %v", err)
	}
	enable := filepath.Join(a.inst, "events", affinityKprobe, "enable")
	t.Cleanup(func() {
		_ = writeSys(enable, "0")
		if err := os.Remove(a.inst); err != nil {
			t.Logf("cleanup: remove %s: %v", a.inst, err)
		}
		if err := add("-:" + affinityKprobe); err != nil {
			t.Logf("cleanup: remove the kprobe %s: %v", affinityKprobe, err)
		}
	})
	if err := writeSys(enable, "1"); err != nil {
		t.Fatalf("enable %s: %v", enable, err)
	}
	return a
}

// clear empties the instance's buffer.
func (a *affinityTrace) clear(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(a.inst, "trace"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// writes returns the affinity writes in the buffer by task name: "IRQ 35 -> 0".
func (a *affinityTrace) writes(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(a.inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := traceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		bits, err := strconv.ParseUint(m[4], 16, 64)
		if err != nil {
			continue
		}
		var cpus []int
		for c := 0; c < 64; c++ {
			if bits&(1<<c) != 0 {
				cpus = append(cpus, c)
			}
		}
		task := strings.TrimSpace(m[1])
		out[task] = append(out[task], fmt.Sprintf("IRQ %s -> %s", m[3], formatCPUList(cpus)))
	}
	return out
}

// foreignRun is the state of TestForeignBalancerCRIOOneshot.
type foreignRun struct {
	d     *daemonProc
	state string
	ban   string
	trace *affinityTrace
}

// podChange does what CRI-O does at a pod's start or stop with irqbalance.service not enabled:
// rewrite the ban file (a temporary file renamed over it) with mask, then run `irqbalance
// --oneshot` with IRQBALANCE_BANNED_CPUS=mask, which daemonizes, writes its masks about ten seconds
// later and exits. It waits for that exit and returns the masks irqbalance wrote.
func (f *foreignRun) podChange(t *testing.T, mask string) []string {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(f.ban), ".irqbalance.tmp")
	writeString(t, tmp, "IRQBALANCE_BANNED_CPUS="+mask+"\n")
	if err := os.Rename(tmp, f.ban); err != nil {
		t.Fatal(err)
	}
	f.trace.clear(t)
	cmd := exec.Command(irqbalanceBin, "--oneshot")
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "IRQBALANCE_BANNED_CPUS=" + mask}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("IRQBALANCE_BANNED_CPUS=%s %s --oneshot: %v: %s", mask, irqbalanceBin, err, out)
	}
	seen := map[int]bool{}
	pollFor(t, f.d, "irqbalance --oneshot exited", rulesGuard, func() (bool, string) {
		pids := irqbalancePIDs()
		for _, p := range pids {
			seen[p] = true
		}
		return len(pids) == 0, fmt.Sprintf("irqbalance still runs: %v", pids)
	})
	exited := time.Now()
	var pids []string
	for p := range seen {
		pids = append(pids, strconv.Itoa(p))
	}
	sort.Strings(pids)
	w := f.trace.writes(t)
	wrote := w["irqbalance"]
	t.Logf("IRQBALANCE_BANNED_CPUS=%s irqbalance --oneshot (output %q): ran as PID %s, gone %.1fs after its start; it wrote %d masks: %s; irqshift wrote %d meanwhile",
		mask, strings.TrimSpace(string(out)), strings.Join(pids, ","), exited.Sub(start).Seconds(), len(wrote), strings.Join(wrote, ", "), len(w["irqshift"]))
	if len(seen) == 0 {
		t.Errorf("no process named irqbalance seen after %s --oneshot returned (the daemonized child)", irqbalanceBin)
	}
	if len(wrote) == 0 {
		t.Fatalf("irqbalance --oneshot wrote no mask (kprobe on irq_set_affinity, tasks seen: %v): nothing for the daemon to put back", w)
	}
	return wrote
}

// settled waits until, from the kernel's files, no IRQ of movable is effective outside allowed
// and they differ by at most one per CPU of allowed, and then until `list --json` (on the daemon's
// state file) shows no pin. It returns the counts per CPU and how long the kernel's files took.
func (f *foreignRun) settled(t *testing.T, what string, movable, allowed []int) (string, time.Duration) {
	t.Helper()
	counts := ""
	took := pollFor(t, f.d, what, foreignGuard, func() (bool, string) {
		var outside []string
		for _, irq := range movable {
			if eff, _, err := irqCPUs(irq, "effective_affinity_list"); err != nil || !subset(eff, allowed) {
				outside = append(outside, fmt.Sprintf("IRQ %d on %s", irq, formatCPUList(eff)))
			}
		}
		d, text := spread(perCPU(t, movable, allowed))
		counts = text
		if len(outside) > 0 || d > 1 {
			return false, fmt.Sprintf("%s; outside %s: %v", text, formatCPUList(allowed), outside)
		}
		return true, text
	})
	pollFor(t, f.d, what+": no pin in list --json", foreignGuard, func() (bool, string) {
		doc, _ := listMovable(t, "--state", f.state)
		for _, q := range doc.IRQs {
			if q.Pin != nil {
				return false, fmt.Sprintf("IRQ %d %v has pin %v", q.IRQ, q.Actions, q.Pin)
			}
		}
		return true, ""
	})
	return counts, took
}

// TestForeignBalancerCRIOOneshot: a pod that disables IRQ load balancing on CPU3 starts and stops
// as CRI-O does it (ban file, then Debian's irqbalance --oneshot) while the daemon runs with
// --ban-file: the daemon keeps irqbalance's masks from being learned as pins, and once irqbalance
// has exited its own placement is back (CPU3 empty while banned, counts within one).
func TestForeignBalancerCRIOOneshot(t *testing.T) {
	needRulesBoot(t)
	needIrqshift(t, 4)
	for _, f := range []string{irqbalanceBin, irqbalanceReal, "/lib/ld-linux-aarch64.so.1"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("no %s in the guest: fetch.sh could not fetch Debian's irqbalance:arm64 and its libraries (see its log), so the initramfs has none: %v", f, err)
		}
	}
	if pids := irqbalancePIDs(); len(pids) > 0 {
		t.Fatalf("irqbalance already runs (PIDs %v) before the test", pids)
	}
	restoreAtEnd(t)
	t.Cleanup(func() {
		// A hang guard that fired leaves a oneshot behind: end it (by PID) before the masks are
		// restored, and before another test starts a daemon, which would refuse beside it.
		for _, pid := range irqbalancePIDs() {
			t.Logf("cleanup: irqbalance PID %d still runs: killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if out, err := exec.Command(irqbalanceBin, "--version").CombinedOutput(); !strings.Contains(string(out), "irqbalance version") {
		t.Fatalf("%s --version: %v: %q", irqbalanceBin, err, out)
	} else {
		t.Logf("%s (Debian's, with its libraries in /opt/irqbalance/lib)", strings.TrimSpace(string(out)))
	}
	trace := startAffinityTrace(t)
	dir := filepath.Join(t.TempDir(), "sysconfig")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &foreignRun{state: statePath(t), ban: filepath.Join(dir, "irqbalance"), trace: trace}
	_, movable := listMovable(t)
	resetMasks(t, movable)
	all := onlineCPUs(t)
	f.d = startDaemon(t, []string{"--state", f.state, "--log-level", "debug", "watch", "--check-interval", "2s", "--no-verify", "--ban-file", f.ban}, nil)
	f.d.waitReady(t, 0)
	counts, _ := f.settled(t, "the daemon's start-up placement", movable, all)
	t.Logf("start-up placement: %s (movable IRQs %v)", counts, movable)

	const banned = 3
	allowed := without(all, banned)
	for _, step := range []struct {
		name, mask string
		allowed    []int
	}{
		{"pod start (CPU3 banned)", fmt.Sprintf("%08x", 1<<banned), allowed},
		{"pod stop (the ban lifted)", "00000000", all},
	} {
		t.Run(step.name, func(t *testing.T) {
			from, lineFrom := f.d.settleCount(), f.d.lineCount()
			wrote := f.podChange(t, step.mask)
			counts, took := f.settled(t, fmt.Sprintf("%s: the daemon's placement back after irqbalance", step.name), movable, step.allowed)
			t.Logf("FOREIGN-RESTORE-MS %.0f (%s): irqbalance's %d masks undone, the placement back %.2fs after its exit was seen "+
				"(both polled every 100 ms), no pin learned: %s",
				float64(took.Microseconds())/1000, step.name, len(wrote), took.Seconds(), counts)
			// The settle of irqbalance's end (reason=balancer), whose line may come after the
			// kernel's files show its work: waitReason fails the test if there is none.
			f.d.waitReason(t, from, "balancer")
			t.Logf("the daemon's settles since the ban file changed:\n%s", settleLines(f.d.settlesSince(from)))
			var running, ended bool
			for _, l := range f.d.linesSince(lineFrom) {
				switch parseLogfmt(l)["msg"] {
				case "learned pin":
					t.Errorf("the daemon learned a pin while or after irqbalance wrote: %s", l)
				case "foreign IRQ balancer running: its masks are not learned as pins, and irqshift's placement comes back when it ends":
					running = true
				case "foreign IRQ balancer ended":
					ended = true
				}
			}
			if !running || !ended {
				t.Errorf("the daemon's log shows irqbalance running: %v, ended: %v; want both", running, ended)
			}
		})
	}
}
