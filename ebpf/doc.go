// Package ebpf counts hardware interrupts per IRQ and per CPU with an eBPF program on the
// tracepoint irq/irq_handler_entry, so that irqshift can prove on which CPU an IRQ really fires
// after it moved it (/proc/irq/N/effective_affinity_list says where the kernel means to send it;
// this says where the handler ran).
//
//	c, err := ebpf.Open([]int{21, 22}) // nil: every IRQ, per-CPU ones and arm64 IPIs included
//	if errors.Is(err, ebpf.ErrNoTracefs) || errors.Is(err, ebpf.ErrPermission) ||
//		errors.Is(err, ebpf.ErrNotSupported) {
//		// fall back to /proc/interrupts deltas
//	}
//	defer c.Close()
//	before, _ := c.Snapshot()
//	// ... move the IRQ, generate load ...
//	after, _ := c.Snapshot()
//	d := after.Sub(before) // d[21].PerCPU[3]: interrupts of IRQ 21 handled on CPU 3 meanwhile
//
// The program (irqcount.c) is compiled by bpf2go into irqcount_bpfel.o, which is committed: a
// build needs no clang. It uses no CO-RE relocations, so the kernel needs no BTF
// (/sys/kernel/btf/vmlinux); there is no ErrNoBTF. It needs a kernel with BPF_SYSCALL,
// BPF_EVENTS and tracepoints (5.2 or newer, for read-only global data), and root or CAP_BPF with
// CAP_PERFMON. Open attaches it as a raw tracepoint (bpf(2) only, no tracefs needed); where the
// kernel refuses that, through the tracefs tracepoint, which needs tracefs at /sys/kernel/tracing
// (or debugfs at /sys/kernel/debug) and a perf_event_open(2) that Debian's kernels
// (perf_event_paranoid = 3) allow only with CAP_SYS_ADMIN.
//
// What the counts mean, and how they differ from /proc/interrupts:
//   - The tracepoint fires once per action: a shared IRQ with N handlers counts N per interrupt.
//   - It fires for per-CPU IRQs too (arm64 arch_timer, PMU, and IPIs, which are IRQs 1–7 or so
//     on arm64); pass the IRQ numbers you care about to Open to leave them out cheaply.
//   - An interrupt that finds no action (spurious, or its handler freed) is not counted.
//   - Counting starts at Open: counts are since then, not since boot.
//
// cilium/ebpf looks for tracefs once per process and remembers the answer: if Open falls back to
// the tracefs tracepoint and fails with ErrNoTracefs, mounting tracefs afterwards helps only a new
// process.
package ebpf
