// Package state owns the operator's intent on disk: the state file
// (pins, drained CPUs, the masks irqshift wrote, the IRQs the kernel
// refused, the running daemon's bans), its format, its lock and the
// daemon's claim on it.
//
// Every reader and writer, each command and the daemon, goes through one
// Session: Open takes the lock for a writer (for its whole read → plan →
// write → save cycle, as dpkg holds its lock for a transaction), Load
// reads the file and answers its errors the same way everywhere, Commit
// prunes and saves. The lock and the claim follow the file, not the
// spelling of its path, and nothing that irqshift did not write is ever
// renamed, truncated or replaced.
package state
