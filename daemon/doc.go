// Package daemon is `irqshift watch`: it reacts to CPU hotplug uevents
// within milliseconds. The kernel has already moved a dying CPU's IRQs when
// the offline uevent arrives (wired SPIs piled on the lowest CPU, the
// admin's masks overwritten); the daemon re-spreads them at once and puts
// pins back when the CPU returns.
//
// New(Config) is the whole daemon: it refuses what must not run
// (irqbalance, a second daemon on the same state, no privilege) and builds the engine, the event source, the
// ban sources, the metrics server and the eBPF confirmation; main only
// turns flags into a Config. Run(ctx) is one loop: events from a
// hotplug.Source are coalesced (one plan per settled state), each settle
// opens a state.Session (the lock, as every command does), snapshots,
// plans a rebalance (which also restores pins), applies it and commits.
// The Source, the Kernel and the notifier are interfaces, so the loop is
// tested without a kernel.
package daemon
