//go:build vm

// Package vmtest holds tests that only run inside the arm64 test VM (tests/vm/run.sh), as root,
// against the live kernel. They are built with `go test -c -tags vm` for GOARCH=arm64 and are
// never part of a host `go test ./...` run.
//
// The parsing helpers here are deliberately tiny and local: they must not depend on the
// project's own sysfs/procfs code, whose behaviour these tests pin down.
package vmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// irqRow is one numbered row of /proc/interrupts.
type irqRow struct {
	IRQ     int
	Chip    string
	HWIRQ   int64 // -1 when absent
	Trigger string
	Actions string
}

// mustRoot skips when not root inside the VM guest; these tests change kernel state.
func mustRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (runs inside the test VM)")
	}
	if _, err := os.Stat("/proc/irq"); err != nil {
		t.Skip("no /proc/irq")
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

// procInterrupts is one read of /proc/interrupts, parsed by parseInterrupts: the only parser of
// that file in these tests. Its views keep the strictness their callers always had:
//   - Rows (readInterrupts): every numbered row needs a field per header column, then a chip and
//     Level or Edge;
//   - CPUs (interruptsHeaderCPUs): every header column must be CPUn;
//   - Counts (readCounts): the header as for CPUs, and a number in each count column of a
//     numbered row (a numbered row too short to hold them is skipped);
//   - IPIRows: the IPIn rows, counted.
type procInterrupts struct {
	text      string
	cpus      []int // the header's CPU numbers
	cpusErr   error
	rows      []irqRow // the numbered rows, in file order
	rowsErr   error
	counts    map[int]map[int]uint64 // IRQ → header CPU → count
	countsErr error
	labels    []string // the first field of every other row: "IPI0:", "Err:", ...
}

// readProcInterrupts reads and parses /proc/interrupts once; its views fail the test when the
// file does not have the shape they need.
func readProcInterrupts(t *testing.T) procInterrupts {
	t.Helper()
	b, err := os.ReadFile("/proc/interrupts")
	if err != nil {
		t.Fatalf("read /proc/interrupts: %v", err)
	}
	return parseInterrupts(string(b))
}

// parseInterrupts parses /proc/interrupts: the header's columns give the count columns of each
// numbered row, then come the chip name, the hwirq (when present), the Level/Edge word and the
// actions. Rows that are not numbered (IPIn:, Err:, ...) keep only their first field.
func parseInterrupts(s string) procInterrupts {
	p := procInterrupts{text: s, counts: map[int]map[int]uint64{}}
	lines := strings.Split(s, "\n")
	header := strings.Fields(lines[0])
	for _, f := range header {
		c, err := strconv.Atoi(strings.TrimPrefix(f, "CPU"))
		if err != nil {
			p.cpus, p.cpusErr = nil, fmt.Errorf("header %q", lines[0])
			break
		}
		p.cpus = append(p.cpus, c)
	}
	p.countsErr = p.cpusErr
	ncpu := len(header)
	for _, ln := range lines[1:] {
		f := strings.Fields(ln)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		if err != nil || !strings.HasSuffix(f[0], ":") {
			p.labels = append(p.labels, f[0])
			continue
		}
		if p.countsErr == nil && len(f) >= 1+ncpu {
			m := map[int]uint64{}
			for i, c := range p.cpus {
				v, err := strconv.ParseUint(f[1+i], 10, 64)
				if err != nil {
					p.countsErr = fmt.Errorf("row %q: %v", ln, err)
					break
				}
				m[c] = v
			}
			if p.countsErr == nil {
				p.counts[n] = m
			}
		}
		if p.rowsErr == nil {
			r, err := parseInterruptsRow(ln, f, n, ncpu)
			if err != nil {
				p.rows, p.rowsErr = nil, err
			} else {
				p.rows = append(p.rows, r)
			}
		}
	}
	if p.countsErr != nil {
		p.counts = nil
	}
	return p
}

// parseInterruptsRow parses numbered row n (ln, split into fields f) past its ncpu counts.
func parseInterruptsRow(ln string, f []string, n, ncpu int) (irqRow, error) {
	if len(f) < 1+ncpu+1 {
		return irqRow{}, fmt.Errorf("short row %q", ln)
	}
	rest := f[1+ncpu:]
	trig := -1
	for i, w := range rest {
		if w == "Level" || w == "Edge" {
			trig = i
			break
		}
	}
	if trig < 1 {
		return irqRow{}, fmt.Errorf("no Level/Edge in %q", ln)
	}
	r := irqRow{IRQ: n, HWIRQ: -1, Trigger: rest[trig]}
	chip := rest[:trig]
	if h, err := strconv.ParseInt(chip[len(chip)-1], 10, 64); err == nil && len(chip) > 1 {
		r.HWIRQ = h
		chip = chip[:len(chip)-1]
	}
	r.Chip = strings.Join(chip, " ")
	// The actions are the raw text after the trigger word (they may hold spaces).
	idx := strings.Index(ln, " "+r.Trigger+" ")
	if idx >= 0 {
		r.Actions = strings.TrimSpace(ln[idx+len(r.Trigger)+2:])
	}
	return r, nil
}

func (p procInterrupts) must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("parse /proc/interrupts: %v\n%s", err, p.text)
	}
}

// Rows returns the numbered rows.
func (p procInterrupts) Rows(t *testing.T) []irqRow {
	t.Helper()
	p.must(t, p.rowsErr)
	return p.rows
}

// CPUs returns the CPU numbers of the header.
func (p procInterrupts) CPUs(t *testing.T) []int {
	t.Helper()
	p.must(t, p.cpusErr)
	return p.cpus
}

// Counts returns each numbered IRQ's count per CPU (CPU numbers from the header).
func (p procInterrupts) Counts(t *testing.T) map[int]map[int]uint64 {
	t.Helper()
	p.must(t, p.countsErr)
	return p.counts
}

// IPIRows is the number of IPIn rows (the architecture's IPIs, which have no IRQ number there).
func (p procInterrupts) IPIRows() int {
	n := 0
	for _, l := range p.labels {
		if strings.HasPrefix(l, "IPI") && strings.HasSuffix(l, ":") {
			n++
		}
	}
	return n
}

// readInterrupts returns the numbered rows of /proc/interrupts.
func readInterrupts(t *testing.T) []irqRow {
	t.Helper()
	return readProcInterrupts(t).Rows(t)
}

// interruptsHeaderCPUs returns the CPU numbers of the /proc/interrupts header.
func interruptsHeaderCPUs(t *testing.T) []int {
	t.Helper()
	return readProcInterrupts(t).CPUs(t)
}

// readCounts returns each numbered IRQ's count per CPU (CPU numbers from the header).
func readCounts(t *testing.T) map[int]map[int]uint64 {
	t.Helper()
	return readProcInterrupts(t).Counts(t)
}

// gicChip reports whether the chip is the GIC itself (not an MSI domain stacked on it).
func gicChip(chip string) bool {
	return chip == "GICv3" || chip == "GICv2" || strings.HasPrefix(chip, "GIC-")
}

func isPerCPU(r irqRow) bool {
	return gicChip(r.Chip) && r.HWIRQ >= 0 && (r.HWIRQ < 32 || (r.HWIRQ >= 1056 && r.HWIRQ < 1120))
}

func isSPI(r irqRow) bool {
	return gicChip(r.Chip) && ((r.HWIRQ >= 32 && r.HWIRQ < 1020) || (r.HWIRQ >= 4096 && r.HWIRQ < 5120))
}

func isITS(r irqRow) bool {
	return r.Chip == "ITS-MSI" || strings.HasPrefix(r.Chip, "ITS-")
}

// parseCPUList parses "0-1,3" (an empty string is the empty set).
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	var out []int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad cpu list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// formatCPUList formats CPUs the way the kernel prints a cpulist ("0-1,3").
func formatCPUList(cpus []int) string {
	c := append([]int(nil), cpus...)
	sort.Ints(c)
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(c[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", c[i], c[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func irqFile(irq int, name string) string {
	return filepath.Join("/proc/irq", strconv.Itoa(irq), name)
}

func affinity(t *testing.T, irq int) string {
	t.Helper()
	return readTrim(t, irqFile(irq, "smp_affinity_list"))
}

func effective(t *testing.T, irq int) string {
	t.Helper()
	return readTrim(t, irqFile(irq, "effective_affinity_list"))
}

// writeAffinity writes list to /proc/irq/N/smp_affinity_list and returns the write's error
// (EIO, EPERM, EINVAL, ...). Root may open a 0444 file for writing; the kernel refuses the write.
func writeAffinity(irq int, list string) error {
	f, err := os.OpenFile(irqFile(irq, "smp_affinity_list"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(list + "\n"))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// refused reports whether err is the kernel's "you may not move this IRQ" answer:
// EIO on 6.1, EPERM on 6.12.
func refused(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EPERM)
}

func onlineCPUs(t *testing.T) []int {
	t.Helper()
	c, err := parseCPUList(readTrim(t, "/sys/devices/system/cpu/online"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func setCPUOnline(cpu int, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(fmt.Sprintf("/sys/devices/system/cpu/cpu%d/online", cpu), []byte(v), 0o644)
}

func cpuIsOnline(t *testing.T, cpu int) bool {
	t.Helper()
	for _, c := range onlineCPUs(t) {
		if c == cpu {
			return true
		}
	}
	return false
}

// ensureOnlineAtEnd registers a cleanup that brings cpu back online.
func ensureOnlineAtEnd(t *testing.T, cpu int) {
	t.Cleanup(func() {
		if !cpuIsOnline(t, cpu) {
			if err := setCPUOnline(cpu, true); err != nil {
				t.Errorf("cleanup: online cpu%d: %v", cpu, err)
			}
		}
	})
}

// virtioDriver returns the driver bound to virtio device "virtioN" and whether it sits on
// virtio-mmio (rather than PCI).
func virtioDriver(dev string) (driver string, mmio bool) {
	p := filepath.Join("/sys/bus/virtio/devices", dev)
	if l, err := os.Readlink(filepath.Join(p, "driver")); err == nil {
		driver = filepath.Base(l)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		mmio = strings.Contains(real, "virtio_mmio")
	}
	return driver, mmio
}

// virtioDevOf returns "virtioN" for an action like "virtio2-req.1" or "virtio3".
func virtioDevOf(action string) string {
	if !strings.HasPrefix(action, "virtio") {
		return ""
	}
	i := len("virtio")
	for i < len(action) && action[i] >= '0' && action[i] <= '9' {
		i++
	}
	if i == len("virtio") {
		return ""
	}
	return action[:i]
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// wantGIC is the GIC version run.sh booted with (irqshift.gic= on the kernel command line).
func wantGIC() string { return os.Getenv("IRQSHIFT_VM_GIC") }

// gicVersion derives the GIC version from the chip of arch_timer (PPI 27): GICv3, GICv5-PPI
// (the GICv5 VM, gicv5_test.go), else GICv2 (GIC-0 on 6.1 and 6.12).
func gicVersion(rows []irqRow) string {
	for _, r := range rows {
		if r.Actions == "arch_timer" {
			switch {
			case r.Chip == "GICv3":
				return "3"
			case strings.HasPrefix(r.Chip, "GICv5-"):
				return "5"
			}
			return "2"
		}
	}
	return ""
}
