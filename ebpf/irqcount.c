//go:build ignore

// irqcount.c: counts hardware interrupts per IRQ and per CPU, from the tracepoint
// irq/irq_handler_entry, and keeps the time each IRQ last fired on each CPU.
//
// Two programs share the counting: irq_handler_entry_raw, attached as a raw tracepoint
// (BPF_RAW_TRACEPOINT_OPEN, a bpf(2) call: CAP_BPF and CAP_PERFMON suffice and no tracefs is
// needed), which Open tries first, and irq_handler_entry, attached through a perf event of the
// tracefs tracepoint. The second needs perf_event_open(2), which Debian's kernels
// (perf_event_paranoid = 3 by default, a Debian patch that checks CAP_SYS_ADMIN) refuse with
// EACCES to a process that has CAP_PERFMON but not CAP_SYS_ADMIN: irqshift.service under
// systemd. It stays for kernels whose raw tracepoints are refused.
//
// Rebuilt by `make generate` (bpf2go, see gen.go) into irqcount_bpfel.o, which is committed.
//
// What is counted: irq_handler_entry fires once per *action* (handler) the kernel runs for an
// interrupt, in hard-IRQ context on the CPU that took it (kernel/irq/handle.c,
// __handle_irq_event_percpu, and kernel/irq/chip.c, handle_percpu_devid_irq). So:
//   - a shared IRQ line with N registered actions counts N per interrupt, where /proc/interrupts
//     counts it once;
//   - an interrupt with no action (spurious, or freed meanwhile) is not counted at all;
//   - per-CPU IRQs (arm64 arch_timer, PMU, and the IPIs, which are IRQs on arm64 since 5.9) are
//     counted too. Watch a list of IRQ numbers to leave them out.
//
// No CO-RE and no kernel BTF needed: the tracepoint context is declared below with fixed offsets,
// which are part of the tracepoint's ABI (/sys/kernel/tracing/events/irq/irq_handler_entry/format):
//
//   field:unsigned short common_type;          offset:0;  size:2; signed:0;
//   field:unsigned char common_flags;          offset:2;  size:1; signed:0;
//   field:unsigned char common_preempt_count;  offset:3;  size:1; signed:0;
//   field:int common_pid;                      offset:4;  size:4; signed:1;
//   field:int irq;                             offset:8;  size:4; signed:1;
//   field:__data_loc char[] name;              offset:12; size:4; signed:0;

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The kernel refuses GPL-only helpers (bpf_probe_read*, bpf_trace_printk, ...) to programs without
// a GPL-compatible license. None of the helpers used below is GPL-only, but GPL keeps them all
// available and matches the kernel code this hooks into.
char __license[] SEC("license") = "GPL";

// The context of irq/irq_handler_entry, as laid out in its format file (see the top).
struct irq_handler_entry_ctx {
	__u64 common;     // common_type, common_flags, common_preempt_count, common_pid
	__s32 irq;        // offset 8
	__u32 name_loc;   // offset 12: __data_loc char[] name, (length << 16) | offset; not read
};

// What one CPU knows about one IRQ.
struct irq_stat {
	__u64 count;   // handler entries on this CPU
	__u64 last_ns; // bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the latest one on this CPU
};

// counts: IRQ number -> one irq_stat per possible CPU. A per-CPU hash: each CPU only ever writes
// its own slot, in hard-IRQ context with the BPF recursion guard held, so a plain increment is
// exact without atomics and no cache line moves between CPUs (the arm64 timer fires on every CPU
// at HZ; a {irq, cpu}-keyed shared hash would need atomics on shared buckets for each tick).
// Preallocated (the default): kernels before 6.1 refuse run-time allocated hash maps in
// tracepoint programs. max_entries is set by the loader (Open) from the watch list or the number
// of IRQ descriptors; 1 here is a placeholder.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct irq_stat);
	__uint(max_entries, 1);
} counts SEC(".maps");

// watch: the IRQ numbers to count when watch_all is false (the value is unused). Sized by Open.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, 1);
} watch SEC(".maps");

// drops: interrupts not counted because counts was full (per CPU, one slot).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} drops SEC(".maps");

// watch_all: count every IRQ, ignore the watch map. Set by the loader before loading; being a
// read-only global, the verifier prunes the branch it makes dead, so the unused path costs
// nothing.
volatile const bool watch_all = true;

// count_irq counts one handler entry of irq on this CPU.
static __always_inline int count_irq(__u32 irq)
{
	if (!watch_all && !bpf_map_lookup_elem(&watch, &irq))
		return 0;

	__u64 now = bpf_ktime_get_ns();
	struct irq_stat *st = bpf_map_lookup_elem(&counts, &irq);
	if (!st) {
		// First interrupt of this IRQ on any CPU. From a BPF program, an update of a per-CPU
		// hash sets this CPU's slot and zeroes the others.
		struct irq_stat first = { .count = 1, .last_ns = now };
		if (bpf_map_update_elem(&counts, &irq, &first, BPF_NOEXIST) == 0)
			return 0;
		// -EEXIST: another CPU inserted it meanwhile; -E2BIG: the map is full.
		st = bpf_map_lookup_elem(&counts, &irq);
		if (!st) {
			__u32 zero = 0;
			__u64 *d = bpf_map_lookup_elem(&drops, &zero);
			if (d)
				*d += 1;
			return 0;
		}
	}
	st->count += 1;
	st->last_ns = now;
	return 0;
}

SEC("tracepoint/irq/irq_handler_entry")
int irq_handler_entry(struct irq_handler_entry_ctx *ctx)
{
	return count_irq((__u32)ctx->irq);
}

// The raw tracepoint's arguments are the tracepoint's own (include/trace/events/irq.h,
// TP_PROTO(int irq, struct irqaction *action)): args[0] is the IRQ number.
SEC("raw_tracepoint/irq_handler_entry")
int irq_handler_entry_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return count_irq((__u32)ctx->args[0]);
}
