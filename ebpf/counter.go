//go:build (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm) && linux

// The constraint is that of the generated irqcount_bpfel.go (bpf2go -target bpfel -tags linux).

package ebpf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Counter counts interrupts per IRQ and per CPU until it is closed. Its methods are safe for
// concurrent use.
type Counter struct {
	mu   sync.Mutex
	objs *irqcountObjects // nil once closed
	link link.Link
}

// Open loads the program and attaches it to the tracepoint irq/irq_handler_entry. watch lists
// the IRQ numbers to count; nil means every IRQ (per-CPU IRQs and arm64 IPIs included), and an
// empty non-nil slice counts nothing. The errors that mean "this host cannot do it" wrap
// ErrNoTracefs, ErrPermission or ErrNotSupported.
func Open(watch []int) (*Counter, error) {
	return open(watch, 0)
}

// open is Open with the capacity of the counts map for watch == nil (0: sized from /proc/irq).
func open(watch []int, capacity uint32) (*Counter, error) {
	irqs, err := watchKeys(watch)
	if err != nil {
		return nil, err
	}
	if watch == nil && capacity == 0 {
		capacity = allIRQsCapacity("/proc/irq")
	}

	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; a no-op on newer ones.
	if err := rlimit.RemoveMemlock(); err != nil {
		e, _ := classify("remove memlock rlimit", err)
		return nil, e
	}

	spec, err := loadIrqcount()
	if err != nil {
		return nil, fmt.Errorf("eBPF counter: %w", err)
	}
	if err := spec.Variables[irqcountVarWatchAll].Set(watch == nil); err != nil {
		return nil, fmt.Errorf("eBPF counter: set watch_all: %w", err)
	}
	counts, watchMap := spec.Maps[irqcountMapCounts], spec.Maps[irqcountMapWatch]
	if watch == nil {
		counts.MaxEntries = capacity
	} else {
		// One entry per watched IRQ: the map cannot fill up.
		counts.MaxEntries = uint32(max(len(irqs), 1))
		watchMap.MaxEntries = uint32(max(len(irqs), 1))
		watchMap.Contents = make([]cebpf.MapKV, 0, len(irqs))
		for _, irq := range irqs {
			watchMap.Contents = append(watchMap.Contents, cebpf.MapKV{Key: irq, Value: uint8(1)})
		}
	}

	var objs irqcountObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		e, _ := classify("load", err)
		return nil, e
	}
	l, err := attach(&objs)
	if err != nil {
		objs.Close()
		return nil, err
	}
	return &Counter{objs: &objs, link: l}, nil
}

// attach attaches the counting program to irq_handler_entry: as a raw tracepoint first, a bpf(2)
// call that CAP_BPF and CAP_PERFMON allow and that needs no tracefs; else through a perf event of
// the tracefs tracepoint, whose perf_event_open(2) Debian's kernels (perf_event_paranoid = 3)
// refuse with EACCES to a process without CAP_SYS_ADMIN, such as irqshift.service.
func attach(objs *irqcountObjects) (link.Link, error) {
	// The program left unattached is closed, so one program per Counter stays loaded.
	raw, rawErr := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "irq_handler_entry", Program: objs.IrqHandlerEntryRaw})
	if rawErr == nil {
		objs.IrqHandlerEntry.Close()
		objs.IrqHandlerEntry = nil
		return raw, nil
	}
	l, err := link.Tracepoint("irq", "irq_handler_entry", objs.IrqHandlerEntry, nil)
	if err == nil {
		objs.IrqHandlerEntryRaw.Close()
		objs.IrqHandlerEntryRaw = nil
		return l, nil
	}
	e, ok := classify("attach tracepoint irq/irq_handler_entry", err)
	if !ok && !tracepointVisible() {
		// cilium/ebpf says only "neither debugfs nor tracefs are mounted", with no errno.
		e = fmt.Errorf("%w: attach: %w", ErrNoTracefs, err)
	}
	return nil, fmt.Errorf("%w (as a raw tracepoint: %v)", e, rawErr)
}

// tracepointVisible reports whether the tracepoint's id file is where cilium/ebpf looks first.
func tracepointVisible() bool {
	for _, root := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(root, "events/irq/irq_handler_entry/id")); err == nil {
			return true
		}
	}
	return false
}

// watchKeys checks and de-duplicates the watch list.
func watchKeys(watch []int) ([]uint32, error) {
	seen := make(map[int]bool, len(watch))
	keys := make([]uint32, 0, len(watch))
	for _, irq := range watch {
		if irq < 0 || int64(irq) > math.MaxUint32 {
			return nil, fmt.Errorf("eBPF counter: IRQ %d out of range", irq)
		}
		if !seen[irq] {
			seen[irq] = true
			keys = append(keys, uint32(irq))
		}
	}
	return keys, nil
}

// allIRQsCapacity sizes the counts map when every IRQ is counted: the IRQ descriptors the kernel
// has now (one directory each in /proc/irq), plus room for devices added later. The map is
// preallocated: each entry costs 16 bytes per possible CPU. IRQs beyond it are counted by
// Counter.Dropped instead.
func allIRQsCapacity(procIRQ string) uint32 {
	ents, err := os.ReadDir(procIRQ)
	if err != nil {
		return 1024
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			n++
		}
	}
	return uint32(min(max(n+n/2, 256), 1<<16))
}

// Snapshot returns the counts since Open: per IRQ that fired at least once (among those watched),
// per CPU, and the time it last fired.
func (c *Counter) Snapshot() (Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs == nil {
		return nil, fmt.Errorf("eBPF counter: snapshot: %w", os.ErrClosed)
	}
	out := make(Counts)
	var (
		irq  uint32
		vals []irqcountIrqStat // one per possible CPU, indexed by CPU number
	)
	it := c.objs.Counts.Iterate()
	for it.Next(&irq, &vals) {
		ic := IRQCounts{PerCPU: make(map[int]uint64)}
		var last uint64
		for cpu, v := range vals {
			if v.Count != 0 {
				ic.PerCPU[cpu] = v.Count
			}
			last = max(last, v.LastNs)
		}
		ic.Last = time.Duration(last)
		out[int(irq)] = ic
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("eBPF counter: read counts: %w", err)
	}
	return out, nil
}

// Dropped returns how many interrupts were not counted because the counts map was full: more
// distinct IRQs fired than it was sized for. Always 0 with a watch list.
func (c *Counter) Dropped() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs == nil {
		return 0, fmt.Errorf("eBPF counter: dropped: %w", os.ErrClosed)
	}
	var perCPU []uint64
	if err := c.objs.Drops.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("eBPF counter: read drops: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Close detaches the program and frees its maps. Closing twice is harmless.
func (c *Counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs == nil {
		return nil
	}
	err := errors.Join(c.link.Close(), c.objs.Close())
	c.objs, c.link = nil, nil
	if err != nil {
		return fmt.Errorf("eBPF counter: close: %w", err)
	}
	return nil
}
