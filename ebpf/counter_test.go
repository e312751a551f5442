//go:build (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm) && linux

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The committed object, checked without a kernel: what bpf2go embedded is what Open expects.
func TestObjectSpec(t *testing.T) {
	spec, err := loadIrqcount()
	if err != nil {
		t.Fatal(err)
	}
	prog := spec.Programs[irqcountProgIrqHandlerEntry]
	if prog == nil {
		t.Fatalf("no program %q in the object", irqcountProgIrqHandlerEntry)
	}
	if prog.Type != cebpf.TracePoint || prog.SectionName != "tracepoint/irq/irq_handler_entry" {
		t.Errorf("program is %v in section %q, want a TracePoint in tracepoint/irq/irq_handler_entry", prog.Type, prog.SectionName)
	}
	if prog.License != "GPL" {
		t.Errorf("license %q, want GPL", prog.License)
	}
	for _, want := range []struct {
		name            string
		typ             cebpf.MapType
		key, value, max uint32
	}{
		{irqcountMapCounts, cebpf.PerCPUHash, 4, 16, 1},
		{irqcountMapWatch, cebpf.Hash, 4, 1, 1},
		{irqcountMapDrops, cebpf.PerCPUArray, 4, 8, 1},
	} {
		m := spec.Maps[want.name]
		if m == nil {
			t.Errorf("no map %q", want.name)
			continue
		}
		if m.Type != want.typ || m.KeySize != want.key || m.ValueSize != want.value || m.MaxEntries != want.max {
			t.Errorf("map %s: %v key %d value %d max %d; want %v key %d value %d max %d", want.name,
				m.Type, m.KeySize, m.ValueSize, m.MaxEntries, want.typ, want.key, want.value, want.max)
		}
		if m.Flags&unix.BPF_F_NO_PREALLOC != 0 {
			t.Errorf("map %s is not preallocated: kernels before 6.1 refuse that in tracepoint programs", want.name)
		}
	}
	v := spec.Variables[irqcountVarWatchAll]
	if v == nil || !v.Constant() || v.Size() != 1 {
		t.Fatalf("watch_all: %v, want a 1-byte read-only variable", v)
	}
	var all bool
	if err := v.Get(&all); err != nil || !all {
		t.Errorf("watch_all defaults to %v (%v), want true", all, err)
	}
}

func TestWatchKeys(t *testing.T) {
	got, err := watchKeys([]int{21, 22, 21, 0})
	if err != nil || !slices.Equal(got, []uint32{21, 22, 0}) {
		t.Errorf("watchKeys = %v, %v; want [21 22 0]", got, err)
	}
	if got, err := watchKeys([]int{}); err != nil || len(got) != 0 {
		t.Errorf("watchKeys(empty) = %v, %v", got, err)
	}
	if _, err := watchKeys([]int{3, -1}); err == nil {
		t.Error("watchKeys accepted IRQ -1")
	}
}

func TestOpenRejectsBadIRQ(t *testing.T) {
	c, err := Open([]int{-1})
	if err == nil {
		c.Close()
		t.Fatal("Open([-1]) succeeded")
	}
	for _, s := range []error{ErrNoTracefs, ErrPermission, ErrNotSupported} {
		if errors.Is(err, s) {
			t.Errorf("Open([-1]) = %v: a bad argument must not look like a host limitation", err)
		}
	}
}

func TestAllIRQsCapacity(t *testing.T) {
	dir := t.TempDir()
	for i := range 300 {
		if err := os.Mkdir(filepath.Join(dir, strconv.Itoa(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"default_smp_affinity", "irq0"} { // not IRQ directories
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := allIRQsCapacity(dir); got != 450 {
		t.Errorf("300 IRQs: capacity %d, want 450", got)
	}
	if got := allIRQsCapacity(t.TempDir()); got != 256 {
		t.Errorf("no IRQs: capacity %d, want the minimum 256", got)
	}
	if got := allIRQsCapacity(filepath.Join(dir, "absent")); got != 1024 {
		t.Errorf("unreadable: capacity %d, want 1024", got)
	}
}

// skipIfHostCannot skips the test when err says this host cannot load or attach the program.
// Tests never mount anything.
func skipIfHostCannot(t *testing.T, err error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrNoTracefs):
		t.Skipf("tracefs not mounted at /sys/kernel/tracing; run inside the arm64 VM or mount it (mount -t tracefs nodev /sys/kernel/tracing): %v", err)
	case errors.Is(err, ErrPermission):
		t.Skipf("not allowed to load eBPF here; run as root or with CAP_BPF and CAP_PERFMON: %v", err)
	case errors.Is(err, ErrNotSupported):
		t.Skipf("this kernel cannot run the eBPF counter: %v", err)
	}
}

func openOrSkip(t *testing.T, watch []int, capacity uint32) *Counter {
	t.Helper()
	start := time.Now()
	c, err := open(watch, capacity)
	if err != nil {
		skipIfHostCannot(t, err)
		t.Fatalf("Open: %v", err)
	}
	t.Logf("load+attach: %v", time.Since(start))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// makeInterrupts causes cheap device interrupts for about d: block I/O (write + fsync, then an
// O_DIRECT read) on the test's temporary directory, and sleeps, which let timers fire.
func makeInterrupts(t *testing.T, d time.Duration) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "io")
	buf := make([]byte, 64<<10)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err == nil {
			f.Write(buf)
			f.Sync()
			f.Close()
		}
		if fd, err := unix.Open(name, unix.O_RDONLY|unix.O_DIRECT, 0); err == nil { // EINVAL on tmpfs
			if mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE); err == nil {
				unix.Pread(fd, mem, 0) // page-aligned, as O_DIRECT wants
				unix.Munmap(mem)
			}
			unix.Close(fd)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func monotonic(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// snapshotUntil makes interrupts until done(delta since before) or 5 s pass; it returns the delta.
func snapshotUntil(t *testing.T, c *Counter, before Counts, done func(Counts) bool) Counts {
	t.Helper()
	var d Counts
	for end := time.Now().Add(5 * time.Second); ; {
		makeInterrupts(t, 100*time.Millisecond)
		now, err := c.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if d = now.Sub(before); done(d) || time.Now().After(end) {
			return d
		}
	}
}

func anyFired(d Counts) bool { return len(d) > 0 }

// loadCheck proves that the committed object loads, passes the verifier and attaches on this
// kernel, in both of its configurations (every IRQ, and a watch list), then detaches. It returns
// Open's error. (tests/vm has its own copy: a test file cannot export it.)
func loadCheck() error {
	for _, watch := range [][]int{nil, {0}} {
		c, err := Open(watch)
		if err != nil {
			return err
		}
		if _, err := c.Snapshot(); err != nil {
			c.Close()
			return err
		}
		if err := c.Close(); err != nil {
			return err
		}
	}
	return nil
}

func TestLoadCheck(t *testing.T) {
	start := time.Now()
	if err := loadCheck(); err != nil {
		skipIfHostCannot(t, err)
		t.Fatal(err)
	}
	t.Logf("loadCheck (two loads, attaches and detaches): %v", time.Since(start))
}

func TestOpenCountsInterrupts(t *testing.T) {
	ncpu, err := cebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	t0 := monotonic(t)
	c := openOrSkip(t, nil, 0)
	counts := snapshotUntil(t, c, nil, anyFired)
	t1 := monotonic(t)
	if len(counts) == 0 {
		t.Fatal("no interrupt counted in 5 s of block I/O and sleeps")
	}
	for irq, ic := range counts {
		t.Logf("IRQ %d: per CPU %v, last %v", irq, ic.PerCPU, ic.Last)
		if irq < 0 {
			t.Errorf("IRQ %d: negative", irq)
		}
		if len(ic.PerCPU) == 0 {
			t.Errorf("IRQ %d listed with no CPU", irq)
		}
		for cpu, n := range ic.PerCPU {
			if cpu < 0 || cpu >= ncpu || n == 0 {
				t.Errorf("IRQ %d: CPU %d count %d; want a possible CPU (< %d) and a count > 0", irq, cpu, n, ncpu)
			}
		}
		if ic.Last < t0 || ic.Last > t1 {
			t.Errorf("IRQ %d: last fired at %v, outside [%v, %v] (CLOCK_MONOTONIC around the test)", irq, ic.Last, t0, t1)
		}
	}
	if n, err := c.Dropped(); err != nil || n != 0 {
		t.Errorf("Dropped = %d, %v; want 0", n, err)
	}
}

// The counts of each (IRQ, CPU) agree with the kernel's own (/sys/kernel/irq/N/per_cpu_count,
// what /proc/interrupts prints): at least what the kernel counted within the window, at most
// what it counted around it times the number of actions (the tracepoint fires once per action).
//
// On a shared machine a vCPU can be descheduled inside an interrupt, between the kernel's count and
// the handler (the tracepoint): the window then catches one side only. A real miscount repeats,
// such a race does not: the comparison is made up to three times and fails only if every attempt
// disagrees.
func TestCountsMatchKernel(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/irq"); err != nil {
		t.Skipf("needs /sys/kernel/irq (CONFIG_SPARSE_IRQ) to compare with: %v", err)
	}
	c := openOrSkip(t, nil, 0)
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		var compared bool
		problems, compared = compareWithKernel(t, c)
		if !compared {
			t.Skip("no interrupt in the window: nothing to compare")
		}
		if len(problems) == 0 {
			return
		}
		t.Logf("attempt %d disagrees with the kernel:\n%s", attempt, strings.Join(problems, "\n"))
	}
	t.Errorf("eBPF counts disagree with the kernel's in all 3 attempts; the last:\n%s", strings.Join(problems, "\n"))
}

// compareWithKernel counts interrupts over one window with c and with the kernel, and returns
// the (IRQ, CPU) pairs that disagree; compared is false when no interrupt fired.
func compareWithKernel(t *testing.T, c *Counter) (problems []string, compared bool) {
	t.Helper()
	p0 := kernelCounts(t)
	s1, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	p1 := kernelCounts(t)
	makeInterrupts(t, 300*time.Millisecond)
	p2 := kernelCounts(t)
	s2, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	p3 := kernelCounts(t)

	got := s2.Sub(s1)
	if len(got) == 0 {
		return nil, false
	}
	irqs := make(map[int]bool)
	for irq := range got {
		irqs[irq] = true
	}
	for irq := range p2 {
		irqs[irq] = true
	}
	for irq := range irqs {
		inner, outer := p2[irq].sub(p1[irq]), p3[irq].sub(p0[irq])
		actions := max(p3[irq].actions, 1)
		for cpu := range max(len(outer.perCPU), len(inner.perCPU)) {
			e := got[irq].PerCPU[cpu]
			lo, hi := inner.at(cpu), outer.at(cpu)*uint64(actions)
			if e < lo || e > hi {
				problems = append(problems, fmt.Sprintf("IRQ %d CPU %d: eBPF counted %d, kernel %d within and %d around the window (%d actions): want %d..%d",
					irq, cpu, e, lo, outer.at(cpu), actions, lo, hi))
			}
		}
		if e := got[irq].Total(); e > 0 {
			t.Logf("IRQ %d: eBPF %v, kernel %v..%v", irq, got[irq].PerCPU, inner.perCPU, outer.perCPU)
		}
	}
	return problems, true
}

type kernelIRQ struct {
	perCPU  []uint64 // by possible CPU
	actions int
}

func (k kernelIRQ) at(cpu int) uint64 {
	if cpu < len(k.perCPU) {
		return k.perCPU[cpu]
	}
	return 0
}

func (k kernelIRQ) sub(b kernelIRQ) kernelIRQ {
	out := kernelIRQ{perCPU: make([]uint64, len(k.perCPU)), actions: k.actions}
	for i, v := range k.perCPU {
		out.perCPU[i] = v - b.at(i)
	}
	return out
}

// kernelCounts reads /sys/kernel/irq/N/per_cpu_count ("3,0,17,...", one per possible CPU) and
// actions ("virtio1-req.0" or "mmc1,mmc0").
func kernelCounts(t *testing.T) map[int]kernelIRQ {
	t.Helper()
	ents, err := os.ReadDir("/sys/kernel/irq")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]kernelIRQ, len(ents))
	for _, e := range ents {
		irq, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/kernel/irq", e.Name(), "per_cpu_count"))
		if err != nil {
			continue // freed meanwhile
		}
		var k kernelIRQ
		for f := range strings.SplitSeq(strings.TrimSpace(string(b)), ",") {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("IRQ %d per_cpu_count %q: %v", irq, b, err)
			}
			k.perCPU = append(k.perCPU, n)
		}
		if a, err := os.ReadFile(filepath.Join("/sys/kernel/irq", e.Name(), "actions")); err == nil {
			if s := strings.TrimSpace(string(a)); s != "" {
				k.actions = strings.Count(s, ",") + 1
			}
		}
		out[irq] = k
	}
	return out
}

// With a watch list, only the watched IRQs are counted.
func TestWatchList(t *testing.T) {
	all := openOrSkip(t, nil, 0)
	before, err := all.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	d := snapshotUntil(t, all, before, anyFired)
	busiest, most := -1, uint64(0)
	for irq, ic := range d {
		if n := ic.Total(); n > most {
			busiest, most = irq, n
		}
	}
	if busiest < 0 {
		t.Fatal("no interrupt counted in 5 s of block I/O and sleeps")
	}

	const absent = 1 << 24 // no such IRQ: must be harmless
	w := openOrSkip(t, []int{busiest, absent, busiest}, 0)
	got := snapshotUntil(t, w, nil, func(d Counts) bool { return d[busiest].Total() > 0 })
	if got[busiest].Total() == 0 {
		t.Errorf("watched IRQ %d not counted in 5 s (it fired %d times just before)", busiest, most)
	}
	for irq := range got {
		if irq != busiest {
			t.Errorf("IRQ %d counted, but only %d is watched", irq, busiest)
		}
	}
	t.Logf("watching IRQ %d: %v", busiest, got[busiest].PerCPU)

	none := openOrSkip(t, []int{}, 0)
	makeInterrupts(t, 100*time.Millisecond)
	if s, err := none.Snapshot(); err != nil || len(s) != 0 {
		t.Errorf("empty watch list: Snapshot = %v, %v; want nothing", s, err)
	}
}

// When more IRQs fire than the counts map holds, the excess is reported by Dropped.
func TestDropped(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/irq"); err != nil {
		t.Skipf("needs /sys/kernel/irq (CONFIG_SPARSE_IRQ) to know how many IRQs fired: %v", err)
	}
	c := openOrSkip(t, nil, 1)
	p1 := kernelCounts(t)
	makeInterrupts(t, 300*time.Millisecond)
	s, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := c.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	p2 := kernelCounts(t)
	if len(s) > 1 {
		t.Errorf("a 1-entry map reported %d IRQs", len(s))
	}
	fired := 0
	for irq, k := range p2 {
		for cpu := range k.perCPU {
			if k.at(cpu) > p1[irq].at(cpu) {
				fired++
				break
			}
		}
	}
	t.Logf("%d IRQs fired, %d counted, %d interrupts dropped", fired, len(s), dropped)
	if fired >= 2 && dropped == 0 {
		t.Errorf("%d IRQs fired into a 1-entry map, but Dropped = 0", fired)
	}
}

func TestClose(t *testing.T) {
	c := openOrSkip(t, nil, 0)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Snapshot(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Snapshot after Close = %v, want os.ErrClosed", err)
	}
	if _, err := c.Dropped(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Dropped after Close = %v, want os.ErrClosed", err)
	}
}

func BenchmarkOpenClose(b *testing.B) {
	for b.Loop() {
		c, err := Open(nil)
		if err != nil {
			b.Skip(err)
		}
		c.Close()
	}
}

func BenchmarkSnapshot(b *testing.B) {
	c, err := Open(nil)
	if err != nil {
		b.Skip(err)
	}
	defer c.Close()
	for b.Loop() {
		if _, err := c.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenKeepsOneProgram: Open attaches one of the two programs (the raw tracepoint where the
// kernel allows it) and closes the other, so a Counter holds one loaded program, the attached one.
func TestOpenKeepsOneProgram(t *testing.T) {
	c := openOrSkip(t, []int{0}, 0)
	raw, tp := c.objs.IrqHandlerEntryRaw, c.objs.IrqHandlerEntry
	if (raw == nil) == (tp == nil) {
		t.Fatalf("programs kept: raw tracepoint %v, tracefs tracepoint %v; want exactly one", raw != nil, tp != nil)
	}
	kept := raw
	if kept == nil {
		kept = tp
	}
	info, err := kept.Info()
	if err != nil {
		t.Fatal(err)
	}
	linkInfo, err := c.link.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	if linkInfo.Program != id {
		t.Errorf("the link runs program %d, the Counter kept program %d", linkInfo.Program, id)
	}
	t.Logf("attached as a %s (link type %v)", map[bool]string{true: "raw tracepoint", false: "tracefs tracepoint"}[raw != nil], linkInfo.Type)
}
