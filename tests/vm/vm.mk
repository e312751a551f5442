# tests/vm/vm.mk: the arm64 VM targets, included by the top Makefile (paths are relative to the
# repo root). See tests/vm/README.md.
#
#   make vm-fetch     install host tools, download + unpack the arm64 kernel, busybox and irqbalance
#   make vm-test      build the vm-tagged arm64 test binary (+ bin/irqshift-linux-arm64 when
#                     main.go exists), boot GICv3 for each kernel in VM_KERNELS (the newest 7.x,
#                     6.12, 6.1) and GICv2 for those in VM_GICV2_KERNELS (the newest), and for
#                     the newest kernel the GICv5 VM, the NUMA VM and the big VM (VM_GICV5_TEST=0,
#                     VM_NUMA_TEST=0, VM_BIG_TEST=0 leave them out)
#   make vm-test-rules  only rules_test.go (device rules, CRI-O's irqbalance --oneshot beside the
#                     daemon) in the boot of vm-test that runs them: newest kernel, GICv3, 4 vCPUs,
#                     3 busy devices (suite.sh rules)
#   make vm-test-gicv5  only the GICv5 VM: newest kernel, QEMU's experimental GICv5
#                     (gic-version=x-5, no ITS: PCI INTx) from trixie-backports' QEMU 11.1 in a
#                     trixie chroot (tests/vm/qemu-newest.sh, built once and cached, ~1 min), 4
#                     vCPUs; runs gicv5_test.go (TestGICv5*)
#   make vm-test-numa only the NUMA VM: newest kernel, GICv3, 8 vCPUs, 2 nodes, every PCI device on
#                     node 1, 4 extra virtio-rng-pci; runs numa_test.go (TestNUMA*)
#   make vm-test-big  only the big VM: newest kernel, GICv3, 64 vCPUs (VM_BIG_SMP) on one host
#                     thread (single-threaded TCG), 4 nodes, every PCI device on node 1, 8 extra
#                     virtio-rng-pci; runs big_test.go (TestBig*), about 90 s
#   make vm-test-big128  the big VM at 128 vCPUs (VM_BIG_SMP=128) with 3 busy devices: the tests of
#                     big_test.go (TestBig*: the daemon through hotplug steps, and idle); not in
#                     `make test`: .ci/run runs it after test-systemd, about 7 min on the 2-core host
#   make vm-test-systemd  the systemd VM: newest kernel, GICv3, 4 vCPUs, a Debian arm64 root file
#                     system (rootfs.sh: debootstrap, built once and cached, ~13 min) booted with
#                     systemd as PID 1; installs bin/deb/irqshift_*_arm64.deb (make deb) with dpkg
#                     and runs systemd_test.go (TestSystemd*) as a service; `make test-systemd`
#   make vm-capture   refresh tests/testdata/vm-gicv3-4cpu, vm-gicv3-4cpu-cpu2-offline, vm-gicv2-4cpu
#   make demo         boot the GICv3 VM (newest kernel) and narrate the kernel's hotplug behaviour
#                     and irqshift's (tests/vm/demo.sh); fetches what it needs
#   make bench-vm     (top Makefile, uses vm-testbin and vm-irqshift-bin) the daemon's reaction
#                     time: TestDaemonHotplug on each of BENCH_VM_CONFIGS with BENCH_VM_CHURN steps,
#                     n/median/p90/max per kernel and GIC (tests/vm/bench.sh, docs/BENCHMARKS.md)
#
# Variables: VM_KERNELS (default "newest 6.12 6.1"), VM_GICV2_KERNELS (default "newest"), KERNEL_PKG, VM_SMP, VM_TIMEOUT, VM_GICV5_TEST, VM_NUMA_TEST,
# VM_BIG_TEST, VM_BIG_SMP, VM_BIG128_RUN (see suite.sh, run.sh);
# for bench-vm BENCH_VM_CONFIGS (KERNEL:GIC pairs, or KERNEL:GIC:CPUS, where 32 or more CPUS is the
# big VM's layout; KERNEL as in VM_KERNELS; default "newest:3 newest:2 6.1:3"), BENCH_VM_CHURN
# (IRQSHIFT_VM_CHURN, default 200), BENCH_VM_RUN, BENCH_VM_BIG_RUN, BENCH_VM_APPEND (see bench.sh).

VM_DIR := tests/vm
VM_TEST_BIN := $(VM_DIR)/.cache/bin/vmtest.test
VM_KERNELS ?= newest 6.12 6.1
VM_GICV2_KERNELS ?= newest
BENCH_VM_CONFIGS ?= newest:3 newest:2 6.1:3
BENCH_VM_CHURN ?= 200

.PHONY: vm-fetch vm-test vm-test-rules vm-test-gicv5 vm-test-numa vm-test-big vm-test-big128 vm-test-systemd vm-capture vm-testbin vm-irqshift-bin demo

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
	VM_KERNELS="$(VM_KERNELS)" VM_GICV2_KERNELS="$(VM_GICV2_KERNELS)" bash $(VM_DIR)/suite.sh test $(VM_TEST_BIN)

vm-test-rules: vm-testbin vm-irqshift-bin
	bash $(VM_DIR)/suite.sh rules $(VM_TEST_BIN)

vm-test-gicv5: vm-testbin vm-irqshift-bin
	bash $(VM_DIR)/suite.sh gicv5 $(VM_TEST_BIN)

vm-test-numa: vm-testbin vm-irqshift-bin
	bash $(VM_DIR)/suite.sh numa $(VM_TEST_BIN)

vm-test-big: vm-testbin vm-irqshift-bin
	bash $(VM_DIR)/suite.sh big $(VM_TEST_BIN)

# 128 vCPUs: the size where the daemon's cost used to grow with the CPUs (docs/BENCHMARKS.md, "Big
# machines"). Its boot and tests take longer than run.sh's default 600 s allows on a busy host.
# TestBusyDaemon is left out: at 128 vCPUs under single-threaded TCG the busy ports are starved
# (measured 2026-12-06: the three busy IRQs fired 0.2 times a second in all, the eBPF confirmation
# saw them silent), below MinBusyRate, so there is no load to separate. It checks the counts per
# NUMA home (countsWithinOneByHome) where it runs: VM_BIG128_RUN='^TestBig|^TestBusyDaemon$$'.
VM_BIG128_RUN ?= ^TestBig
vm-test-big128: vm-testbin vm-irqshift-bin
	VM_BIG_SMP=128 VM_BIG_BUSY=3 VM_BIG_RUN='$(VM_BIG128_RUN)' VM_TIMEOUT=$${VM_TIMEOUT:-1500} \
		bash $(VM_DIR)/suite.sh big $(VM_TEST_BIN)

# The package under test is the one `make deb` built (packaging/deb.mk).
vm-test-systemd: vm-testbin deb
	VM_DEB="$$(ls bin/deb/irqshift_*_arm64.deb | head -n1)" bash $(VM_DIR)/suite.sh systemd $(VM_TEST_BIN)

vm-capture: vm-testbin
	bash $(VM_DIR)/suite.sh capture $(VM_TEST_BIN)

# demo.sh fetches the kernel itself (fetch.sh) and needs bin/irqshift-linux-arm64.
demo: vm-irqshift-bin
	bash $(VM_DIR)/demo.sh
