// Command irqshift keeps device interrupts off CPUs that are going offline
// and spreads them round-robin over the CPUs that are online.
//
// main only wires the process to run; everything else is in cli.go and the
// packages, where tests reach it.
package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
)

func main() {
	if procs, ok := daemonReexec(os.Args, runtime.GOMAXPROCS(0), os.Getenv); ok {
		// On failure (no /proc) the daemon runs on, capped by limitRuntime.
		_ = syscall.Exec("/proc/self/exe", os.Args, append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs)))
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr, os.Getenv))
}

// daemonReexec says whether to start `irqshift watch` again in this process (exec) with
// GOMAXPROCS=procs in its environment. The Go runtime sizes itself by GOMAXPROCS before main
// runs: it starts with one P per CPU, and threads and per-P memory made then outlive a later
// runtime.GOMAXPROCS call (limitRuntime). Only the environment variable avoids them: on a
// simulated 256-CPU machine the idle daemon had 69 threads and 11 MB of anonymous memory when it
// lowered GOMAXPROCS itself, 10 threads and 5 MB when started with GOMAXPROCS=4
// (docs/BENCHMARKS.md, "Big machines"). An operator's GOMAXPROCS is kept, and so is a machine
// with no more CPUs than daemonMaxProcs. Any argument "watch" counts, even a flag's value: another
// command started again with fewer Ps only runs as before.
func daemonReexec(args []string, procs int, getenv func(string) string) (int, bool) {
	if getenv("GOMAXPROCS") != "" || procs <= daemonMaxProcs || !slices.Contains(args[1:], "watch") {
		return 0, false
	}
	return daemonMaxProcs, true
}
