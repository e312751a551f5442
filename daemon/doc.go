// Package daemon is `irqshift watch`: it reacts to CPU hotplug uevents
// within milliseconds. The kernel has already moved a dying CPU's IRQs when
// the offline uevent arrives (wired SPIs piled on the lowest CPU, the
// admin's masks overwritten); the daemon re-spreads them at once and puts
// pins back when the CPU returns.
//
// The loop is one task with Run(ctx): events from a hotplug.Source are
// coalesced (one plan per settled state), each settle snapshots, plans a
// rebalance (which also restores pins) and applies it, then saves the state
// file. The Source, the Kernel and the notifier are interfaces, so the loop
// is tested without a kernel.
package daemon
