# ebpf/ebpf.mk: the eBPF targets, included by the top Makefile with `-include ebpf/ebpf.mk`
# (paths are relative to the repo root).
#
#   make generate   rebuild ebpf/irqcount_bpfel.{go,o} from ebpf/irqcount.c with bpf2go,
#                   installing clang, llvm and the libbpf headers first when they are missing
#                   (ebpf/install-clang.sh, via apt-get)
#
# A normal build needs none of this: the generated files are committed. Run `make generate` after
# editing irqcount.c and commit the regenerated pair.

GO ?= go

.PHONY: generate ebpf-generate ebpf-clang

# `generate` has no recipe of its own so that other included .mk files can hang steps on it too.
generate: ebpf-generate

ebpf-clang:
	bash ebpf/install-clang.sh

ebpf-generate: ebpf-clang
	$(GO) generate ./ebpf
