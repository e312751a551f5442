#!/bin/bash
# suite.sh: the VM runs behind `make vm-test` and `make vm-capture`.
#
# usage: tests/vm/suite.sh test|busy|rules|gicv5|numa|big|systemd|capture TEST_BINARY...
#
#   test     for each kernel in $VM_KERNELS: fetch it, build its initramfs, boot GICv3 (-smp 4), and
#            GICv2 (-smp 4) for the kernels in $VM_GICV2_KERNELS (default `newest`), run the test
#            binaries in each; for `newest` also the GICv5 VM, the NUMA configuration and the big
#            one (below; VM_GICV5_TEST=0, VM_NUMA_TEST=0 and VM_BIG_TEST=0 leave them out); fail
#            if any run fails. The newest kernel's GICv3 boot and the NUMA one get $VM_BUSY_TEST
#            (default 3; 0 leaves them out) busy devices (run.sh --busy) for busy_test.go. The
#            newest kernel's GICv3 boot alone also runs rules_test.go (run.sh -a
#            IRQSHIFT_VM_RULES=1; elsewhere those tests skip).
#   busy     only the busy tests, with the newest kernel: "GICv3 4 vCPUs busy 3" (run.sh -g 3 -c 4
#            --busy 3 -r '^TestBusy'), the tests of busy_test.go but the NUMA one.
#   rules    only the tests of rules_test.go, with the newest kernel: "GICv3 4 vCPUs busy 3 rules"
#            (run.sh -g 3 -c 4 --busy 3 -a IRQSHIFT_VM_RULES=1 -r '^TestRules|^TestForeign'), the
#            boot of `test` that runs them, limited to them.
#   gicv5    only the GICv5 VM, with the newest kernel: qemu-newest.sh builds (once, cached) a
#            trixie chroot with trixie-backports' QEMU (11.1: `-M virt,gic-version=x-5`, TCG, no
#            ITS), then "GICv5 4 vCPUs" (run.sh -g 5 -c 4 --qemu-chroot DIR -r '^TestGICv5'), the
#            tests of gicv5_test.go (the others assume MSIs, managed virtio-blk queues and a
#            GICv2/v3). A chroot that cannot be built is a FAIL, never a skip.
#   numa     only the NUMA configuration, with the newest kernel: "GICv3 8 vCPUs 2 nodes PCI on
#            node 1" (run.sh -g 3 -c 8 --numa 2 --pci-node 1 --extra-rng 4 --busy 3 -r '^TestNUMA'),
#            the tests of numa_test.go and TestNUMABusyDaemon (the others assume no NUMA placement
#            and 4 CPUs).
#   big      only the big configuration, with the newest kernel: "GICv3 64 vCPUs 4 nodes PCI on
#            node 1" (run.sh -g 3 -c 64 --numa 4 --pci-node 1 --extra-rng 8 -r '^TestBig', which
#            runs single-threaded TCG above 16 vCPUs), the tests of big_test.go; VM_BIG_SMP sets
#            its vCPUs (default 64; 4 nodes whatever the count), VM_BIG_RUN the tests (default
#            '^TestBig'), VM_BIG_BUSY its busy devices (default 0; `make vm-test-big128`).
#   systemd  the systemd VM, with the newest kernel: rootfs.sh's Debian arm64 root file system
#            (built once, cached) booted with systemd as PID 1, GICv3, 4 vCPUs; installs $VM_DEB
#            (bin/deb/irqshift_*_arm64.deb from `make deb`) with dpkg and runs systemd_test.go
#            (TestSystemd*) as a service (`make test-systemd`).
#   capture  with the default (newest) kernel: refresh tests/testdata/vm-gicv3-4cpu,
#            vm-gicv3-4cpu-cpu2-offline (one GICv3 boot) and vm-gicv2-4cpu (one GICv2 boot).
#
# VM_KERNELS: space-separated; `newest` = KERNEL_PKG if set, else the newest arm64 kernel that the
# host's lists or fetch.sh's private lists (trixie-backports, sid) offer: 7.x; anything else is a
# series such as 6.12 (bookworm's newest) or 6.1 (Debian 12's stock kernel). Default
# "newest 6.12 6.1": the 7.x kernel, and both the EPERM (6.12) and EIO (6.1) kernels.
# VM_SMP overrides -smp for the test runs (GICv2 runs are capped at 8 CPUs), not for the NUMA or
# the big one.
set -uo pipefail
# The configurations are the suite's: run.sh's NUMA and TCG variables would change every boot.
unset VM_NUMA VM_PCI_NODE VM_EXTRA_RNG VM_BUSY VM_TCG_SINGLE VM_QEMU_CHROOT

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$here/.cache}
what=${1:-}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 test|busy|rules|gicv5|numa|big|systemd|capture TEST_BINARY..." >&2; exit 2; }
busyn=${VM_BUSY_TEST:-3}
[[ $busyn =~ ^[0-9]+$ ]] || { echo "VM_BUSY_TEST=$busyn: want a number of busy devices" >&2; exit 2; }

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

# gicv5_boot: the GICv5 VM (newest kernel only): the QEMU chroot (built once, about a minute;
# a failure is a FAIL), then one boot running only TestGICv5*, about 90 s on the 2-core host.
gicv5_boot() {
	local t out qchroot qver
	t=$(now)
	if ! out=$(bash "$here/qemu-newest.sh"); then
		summary+=("$kver gicv5: FAIL (qemu-newest.sh could not build the trixie chroot with trixie-backports' QEMU; see its FAILED line above)")
		failed=1
		return
	fi
	qchroot=$(printf '%s\n' "$out" | sed -n 's/^QEMU_CHROOT=//p' | tail -n1)
	qver=$(printf '%s\n' "$out" | sed -n 's/^QEMU_VERSION=//p' | tail -n1)
	if [ -z "$qchroot" ] || [ -z "$qver" ]; then
		summary+=("$kver gicv5: FAIL (qemu-newest.sh printed no QEMU_CHROOT= or QEMU_VERSION=)")
		failed=1
		return
	fi
	summary+=("QEMU $qver chroot: $(since "$t")s")
	boot "$kver gicv5 4cpu (QEMU $qver x-5)" -g 5 -c 4 --qemu-chroot "$qchroot" -r '^TestGICv5' \
		-l "$CACHE/logs/test-$kver-gicv5-4cpu.log"
}

# numa_boot: the NUMA configuration (newest kernel only; about 30 s on the 2-core host, 60 s with
# the busy devices' test).
numa_boot() {
	boot "$kver gicv3 8cpu 2 nodes pci-node 1$([ "$busyn" -gt 0 ] && echo " busy $busyn")" -g 3 -c 8 --numa 2 --pci-node 1 \
		--extra-rng 4 --busy "$busyn" -r '^TestNUMA' -l "$CACHE/logs/test-$kver-gicv3-8cpu-numa2-pci1.log"
}

# big_boot: the big configuration (newest kernel only; about 90 s at 64 vCPUs on the 2-core host).
# 8 more rngs give the PCI node more IRQs (21) than CPUs (16 at 64 vCPUs), so its spread there is
# 1 or 2 per CPU rather than 0 or 1.
big_boot() {
	local smp=${VM_BIG_SMP:-64} bbusy=${VM_BIG_BUSY:-0}
	boot "$kver gicv3 ${smp}cpu 4 nodes pci-node 1$([ "$bbusy" -gt 0 ] && echo " busy $bbusy")" -g 3 -c "$smp" --numa 4 \
		--pci-node 1 --extra-rng 8 --busy "$bbusy" -r "${VM_BIG_RUN:-^TestBig}" -l "$CACHE/logs/test-$kver-gicv3-${smp}cpu-numa4-pci1.log"
}

# systemd_boot TEST_BINARY...: the systemd VM (newest kernel): the root file system (built once,
# a few minutes), an initramfs carrying the .deb and the tests, one boot.
systemd_boot() {
	local deb=${VM_DEB:-} rootfs t
	[ -f "$deb" ] || { summary+=("systemd: FAIL (no package: VM_DEB=$deb; make deb)"); failed=1; return; }
	t=$(now)
	rootfs=$(bash "$here/rootfs.sh" -k "$kdir" | sed -n 's/^ROOTFS=//p' | tail -n1)
	if [ -z "$rootfs" ]; then
		summary+=("systemd: FAIL (rootfs.sh)")
		failed=1
		return
	fi
	summary+=("rootfs: $(since "$t")s")
	initrd=$CACHE/initrd-systemd-$kver.gz
	if ! bash "$here/mkinitramfs.sh" -k "$kdir" -o "$initrd" -d "$deb" "$@"; then
		summary+=("systemd: FAIL (initramfs)")
		failed=1
		return
	fi
	boot "$kver gicv3 4cpu systemd $(basename "$deb")" -g 3 -c 4 -m systemd --rootfs "$rootfs" \
		-l "$CACHE/logs/test-$kver-gicv3-4cpu-systemd.log"
}

case $what in
test)
	smp=${VM_SMP:-4}
	smp2=$smp
	[ "$smp2" -le 8 ] || smp2=8
	for series in ${VM_KERNELS:-newest 6.12 6.1}; do
		if ! prepare "$series" "$@"; then
			summary+=("kernel $series: FAIL (fetch or initramfs)")
			failed=1
			continue
		fi
		if [ "$series" = newest ] && [ "$busyn" -gt 0 ]; then
			boot "$kver gicv3 ${smp}cpu busy $busyn rules" -g 3 -c "$smp" --busy "$busyn" -a IRQSHIFT_VM_RULES=1 \
				-l "$CACHE/logs/test-$kver-gicv3-${smp}cpu.log"
		elif [ "$series" = newest ]; then
			boot "$kver gicv3 ${smp}cpu rules" -g 3 -c "$smp" -a IRQSHIFT_VM_RULES=1 -l "$CACHE/logs/test-$kver-gicv3-${smp}cpu.log"
		else
			boot "$kver gicv3 ${smp}cpu" -g 3 -c "$smp" -l "$CACHE/logs/test-$kver-gicv3-${smp}cpu.log"
		fi
		if [[ " ${VM_GICV2_KERNELS:-newest} " == *" $series "* ]]; then
			boot "$kver gicv2 ${smp2}cpu" -g 2 -c "$smp2" -l "$CACHE/logs/test-$kver-gicv2-${smp2}cpu.log"
		fi
		if [ "$series" = newest ] && [ "${VM_GICV5_TEST:-1}" != 0 ]; then gicv5_boot; fi
		if [ "$series" = newest ] && [ "${VM_NUMA_TEST:-1}" != 0 ]; then numa_boot; fi
		if [ "$series" = newest ] && [ "${VM_BIG_TEST:-1}" != 0 ]; then big_boot; fi
	done
	;;
busy)
	if prepare newest "$@"; then
		boot "$kver gicv3 4cpu busy $busyn" -g 3 -c 4 --busy "$busyn" -r '^TestBusy' \
			-l "$CACHE/logs/test-$kver-gicv3-4cpu-busy.log"
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
	;;
rules)
	if prepare newest "$@"; then
		boot "$kver gicv3 4cpu busy $busyn rules" -g 3 -c 4 --busy "$busyn" -a IRQSHIFT_VM_RULES=1 -r '^TestRules|^TestForeign' \
			-l "$CACHE/logs/test-$kver-gicv3-4cpu-rules.log"
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
	;;
gicv5)
	if prepare newest "$@"; then
		gicv5_boot
	else
		summary+=("kernel: FAIL (fetch or initramfs)")
		failed=1
	fi
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
systemd)
	if prepare newest "$@"; then
		systemd_boot "$@"
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
	echo "usage: $0 test|busy|rules|gicv5|numa|big|systemd|capture TEST_BINARY..." >&2
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
