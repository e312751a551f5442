//go:build vm

package vmtest

// Helpers for the tests that run the real /bin/irqshift (cli_test.go, load_test.go): running it,
// decoding its documented JSON, reading the kernel's own view of the same IRQs, and putting the
// VM back the way it was.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// irqshiftBin is where mkinitramfs.sh puts bin/irqshift-linux-arm64 in the guest.
const irqshiftBin = "/bin/irqshift"

// cliRun is one finished irqshift invocation.
type cliRun struct {
	Args   []string
	Code   int
	Stdout string
	Stderr string
	Took   time.Duration
}

func (r cliRun) String() string {
	return fmt.Sprintf("irqshift %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// needIrqshift fails the test when the initramfs has no /bin/irqshift (make vm-test always
// builds one) and skips it when the machine is too small for the CPU numbers the tests use.
func needIrqshift(t *testing.T, minCPUs int) {
	t.Helper()
	mustRoot(t)
	if _, err := os.Stat(irqshiftBin); err != nil {
		t.Fatalf("no %s in the guest (make vm-test builds bin/irqshift-linux-arm64 into the initramfs): %v", irqshiftBin, err)
	}
	if n := len(onlineCPUs(t)); n < minCPUs {
		t.Skipf("needs %d online CPUs, have %d", minCPUs, n)
	}
}

// irqshift runs /bin/irqshift with args, with an environment free of the irqbalance variables it
// honours, and logs the command line, exit code and stderr.
func irqshift(t *testing.T, args ...string) cliRun {
	t.Helper()
	return irqshiftEnv(t, nil, args...)
}

// statePath is the --state file of the test: irqshift keeps what it learned (pins, the managed
// IRQs the kernel refused to move, the round-robin cursor) across runs in a state file, by
// default /run/irqshift/state.json. Each test gets its own, empty at its start, so that what one
// test taught irqshift does not leak into the next, while the commands of one test share it as
// they would on a real machine.
func statePath(t *testing.T) string {
	t.Helper()
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	p := filepath.Join(os.TempDir(), "irqshift-state", name+".json")
	statesMu.Lock()
	defer statesMu.Unlock()
	if !states[p] {
		states[p] = true
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(p)
		t.Cleanup(func() { _ = os.Remove(p) })
	}
	return p
}

var (
	statesMu sync.Mutex
	states   = map[string]bool{}
)

// args that start with --state (the systemd test: the unit's state file) keep it.
func irqshiftEnv(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	if len(args) == 0 || args[0] != "--state" {
		args = append([]string{"--state", statePath(t)}, args...)
	}
	cmd := exec.Command(irqshiftBin, args...)
	// No rate sampling unless a test asks for it (--sample, or
	// IRQSHIFT_SAMPLE in env, which comes later and wins): a second per
	// list, rebalance, drain and offline would add minutes to the suite.
	cmd.Env = append([]string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "IRQSHIFT_SAMPLE=0"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliRun{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("irqshift %s: %v", strings.Join(args, " "), err)
	}
	prefix := ""
	if len(env) > 0 {
		prefix = strings.Join(env, " ") + " "
	}
	msg := fmt.Sprintf("$ %sirqshift %s -> exit %d (%.2fs)", prefix, strings.Join(args[2:], " "), r.Code, r.Took.Seconds())
	if s := strings.TrimSpace(r.Stderr); s != "" {
		msg += "\n  stderr: " + s
	}
	t.Log(msg)
	return r
}

// mustExit fails the test unless the run ended with code.
func mustExit(t *testing.T, r cliRun, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("want exit %d, got:\n%s", code, r)
	}
}

// decodeJSON decodes irqshift's --json output into v (unknown fields are allowed: the README
// promises fields are only ever added).
func decodeJSON(t *testing.T, r cliRun, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("irqshift %s: stdout is not the documented JSON: %v\n%s", strings.Join(r.Args, " "), err, r.Stdout)
	}
}

// The JSON documents of README.md ("JSON").

type listDoc struct {
	CPUs struct {
		Online   []int               `json:"online"`
		Possible []int               `json:"possible"`
		Allowed  []int               `json:"allowed"`
		Banned   []int               `json:"banned"`
		BannedBy map[string][]string `json:"banned_by"`
		Drained  []int               `json:"drained"`
	} `json:"cpus"`
	IRQs []listIRQ `json:"irqs"`
}

type listIRQ struct {
	IRQ       int               `json:"irq"`
	Chip      string            `json:"chip"`
	HWIRQ     *uint64           `json:"hwirq"`
	Trigger   string            `json:"trigger"`
	Actions   []string          `json:"actions"`
	Counts    map[string]uint64 `json:"counts"`
	Total     uint64            `json:"total"`
	Affinity  []int             `json:"affinity"`
	Effective []int             `json:"effective"`
	Class     string            `json:"class"`
	Movable   bool              `json:"movable"`
	Reason    string            `json:"reason"`
	// Pin is the admin mask irqshift keeps for the IRQ (learned or `irqshift pin`), or null.
	Pin []int `json:"pin"`
}

type moveDoc struct {
	IRQ    int    `json:"irq"`
	From   []int  `json:"from"`
	To     []int  `json:"to"`
	Reason string `json:"reason"`
}

type skipDoc struct {
	IRQ    int    `json:"irq"`
	Class  string `json:"class"`
	Reason string `json:"reason"`
}

type resultDoc struct {
	IRQ        int    `json:"irq"`
	From       []int  `json:"from"`
	To         []int  `json:"to"`
	Effective  []int  `json:"effective"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	ErrorClass string `json:"error_class"`
}

// applyDoc is a plan (--dry-run), an applied plan (results), or offline's report (cpus,
// left_behind).
type applyDoc struct {
	Moves      []moveDoc       `json:"moves"`
	Skipped    []skipDoc       `json:"skipped"`
	Results    []resultDoc     `json:"results"`
	CPUs       []int           `json:"cpus"`
	LeftBehind json.RawMessage `json:"left_behind"`
	// Rates are the rates a plan with --sample was made with, by IRQ.
	Rates map[string]float64 `json:"rates"`
}

func (d applyDoc) result(irq int) (resultDoc, bool) {
	for _, r := range d.Results {
		if r.IRQ == irq {
			return r, true
		}
	}
	return resultDoc{}, false
}

func (d applyDoc) skipped(irq int) (skipDoc, bool) {
	for _, s := range d.Skipped {
		if s.IRQ == irq {
			return s, true
		}
	}
	return skipDoc{}, false
}

// unmovable returns the IRQs whose write the kernel refused in this run (status "unmovable").
func (d applyDoc) unmovable() map[int]bool {
	m := map[int]bool{}
	for _, r := range d.Results {
		if r.Status == "unmovable" {
			m[r.IRQ] = true
		}
	}
	return m
}

// checkResults asserts what every result of an applied plan must satisfy on this VM: no
// "failed" (or other unexpected) status, single-CPU targets, a moved IRQ's effective CPU within
// its target both in the JSON and in /proc/irq/N/effective_affinity_list, and a refused write
// classed "unmovable".
func checkResults(t *testing.T, d applyDoc) {
	t.Helper()
	for _, r := range d.Results {
		if len(r.To) != 1 {
			t.Errorf("IRQ %d: written mask %v, want a single CPU", r.IRQ, r.To)
		}
		switch r.Status {
		case "moved":
			if !subset(r.Effective, r.To) || len(r.Effective) == 0 {
				t.Errorf("IRQ %d: status moved but effective %v not within %v", r.IRQ, r.Effective, r.To)
			}
		case "narrowed":
			// The interrupt stayed where it was delivered; only the mask shrank to that CPU.
			if !sameCPUs(r.Effective, r.To) || !sameCPUs(r.Effective, r.From) {
				t.Errorf("IRQ %d: status narrowed but from %v, to %v, effective %v", r.IRQ, r.From, r.To, r.Effective)
			}
		case "unmovable":
			if r.ErrorClass != "unmovable" {
				t.Errorf("IRQ %d: status unmovable with error_class %q, want unmovable", r.IRQ, r.ErrorClass)
			}
			if !strings.Contains(r.Reason, "EIO") && !strings.Contains(r.Reason, "EPERM") && !strings.Contains(r.Reason, "EACCES") {
				t.Errorf("IRQ %d: unmovable reason %q names no EIO/EPERM", r.IRQ, r.Reason)
			}
		default:
			t.Errorf("IRQ %d: status %q (reason %q, error_class %q), want moved, narrowed or unmovable in this VM", r.IRQ, r.Status, r.Reason, r.ErrorClass)
		}
	}
}

func subset(a, b []int) bool {
	in := map[int]bool{}
	for _, c := range b {
		in[c] = true
	}
	for _, c := range a {
		if !in[c] {
			return false
		}
	}
	return true
}

func sameCPUs(a, b []int) bool {
	return formatCPUList(a) == formatCPUList(b)
}

func contains(cpus []int, cpu int) bool {
	for _, c := range cpus {
		if c == cpu {
			return true
		}
	}
	return false
}

// cpuList reads a cpulist file, failing the test on error.
func cpuList(t *testing.T, path string) []int {
	t.Helper()
	c, err := parseCPUList(readTrim(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func effCPUs(t *testing.T, irq int) []int {
	t.Helper()
	return cpuList(t, irqFile(irq, "effective_affinity_list"))
}

func affCPUs(t *testing.T, irq int) []int {
	t.Helper()
	return cpuList(t, irqFile(irq, "smp_affinity_list"))
}

// listMovable runs `irqshift list --json` and returns the document and the IRQs it calls
// movable that the kernel really lets us move: the virtio-blk queues are managed even where
// irqshift cannot tell yet (kernel 6.1 says so only by refusing a write).
func listMovable(t *testing.T, args ...string) (listDoc, []int) {
	t.Helper()
	r := irqshift(t, append(args, "list", "--json")...)
	mustExit(t, r, 0)
	var doc listDoc
	decodeJSON(t, r, &doc)
	managed := kernelManaged(t)
	var movable []int
	for _, q := range doc.IRQs {
		if q.Movable && !managed[q.IRQ] {
			movable = append(movable, q.IRQ)
		}
	}
	return doc, movable
}

// kernelManaged returns the IRQs the kernel manages in this VM: the virtio-blk request queues.
func kernelManaged(t *testing.T) map[int]bool {
	t.Helper()
	m := map[int]bool{}
	for _, r := range blkQueues(readInterrupts(t)) {
		m[r.IRQ] = true
	}
	return m
}

// perCPU counts, for each CPU of cpus, the IRQs of irqs whose effective_affinity_list (read from
// the kernel) holds it.
func perCPU(t *testing.T, irqs []int, cpus []int) map[int]int {
	t.Helper()
	n := map[int]int{}
	for _, c := range cpus {
		n[c] = 0
	}
	for _, irq := range irqs {
		for _, c := range effCPUs(t, irq) {
			n[c]++
		}
	}
	return n
}

// spread returns max-min of the counts and a "CPU0=3 CPU1=2" text.
func spread(n map[int]int) (int, string) {
	var cpus []int
	for c := range n {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	lo, hi := -1, -1
	var parts []string
	for _, c := range cpus {
		v := n[c]
		if lo < 0 || v < lo {
			lo = v
		}
		if hi < 0 || v > hi {
			hi = v
		}
		parts = append(parts, fmt.Sprintf("CPU%d=%d", c, v))
	}
	return hi - lo, strings.Join(parts, " ")
}

func without(cpus []int, drop ...int) []int {
	var out []int
	for _, c := range cpus {
		if !contains(drop, c) {
			out = append(out, c)
		}
	}
	return out
}

// vmState is the part of the VM the CLI tests change: every IRQ's mask and the online CPUs.
type vmState struct {
	masks map[int]string
}

// saveState records every listed IRQ's smp_affinity_list.
func saveState(t *testing.T) vmState {
	t.Helper()
	s := vmState{masks: map[int]string{}}
	for _, r := range readInterrupts(t) {
		s.masks[r.IRQ] = affinity(t, r.IRQ)
	}
	return s
}

// restore brings every CPU online and rewrites each mask that changed (refused writes are the
// managed and per-CPU IRQs, which nobody could have changed). It reports problems with t.Errorf
// only, so that it can run as a cleanup.
func (s vmState) restore(t *testing.T) {
	t.Helper()
	if err := setOffline(nil); err != nil {
		t.Errorf("restore: bring every CPU online: %v", err)
	}
	for irq, mask := range s.masks {
		b, err := os.ReadFile(irqFile(irq, "smp_affinity_list"))
		if err != nil || strings.TrimSpace(string(b)) == mask {
			continue
		}
		if err := writeAffinity(irq, mask); err != nil && !refused(err) {
			t.Errorf("restore: IRQ %d to %s: %v", irq, mask, err)
		}
	}
}

// restoreAtEnd saves the state now and restores it when the test ends.
func restoreAtEnd(t *testing.T) vmState {
	t.Helper()
	s := saveState(t)
	t.Cleanup(func() { s.restore(t) })
	return s
}

// pin writes mask to each IRQ's smp_affinity_list directly (the way an admin would).
func pin(t *testing.T, irqs []int, mask string) {
	t.Helper()
	for _, irq := range irqs {
		if err := writeAffinity(irq, mask); err != nil {
			t.Fatalf("pin IRQ %d to %s: %v", irq, mask, err)
		}
	}
}

// fileSnapshot is the content of every file a refused command must leave alone.
func fileSnapshot(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, pattern := range []string{"/proc/irq/*/smp_affinity_list", "/sys/devices/system/cpu/cpu[0-9]*/online"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				m[f] = strings.TrimSpace(string(b))
			}
		}
	}
	if len(m) == 0 {
		t.Fatal("no /proc/irq/*/smp_affinity_list or cpu*/online files")
	}
	return m
}

func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for f, v := range before {
		if w, ok := after[f]; !ok {
			d = append(d, f+": gone")
		} else if w != v {
			d = append(d, fmt.Sprintf("%s: %q -> %q", f, v, w))
		}
	}
	for f := range after {
		if _, ok := before[f]; !ok {
			d = append(d, f+": new")
		}
	}
	sort.Strings(d)
	return d
}

var kernelVersion = regexp.MustCompile(`^(\d+)\.(\d+)`)

// kernelAtLeast compares the running kernel's major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	m := kernelVersion.FindStringSubmatch(readTrim(t, "/proc/sys/kernel/osrelease"))
	if m == nil {
		t.Fatalf("cannot parse kernel release %q", readTrim(t, "/proc/sys/kernel/osrelease"))
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a > major || (a == major && b >= minor)
}

// cpuOnlineFile reads /sys/devices/system/cpu/cpuN/online.
func cpuOnlineFile(t *testing.T, cpu int) string {
	t.Helper()
	return readTrim(t, fmt.Sprintf("/sys/devices/system/cpu/cpu%d/online", cpu))
}

// marks labels IRQs for table().
func marks(irqs []int, label string) map[int]string {
	m := map[int]string{}
	for _, irq := range irqs {
		m[irq] = label
	}
	return m
}

// checkOfflined checks what `irqshift offline CPU --json` reported and did: nothing left behind on
// cpu, cpus [cpu], cpu offline in the kernel and the online CPUs others.
func checkOfflined(t *testing.T, off applyDoc, cpu int, others []int) {
	t.Helper()
	if lb := string(bytes.TrimSpace(off.LeftBehind)); lb != "[]" {
		t.Errorf("offline --json: left_behind %s, want []", lb)
	}
	if !sameCPUs(off.CPUs, []int{cpu}) {
		t.Errorf("offline --json: cpus %v, want [%d]", off.CPUs, cpu)
	}
	if v := cpuOnlineFile(t, cpu); v != "0" {
		t.Fatalf("after irqshift offline %d: cpu%d/online = %q", cpu, cpu, v)
	}
	if o := onlineCPUs(t); !sameCPUs(o, others) {
		t.Errorf("online CPUs %v, want %v", o, others)
	}
}
