// Package affinity decides which IRQs irqshift may move and where to.
//
// Classify turns a sysfs.Snapshot into IRQs with a class and a reason a
// person can read; Planner is a pure function from those IRQs and the
// allowed CPUs to a Plan; Apply writes a Plan through a Kernel (the real
// /proc, a fixture tree, or the test simulator), reads every result back and
// reports per IRQ what happened.
package affinity
