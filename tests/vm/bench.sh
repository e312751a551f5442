#!/bin/bash
# bench.sh: the daemon's reaction time in the arm64 VM, behind `make bench-vm`.
#
# usage: tests/vm/bench.sh TEST_BINARY...
#
# For each configuration in $BENCH_VM_CONFIGS it fetches the kernel (fetch.sh), builds its
# initramfs (mkinitramfs.sh, as suite.sh does), boots it with run.sh running only $BENCH_VM_RUN
# (on a big VM $BENCH_VM_BIG_RUN) with IRQSHIFT_VM_CHURN=$BENCH_VM_CHURN random hotplug steps,
# then parses the marker lines of TestDaemonHotplug or TestBigDaemonHotplug (REACTION-MS,
# REACTION-MS-SINGLE, REACTION-MS-BURST, HOTPLUG-WRITE-MS) from the console log and prints, per
# kernel, GIC and CPU count, n, median, p90 and max in ms.
#
# Nothing here is a pass/fail judgement of speed: the figures are printed for docs/BENCHMARKS.md.
# The exit status is 1 when a boot failed (the test failed or hung) or printed no figures.
#
# Environment:
#   BENCH_VM_CONFIGS  space-separated KERNEL:GIC or KERNEL:GIC:CPUS; KERNEL as in VM_KERNELS
#                     (`newest` = the newest arm64 kernel apt knows, or KERNEL_PKG; else a series
#                     such as 6.1), GIC 3 or 2, CPUS the vCPUs (default VM_SMP). 32 or more CPUS
#                     is the big VM of suite.sh (4 nodes, PCI on node 1, 8 extra virtio-rng-pci,
#                     single-threaded TCG, GICv3 only): `newest:3:64`. Default
#                     "newest:3 newest:2 6.1:3" (6.12 GICv3, 6.12 GICv2, 6.1 GICv3 on bookworm,
#                     4 vCPUs).
#   BENCH_VM_CHURN    random hotplug steps of TestDaemonHotplug/churn (IRQSHIFT_VM_CHURN), default 200
#   BENCH_VM_RUN      -test.run regex, default ^TestDaemonHotplug$
#   BENCH_VM_BIG_RUN  -test.run regex on a big VM, default ^TestBigDaemonHotplug$
#   BENCH_VM_BANS     0 leaves out the second boot of each small configuration, which runs the ban
#                     tests (TestBanFileLikeCRIO, TestIsolatedPartition) for BENCH_VM_BAN_ROUNDS
#                     (default 20) rounds of ban and free each and prints their BAN-REACTION-MS
#                     figures (the daemon's reaction_ms of reason=bans settles)
#   BENCH_VM_BUSY     0 leaves out the busy boot of each small GICv3 configuration; `only` runs
#                     nothing else. That boot (run.sh --busy $BENCH_VM_BUSY_DEVICES, default 3) runs
#                     TestBusyBench with every busy port read and prints, per placement, the busiest
#                     CPU's share of the busy interrupts (BUSY-SHARE, from /proc/interrupts over
#                     $BENCH_VM_BUSY_WINDOW, default 10s): the kernel's own placement, the daemon at
#                     --balance count and at --balance load, and `rebalance --sample 1s` at each;
#                     BENCH_VM_BUSY_ROUNDS (default 1) repeats all but the kernel's
#   BENCH_VM_APPEND   more kernel command line (e.g. IRQSHIFT_VM_SEED=1 IRQSHIFT_VM_WATCH_ARGS=...)
#   VM_SMP            CPUs (default 4; GICv2 capped at 8), VM_TIMEOUT (s per boot, default 1200)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$here/.cache}
[ $# -gt 0 ] || { echo "usage: $0 TEST_BINARY..." >&2; exit 2; }

configs=${BENCH_VM_CONFIGS:-newest:3 newest:2 6.1:3}
churn=${BENCH_VM_CHURN:-200}
testrun=${BENCH_VM_RUN:-^TestDaemonHotplug\$}
bigrun=${BENCH_VM_BIG_RUN:-^TestBigDaemonHotplug\$}
# bigCPUs is big_test.go's bigMinCPUs: from there on the VM gets the big test's NUMA layout.
bigCPUs=32
smp=${VM_SMP:-4}
tmo=${VM_TIMEOUT:-1200}
failed=0
rows=()
busyrows=()
notes=()
busymode=${BENCH_VM_BUSY:-1}

# prepare SERIES: fetch the kernel and build its initramfs once; sets kdir, kver, initrd.
declare -A prepared
prepare() {
	local series=$1 out
	shift
	if [ -n "${prepared[$series]:-}" ]; then
		read -r kdir kver initrd <<<"${prepared[$series]}"
		return 0
	fi
	if [ "$series" = newest ]; then
		out=$(bash "$here/fetch.sh") || return 1
	else
		out=$(env -u KERNEL_PKG KERNEL_SERIES="$series" FETCH_SET_CURRENT=0 bash "$here/fetch.sh") || return 1
	fi
	kdir=$(printf '%s\n' "$out" | sed -n 's/^KERNEL_DIR=//p' | tail -n1)
	[ -n "$kdir" ] || return 1
	kver=$(basename "$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)")
	kver=${kver#vmlinuz-}
	initrd=$CACHE/initrd-$kver.gz
	bash "$here/mkinitramfs.sh" -k "$kdir" -o "$initrd" "$@" || return 1
	prepared[$series]="$kdir $kver $initrd"
}

# busyfigures LOG KIND: "n mean min max rate placement" of the BUSY-SHARE lines of kind=KIND in
# LOG (rate: the busy interrupts per second, mean; placement: the busy IRQs' CPUs in the last).
busyfigures() {
	tr -d '\r' <"$1" | awk -v k="$2" '
		$0 ~ / BUSY-SHARE / && index($0, " kind=" k " ") > 0 {
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			n++; s += v["share"]; r += v["rate"]; where = v["irqs"]
			if (n == 1 || v["share"] < lo) lo = v["share"]
			if (n == 1 || v["share"] > hi) hi = v["share"]
		}
		END { if (n) printf "%d %.3f %.3f %.3f %.1f %s\n", n, s / n, lo, hi, r / n, where }'
}

# figures LOG MARKER [KIND]: "n median p90 max" of the last MARKER line in LOG (with kind=KIND when
# given), or nothing.
figures() {
	tr -d '\r' <"$1" | awk -v m="$2" -v k="${3:-}" '
		{ for (i = 1; i <= NF; i++) if ($i == m && (k == "" || index($0, " kind=" k " ") > 0)) { line = $0; break } }
		END {
			if (line == "") exit
			split(line, f, " ")
			for (i in f) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
			printf "%s %s %s %s\n", v["n"], v["median"], v["p90"], v["max"]
		}'
}

for cfg in $configs; do
	IFS=: read -r series gic c extra <<<"$cfg"
	case $gic in 2 | 3) ;; *) echo "bench: bad configuration $cfg (want KERNEL:GIC or KERNEL:GIC:CPUS, GIC 3 or 2)" >&2; exit 2 ;; esac
	if [ -n "$extra" ] || ! [[ ${c:-$smp} =~ ^[0-9]+$ ]]; then
		echo "bench: bad configuration $cfg (want KERNEL:GIC or KERNEL:GIC:CPUS)" >&2
		exit 2
	fi
	if [ -z "$c" ]; then
		c=$smp
		if [ "$gic" = 2 ] && [ "$c" -gt 8 ]; then c=8; fi
	fi
	run=$testrun
	layout=()
	cpus=$c      # the table's cpus column
	vm=${c}cpu   # the log's and the notes' name
	if [ "$c" -ge $bigCPUs ]; then
		[ "$gic" = 3 ] || { echo "bench: $cfg: a big VM ($c CPUs) needs GICv3 (GICv2 allows 8)" >&2; exit 2; }
		run=$bigrun
		layout=(--numa 4 --pci-node 1 --extra-rng 8)
		cpus=$c-numa4
		vm=${c}cpu-numa4-pci1
	fi
	if ! prepare "$series" "$@"; then
		notes+=("kernel $series: FAIL (fetch or initramfs)")
		failed=1
		continue
	fi
	if [ "$busymode" != 0 ] && [ "$gic" = 3 ] && [ "$c" -lt $bigCPUs ]; then
		ulog=$CACHE/logs/bench-busy-$kver-gicv$gic-$vm.log
		t=$(date +%s)
		status=PASS
		if ! bash "$here/run.sh" -q -k "$kdir" -i "$initrd" -g "$gic" -c "$c" -t "$tmo" -l "$ulog" --busy "${BENCH_VM_BUSY_DEVICES:-3}" \
			-r '^TestBusyBench$' -a IRQSHIFT_VM_BUSY_BENCH=1 -a "IRQSHIFT_VM_BUSY_ROUNDS=${BENCH_VM_BUSY_ROUNDS:-1}" \
			-a "IRQSHIFT_VM_BUSY_WINDOW=${BENCH_VM_BUSY_WINDOW:-10s}" ${BENCH_VM_APPEND:+-a "$BENCH_VM_APPEND"}; then
			status=FAIL
			failed=1
		fi
		notes+=("$kver gicv$gic $vm busy ${BENCH_VM_BUSY_DEVICES:-3}: $status in $(($(date +%s) - t))s, log $ulog")
		for kind in kernel daemon-count daemon-load rebalance-count rebalance-load; do
			f=$(busyfigures "$ulog" "$kind")
			if [ -z "$f" ]; then
				notes+=("$kver gicv$gic $vm: no BUSY-SHARE kind=$kind in $ulog")
				failed=1
				continue
			fi
			read -r n mean lo hi rate where <<<"$f"
			busyrows+=("$(printf '%-24s %-4s %-5s %-16s %3s %6s %6s %6s %7s  %s' "$kver" "v$gic" "$c" "$kind" "$n" "$mean" "$lo" "$hi" "$rate" "$where")")
		done
	fi
	[ "$busymode" != only ] || continue
	log=$CACHE/logs/bench-$kver-gicv$gic-$vm.log
	t=$(date +%s)
	load0=$(cut -d' ' -f1 /proc/loadavg)
	status=PASS
	if ! bash "$here/run.sh" -q -k "$kdir" -i "$initrd" -g "$gic" -c "$c" "${layout[@]}" -t "$tmo" -l "$log" -r "$run" \
		-a "IRQSHIFT_VM_CHURN=$churn" ${BENCH_VM_APPEND:+-a "$BENCH_VM_APPEND"}; then
		status=FAIL
		failed=1
	fi
	secs=$(($(date +%s) - t))
	load1=$(cut -d' ' -f1 /proc/loadavg)
	seed=$(tr -d '\r' <"$log" | sed -n 's/.*CHURN seed=\([0-9]*\) steps=\([0-9]*\).*/seed=\1 steps=\2/p' | tail -n1)
	notes+=("$kver gicv$gic $vm: $status in ${secs}s, host load average $load0 before, $load1 after, churn ${seed:-?}, log $log")
	got=0
	for what in REACTION-MS:all REACTION-MS-SINGLE:single REACTION-MS-BURST:burst HOTPLUG-WRITE-MS:write; do
		f=$(figures "$log" "${what%%:*}")
		[ -n "$f" ] || continue
		got=1
		read -r n med p90 mx <<<"$f"
		rows+=("$(printf '%-24s %-4s %-9s %-7s %5s %8s %8s %8s' "$kver" "v$gic" "$cpus" "${what##*:}" "$n" "$med" "$p90" "$mx")")
	done
	if [ $got = 0 ]; then
		notes+=("$kver gicv$gic $vm: no REACTION-MS lines in $log")
		failed=1
	fi
	if [ "${BENCH_VM_BANS:-1}" != 0 ] && [ "$c" -lt $bigCPUs ]; then
		blog=$CACHE/logs/bench-bans-$kver-gicv$gic-$vm.log
		if ! bash "$here/run.sh" -q -k "$kdir" -i "$initrd" -g "$gic" -c "$c" -t "$tmo" -l "$blog" \
			-r '^(TestBanFileLikeCRIO|TestIsolatedPartition)$' -a "IRQSHIFT_VM_BAN_ROUNDS=${BENCH_VM_BAN_ROUNDS:-20}"; then
			notes+=("$kver gicv$gic $vm: the ban boot FAILED, log $blog")
			failed=1
		fi
		for kind in file partition; do
			f=$(figures "$blog" BAN-REACTION-MS "$kind")
			if [ -z "$f" ]; then
				notes+=("$kver gicv$gic $vm: no BAN-REACTION-MS kind=$kind (the partition test skips on kernels without cpuset.cpus.isolated)")
				continue
			fi
			read -r n med p90 mx <<<"$f"
			rows+=("$(printf '%-24s %-4s %-9s %-7s %5s %8s %8s %8s' "$kver" "v$gic" "$cpus" "ban-$kind" "$n" "$med" "$p90" "$mx")")
		done
	fi
done

if [ "$busymode" != only ]; then
	echo "== irqshift VM bench: daemon reaction (reaction_ms of msg=settled), $testrun (big VMs $bigrun), IRQSHIFT_VM_CHURN=$churn =="
	printf '%-24s %-4s %-9s %-7s %5s %8s %8s %8s\n' kernel gic cpus settles n median p90 max
	printf '%s\n' "${rows[@]}"
	echo "(ms; all = every settle caused by a CPU event, single = one write, burst = back-to-back writes (2; up to half the CPUs on a big VM);"
	echo " write = how long one echo 0|1 > cpuN/online took in the guest: the emulator's speed during the run;"
	echo " ban-file, ban-partition = a ban file rewritten as CRI-O does / an isolated cpuset partition made or dissolved: from the daemon seeing it to its last write;"
	echo " cpus N-numa4 = the big VM, single-threaded TCG, so several times slower per event than the small ones;"
	echo " other work on the host ($(nproc) cores; qemu itself adds 1-2 to the load average) slows the guest and every figure)"
fi
if [ ${#busyrows[@]} -gt 0 ]; then
	echo "== irqshift VM bench: busy IRQs, the busiest CPU's share of their interrupts (TestBusyBench, ${BENCH_VM_BUSY_DEVICES:-3} busy devices, window ${BENCH_VM_BUSY_WINDOW:-10s}) =="
	printf '%-24s %-4s %-5s %-16s %3s %6s %6s %6s %7s  %s\n' kernel gic cpus placement n share min max irq/s "busy IRQ@CPU:interrupts (last window)"
	printf '%s\n' "${busyrows[@]}"
	echo "(share = the busiest CPU's interrupts of the busy IRQs / all of theirs, 1/${BENCH_VM_BUSY_DEVICES:-3} at best with equal rates; kernel = where the"
	echo " kernel put them at boot; daemon-* = irqshift watch --check-interval 2s at --balance count / load, after 3 periodic checks;"
	echo " rebalance-* = one irqshift rebalance --sample 1s from the kernel's placement; n = windows measured)"
fi
printf '  %s\n' "${notes[@]}"
exit $failed
