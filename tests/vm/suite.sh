#!/bin/bash
# suite.sh: the VM runs behind `make vm-test` and `make vm-capture`.
#
# usage: tests/vm/suite.sh test|numa|big|capture TEST_BINARY...
#
#   test     for each kernel in $VM_KERNELS: fetch it, build its initramfs, boot GICv3 (-smp 4) then
#            GICv2 (-smp 4), run the test binaries in each; for `newest` also the NUMA
#            configuration and the big one (below; VM_NUMA_TEST=0 and VM_BIG_TEST=0 leave them
#            out); fail if any run fails.
#   numa     only the NUMA configuration, with the newest kernel: "GICv3 8 vCPUs 2 nodes PCI on
#            node 1" (run.sh -g 3 -c 8 --numa 2 --pci-node 1 --extra-rng 4 -r '^TestNUMA'),
#            the tests of numa_test.go (the others assume no NUMA placement and 4 CPUs).
#   big      only the big configuration, with the newest kernel: "GICv3 64 vCPUs 4 nodes PCI on
#            node 1" (run.sh -g 3 -c 64 --numa 4 --pci-node 1 --extra-rng 8 -r '^TestBig', which
#            runs single-threaded TCG above 16 vCPUs), the tests of big_test.go; VM_BIG_SMP sets
#            its vCPUs (default 64; 4 nodes whatever the count).
#   capture  with the default (newest) kernel: refresh tests/testdata/vm-gicv3-4cpu,
#            vm-gicv3-4cpu-cpu2-offline (one GICv3 boot) and vm-gicv2-4cpu (one GICv2 boot).
#
# VM_KERNELS: space-separated; `newest` = KERNEL_PKG if set, else the newest arm64 kernel apt
# knows (6.12 on bookworm); anything else is a series such as 6.1 (Debian 12's stock kernel).
# Default "newest 6.1", so both the EPERM (6.12) and EIO (6.1) kernels are covered.
# VM_SMP overrides -smp for the test runs (GICv2 runs are capped at 8 CPUs), not for the NUMA or
# the big one.
set -uo pipefail
# The configurations are the suite's: run.sh's NUMA and TCG variables would change every boot.
unset VM_NUMA VM_PCI_NODE VM_EXTRA_RNG VM_TCG_SINGLE

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$here/.cache}
what=${1:-}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 test|numa|big|capture TEST_BINARY..." >&2; exit 2; }

summary=()
failed=0
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }

# prepare SERIES: fetch the kernel and build its initramfs; sets kdir, kver, initrd.
prepare() {
	local series=$1 out t
	shift
	t=$(now)
	if [ "$series" = newest ]; then
		out=$(bash "$here/fetch.sh") || return 1
	else
		out=$(env -u KERNEL_PKG KERNEL_SERIES="$series" FETCH_SET_CURRENT=0 bash "$here/fetch.sh") || return 1
	fi
	kdir=$(printf '%s\n' "$out" | sed -n 's/^KERNEL_DIR=//p' | tail -n1)
	[ -n "$kdir" ] || return 1
	kver=$(basename "$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)")
	kver=${kver#vmlinuz-}
	summary+=("fetch $kver: $(since "$t")s")
	t=$(now)
	initrd=$CACHE/initrd-$kver.gz
	bash "$here/mkinitramfs.sh" -k "$kdir" -o "$initrd" "$@" || return 1
	summary+=("initramfs $kver: $(since "$t")s")
}

# boot LABEL ARGS...: one run.sh boot, recorded in the summary.
boot() {
	local label=$1 t rc
	shift
	t=$(now)
	bash "$here/run.sh" -k "$kdir" -i "$initrd" "$@"
	rc=$?
	if [ $rc = 0 ]; then
		summary+=("$label: PASS in $(since "$t")s")
	else
		summary+=("$label: FAIL in $(since "$t")s")
		failed=1
	fi
}

# numa_boot: the NUMA configuration (newest kernel only; about 30 s on the 2-core host).
numa_boot() {
	boot "$kver gicv3 8cpu 2 nodes pci-node 1" -g 3 -c 8 --numa 2 --pci-node 1 --extra-rng 4 -r '^TestNUMA' \
		-l "$CACHE/logs/test-$kver-gicv3-8cpu-numa2-pci1.log"
}

# big_boot: the big configuration (newest kernel only; about 90 s at 64 vCPUs on the 2-core host).
# 8 more rngs give the PCI node more IRQs (21) than CPUs (16 at 64 vCPUs), so its spread there is
# 1 or 2 per CPU rather than 0 or 1.
big_boot() {
	local smp=${VM_BIG_SMP:-64}
	boot "$kver gicv3 ${smp}cpu 4 nodes pci-node 1" -g 3 -c "$smp" --numa 4 --pci-node 1 --extra-rng 8 -r '^TestBig' \
		-l "$CACHE/logs/test-$kver-gicv3-${smp}cpu-numa4-pci1.log"
}

case $what in
test)
	smp=${VM_SMP:-4}
	smp2=$smp
	[ "$smp2" -le 8 ] || smp2=8
	for series in ${VM_KERNELS:-newest 6.1}; do
		if ! prepare "$series" "$@"; then
			summary+=("kernel $series: FAIL (fetch or initramfs)")
			failed=1
			continue
		fi
		boot "$kver gicv3 ${smp}cpu" -g 3 -c "$smp" -l "$CACHE/logs/test-$kver-gicv3-${smp}cpu.log"
		boot "$kver gicv2 ${smp2}cpu" -g 2 -c "$smp2" -l "$CACHE/logs/test-$kver-gicv2-${smp2}cpu.log"
		if [ "$series" = newest ] && [ "${VM_NUMA_TEST:-1}" != 0 ]; then numa_boot; fi
		if [ "$series" = newest ] && [ "${VM_BIG_TEST:-1}" != 0 ]; then big_boot; fi
	done
	;;
numa)
	if prepare newest "$@"; then
		numa_boot
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
	;;
big)
	if prepare newest "$@"; then
		big_boot
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
	;;
capture)
	if prepare newest "$@"; then
		boot "capture $kver gicv3" -g 3 -c 4 -q -C gicv3-4cpu,gicv3-4cpu-cpu2-offline -l "$CACHE/logs/capture-$kver-gicv3-4cpu.log"
		boot "capture $kver gicv2" -g 2 -c 4 -q -C gicv2-4cpu -l "$CACHE/logs/capture-$kver-gicv2-4cpu.log"
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
	;;
*)
	echo "usage: $0 test|numa|big|capture TEST_BINARY..." >&2
	exit 2
	;;
esac

echo "== irqshift VM $what summary =="
printf '  %s\n' "${summary[@]}"
if [ $failed = 0 ]; then
	echo "IRQSHIFT VM $what: PASS"
else
	echo "IRQSHIFT VM $what: FAIL"
fi
exit $failed
