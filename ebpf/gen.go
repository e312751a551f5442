package ebpf

// Rebuild irqcount_bpfel.go and irqcount_bpfel.o from irqcount.c: `make generate` (which installs
// clang, llvm and libbpf-dev first when missing), or `go generate ./ebpf` where they are installed.
//
// bpfel only: one object serves every little-endian GOARCH (amd64, arm64, ...), and the generated
// Go file carries the matching build constraint. The two multiarch include directories give
// <linux/bpf.h> its <asm/types.h> on Debian amd64 and arm64 hosts (clang ignores the absent one;
// the BPF target has no multiarch directory of its own). -g keeps BTF, which cilium/ebpf uses for
// map key and value types and for the watch_all variable; bpf2go strips the DWARF.
//
// Right after bpf2go, internal/sourcesum records in irqcount.c.sha256 the SHA-256 of irqcount.c
// (and of any header of this tree it includes), of the generated pair, and the clang version, so
// that TestSourceSum fails when irqcount.c changes without a `make generate`.
// TestObjectsCompileFromSource runs the bpf2go line below (from this file) where that clang is
// installed.
//
//go:generate go tool bpf2go -tags linux -target bpfel irqcount irqcount.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
//go:generate go run ./internal/sourcesum irqcount.c.sha256 irqcount.c -- irqcount_bpfel.o irqcount_bpfel.go
