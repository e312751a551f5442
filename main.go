// Command irqshift keeps device interrupts off CPUs that are going offline
// and spreads them round-robin over the CPUs that are online.
//
// main only wires the process to run; everything else is in cli.go and the
// packages, where tests reach it.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr, os.Getenv))
}
