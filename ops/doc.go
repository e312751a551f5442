// Package ops holds irqshift's operations: rebalance, drain, undrain,
// offline, online, pin, unpin, list, verify and top (the data of a frame
// of `irqshift top`). Each takes a request and returns a
// report; the commands of package main only turn flags into a request and
// render the report, and the tests call the operations directly against
// the simulator in sysfs/sysfstest.
//
// Every writing operation is one transaction on the state file (a
// state.Session), the home
// of the operator's intent (pins, drained CPUs) and of what irqshift
// learned (managed IRQs, its own masks, the cursor): it takes the state
// lock, reads the state, snapshots the kernel, plans, writes, saves and
// only then lets go of the lock. The daemon settles under the same lock,
// so two writers never plan from the same state.
package ops
