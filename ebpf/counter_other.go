//go:build !((386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm) && linux)

// Where no generated object exists (not Linux, or a big-endian CPU: gen.go builds bpfel only),
// Open reports ErrNotSupported so that callers fall back to /proc/interrupts.

package ebpf

import (
	"fmt"
	"runtime"
)

// Counter counts interrupts per IRQ and per CPU. Not available on this platform.
type Counter struct{}

// Open always fails here with ErrNotSupported.
func Open(watch []int) (*Counter, error) {
	return nil, fmt.Errorf("%w: no eBPF object for %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

// Snapshot is never reached: Open fails.
func (c *Counter) Snapshot() (Counts, error) { return nil, ErrNotSupported }

// Dropped is never reached: Open fails.
func (c *Counter) Dropped() (uint64, error) { return 0, ErrNotSupported }

// Close does nothing.
func (c *Counter) Close() error { return nil }
