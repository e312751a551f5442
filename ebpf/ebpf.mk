# ebpf/ebpf.mk: the eBPF targets, included by the top Makefile with `-include ebpf/ebpf.mk`
# (paths are relative to the repo root).
#
#   make generate   rebuild ebpf/irqcount_bpfel.{go,o} from ebpf/irqcount.c with bpf2go,
#                   installing clang, llvm and the libbpf headers first when they are missing
#                   (ebpf/install-clang.sh, via apt-get), then write ebpf/irqcount.c.sha256
#                   (the SHA-256 of the source, the headers of this tree it includes and the
#                   generated pair, and the clang version; see ebpf/gen.go)
#
# A normal build needs none of this: the generated files are committed. Run `make generate` after
# editing irqcount.c and commit the regenerated pair with irqcount.c.sha256: TestSourceSum
# (ebpf/source_test.go, in `make test`) fails while irqcount.c differs from what the objects were
# generated from.

GO ?= go

.PHONY: generate ebpf-generate ebpf-clang

# `generate` has no recipe of its own so that other included .mk files can hang steps on it too.
generate: ebpf-generate

ebpf-clang:
	bash ebpf/install-clang.sh

# go generate runs gen.go's two steps in order: bpf2go, then ebpf/internal/sourcesum.
ebpf-generate: ebpf-clang
	$(GO) generate ./ebpf
