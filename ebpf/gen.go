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
//go:generate go tool bpf2go -tags linux -target bpfel irqcount irqcount.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
