// Package hotplug is irqshift's CPU hotplug event source.
//
// The kernel announces every CPU going offline or online with a uevent on
// the NETLINK_KOBJECT_UEVENT socket, multicast group 1. The datagram has no
// netlink header: it is "ACTION@DEVPATH\0" followed by "KEY=VALUE\0" pairs,
// for example
//
//	offline@/devices/system/cpu/cpu2\0ACTION=offline\0DEVPATH=/devices/system/cpu/cpu2\0
//	SUBSYSTEM=cpu\0...\0MODALIAS=cpu:type:aarch64:feature:,0000,...,000B\n\0SEQNUM=897\0
//
// A uevent reports what already happened: by the time it arrives the kernel
// has migrated the IRQs of the CPU that went down (and moved nothing back to
// a CPU that came up).
//
// The package has three layers:
//
//   - ParseUevent and CPUEvent (uevent.go) are pure functions from bytes to
//     values, tested on the exact bytes seen in an arm64 VM and fuzzed.
//   - Listener (listener_linux.go) is the netlink socket. It only returns
//     datagrams whose sender is the kernel, reports a receive-queue overrun
//     (ENOBUFS) as ErrOverrun, and is cancelled by a context.
//   - Watcher (source.go) implements Source, the interface the daemon
//     consumes. Besides CPU events it emits Resync events when events may
//     have been missed: at start, after an overrun, on a gap in the kernel's
//     global uevent sequence number, and when a periodic read of
//     /sys/devices/system/cpu/online finds a set it was not told about.
//     Its connection is a swappable function, so the loop is tested
//     without a kernel.
//
// Resync events are hints that the daemon should compare the whole system
// with what it wants; they are cheap to over-report and expensive to miss.
// Known sources of spurious ones: uevents of network devices that live in
// another network namespace (every container start and stop) consume
// sequence numbers that this namespace never sees, so they show up as gaps.
//
// Permissions: binding to group 1 needs no privilege (the kernel sets
// NL_CFG_F_NONROOT_RECV for this protocol); a non-root listener only loses
// SO_RCVBUFFORCE and gets a receive buffer capped by net.core.rmem_max. In
// a network namespace owned by a user namespace other than the initial one
// (rootless containers) the socket opens but the kernel delivers no uevents
// to it; there only the periodic check notices hotplug.
package hotplug
