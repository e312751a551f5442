// Package sysfs reads and writes the kernel files that irqshift depends on:
// /proc/interrupts, /proc/irq/N/*, /sys/kernel/irq/N/* and
// /sys/devices/system/cpu/*. Every path is rooted at a configurable proc and
// sys directory, so the whole tool runs unchanged against a fixture tree made
// of plain files.
//
// Reading is split from parsing: an exported method on FS reads a file, an
// unexported parse function turns its bytes into values, and the tests drive
// the parsers directly. Errors wrap one of the sentinels below with %w.
package sysfs
