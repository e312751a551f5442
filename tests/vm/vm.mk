# tests/vm/vm.mk: the arm64 VM targets, included by the top Makefile (paths are relative to the
# repo root). See tests/vm/README.md.
#
#   make vm-fetch     install host tools, download + unpack the arm64 kernel and busybox
#   make vm-test      build the vm-tagged arm64 test binary (+ bin/irqshift-linux-arm64 when
#                     main.go exists), boot GICv3 then GICv2 for each kernel in VM_KERNELS
#   make vm-capture   refresh tests/testdata/vm-gicv3-4cpu, vm-gicv3-4cpu-cpu2-offline, vm-gicv2-4cpu
#   make demo         boot the GICv3 VM (newest kernel) and narrate the kernel's hotplug behaviour
#                     and irqshift's (tests/vm/demo.sh); fetches what it needs
#
# Variables: VM_KERNELS (default "newest 6.1"), KERNEL_PKG, VM_SMP, VM_TIMEOUT (see suite.sh, run.sh).

VM_DIR := tests/vm
VM_TEST_BIN := $(VM_DIR)/.cache/bin/vmtest.test
VM_KERNELS ?= newest 6.1

.PHONY: vm-fetch vm-test vm-capture vm-testbin vm-irqshift-bin demo

vm-fetch:
	bash $(VM_DIR)/fetch.sh

vm-testbin:
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -c -tags vm -ldflags="-s -w" -o $(VM_TEST_BIN) ./$(VM_DIR)/

# bin/irqshift-linux-arm64 goes into the initramfs as /bin/irqshift once main.go exists.
vm-irqshift-bin:
	@if [ -f main.go ]; then $(MAKE) --no-print-directory build-arm64; \
	else echo "vm: no main.go yet: the VM runs without /bin/irqshift"; fi

# suite.sh runs fetch.sh itself (for each kernel), so vm-fetch is not a prerequisite.
vm-test: vm-testbin vm-irqshift-bin
	VM_KERNELS="$(VM_KERNELS)" bash $(VM_DIR)/suite.sh test $(VM_TEST_BIN)

vm-capture: vm-testbin
	bash $(VM_DIR)/suite.sh capture $(VM_TEST_BIN)

# demo.sh fetches the kernel itself (fetch.sh) and needs bin/irqshift-linux-arm64.
demo: vm-irqshift-bin
	bash $(VM_DIR)/demo.sh
