#!/bin/bash
# run.sh: boot the arm64 test VM under qemu-system-aarch64 (TCG) and report its result.
#
# usage: tests/vm/run.sh [options]
#   -g, --gic 3|2         GIC version (env VM_GIC, default 3). GICv2 has no ITS and allows <= 8 CPUs.
#   -c, --smp N           number of CPUs (env VM_SMP, default 4)
#   -m, --mode MODE       test (default) | capture | script | shell | trivial  (see mkinitramfs.sh)
#   -C, --capture NAMES   capture mode: comma-separated fixture names, e.g. gicv3-4cpu,gicv3-4cpu-cpu2-offline;
#                         each is extracted to tests/testdata/vm-NAME (env VM_TESTDATA for another root)
#   -r, --run REGEX       only run tests matching REGEX (-test.run)
#   -i, --initrd FILE     initramfs (default $VM_CACHE/initrd.gz)
#   -k, --kernel-dir DIR  unpacked kernel package (default: the one fetch.sh chose)
#   -t, --timeout SEC     kill the guest after SEC seconds (env VM_TIMEOUT, default 600)
#   -l, --log FILE        console log (default $VM_CACHE/logs/MODE-gicvN-Ncpu.log)
#   -q, --quiet           do not stream the console to stdout (env VM_QUIET=1)
#   -a, --append ARGS     extra kernel command line (env VM_APPEND)
# Exit status: 0 when the guest printed `IRQSHIFT-VM-RESULT: PASS`, 1 otherwise (FAIL, no marker,
# timeout, qemu error). On failure the log's tail is printed with the path of the full log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${VM_CACHE:-$here/.cache}
gic=${VM_GIC:-3}
smp=${VM_SMP:-4}
mode="test"
capture=
testrun=
initrd=$CACHE/initrd.gz
kdir=${KERNEL_DIR:-}
tmo=${VM_TIMEOUT:-600}
log=
quiet=${VM_QUIET:-0}
append=${VM_APPEND:-}
testdata=${VM_TESTDATA:-$root/tests/testdata}

die() { printf 'run: FAILED: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	-g | --gic) gic=$2; shift ;;
	-c | --smp) smp=$2; shift ;;
	-m | --mode) mode=$2; shift ;;
	-C | --capture) capture=$2; mode=capture; shift ;;
	-r | --run) testrun=$2; shift ;;
	-i | --initrd) initrd=$2; shift ;;
	-k | --kernel-dir) kdir=$2; shift ;;
	-t | --timeout) tmo=$2; shift ;;
	-l | --log) log=$2; shift ;;
	-q | --quiet) quiet=1 ;;
	-a | --append) append="$append $2"; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (try --help)" ;;
	esac
	shift
done

case $gic in 2 | 3) ;; *) die "--gic must be 2 or 3" ;; esac
if ! [[ $smp =~ ^[0-9]+$ ]] || [ "$smp" -lt 1 ]; then die "--smp must be a number >= 1"; fi
if [ "$gic" = 2 ] && [ "$smp" -gt 8 ]; then die "GICv2 supports at most 8 CPUs (asked for $smp)"; fi
if [[ $testrun =~ [[:space:]] ]]; then die "--run REGEX may not contain spaces (it goes on the kernel command line)"; fi

if [ -z "$kdir" ]; then
	[ -f "$CACHE/kernel.current" ] || die "no kernel: run tests/vm/fetch.sh first"
	kdir=$(cat "$CACHE/kernel.current")
fi
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* under $kdir: run tests/vm/fetch.sh"
[ -f "$initrd" ] || die "no initramfs $initrd: run tests/vm/mkinitramfs.sh"
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not installed: run tests/vm/fetch.sh"

name="$mode-gicv$gic-${smp}cpu"
mkdir -p "$CACHE/logs"
[ -n "$log" ] || log=$CACHE/logs/$name.log
mkdir -p "$(dirname "$log")"

# A small raw disk for virtio-blk (its per-CPU queues are the managed IRQs).
disk=$CACHE/disk.img
if [ ! -f "$disk" ]; then
	truncate -s 8M "$disk.tmp"
	printf 'irqshift-vm-disk\n' | dd of="$disk.tmp" conv=notrunc status=none
	mv "$disk.tmp" "$disk"
fi

cmdline="console=ttyAMA0 rdinit=/init panic=-1 quiet irqshift.mode=$mode irqshift.gic=$gic"
[ -n "$capture" ] && cmdline="$cmdline irqshift.capture=$capture"
[ -n "$testrun" ] && cmdline="$cmdline irqshift.testrun=$testrun"
[ -n "$append" ] && cmdline="$cmdline $append"

# shellcheck disable=SC2054 # commas are qemu option syntax
qemu=(qemu-system-aarch64
	-M "virt,gic-version=$gic" -cpu cortex-a72 -smp "$smp" -m 1024
	-nographic -no-reboot
	-kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline"
	-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile=
	-device virtio-rng-pci
	-drive "file=$disk,if=none,format=raw,id=d0,readonly=on" -device virtio-blk-pci,drive=d0
	-device virtio-rng-device)

echo "run: $name: kernel $(basename "$vmlinuz"), initrd $(basename "$initrd"), timeout ${tmo}s, log $log" >&2
start=$(date +%s.%N)

if [ "$mode" = shell ]; then
	# Interactive: the console is this terminal (Ctrl-A X quits qemu).
	"${qemu[@]}"
	exit $?
fi

: >"$log"
qpid=
tpid=
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		sleep 1
		kill -KILL "$qpid" 2>/dev/null || true
	fi
	if [ -n "$tpid" ]; then kill "$tpid" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM HUP

# timeout(1) kills qemu after $tmo s (and SIGKILLs it 5 s later); our trap kills it if we die.
timeout -k 5 "$tmo" "${qemu[@]}" </dev/null >"$log" 2>&1 &
qpid=$!
if [ "$quiet" != 1 ]; then
	tail -s 0.2 -n +1 -f --pid="$qpid" "$log" 2>/dev/null | sed -u 's/\r$//' &
	tpid=$!
fi
set +e
wait "$qpid"
qrc=$?
set -e
qpid=
if [ -n "$tpid" ]; then
	# tail exits by itself once qemu is gone (--pid); it has printed everything by then.
	wait "$tpid" 2>/dev/null || true
	tpid=
fi
secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')

result=$(tr -d '\r' <"$log" | sed -n 's/^IRQSHIFT-VM-RESULT: \([A-Z]*\).*/\1/p' | tail -n1)
why=
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	why="timed out after ${tmo}s (guest killed)"
elif [ -z "$result" ]; then
	why="no IRQSHIFT-VM-RESULT marker (qemu exit $qrc)"
elif [ "$result" != PASS ]; then
	why="guest reported $result"
fi

# Fixture capture: extract every base64 tarball printed between the markers.
if [ "$mode" = capture ] && [ -z "$why" ]; then
	for cname in ${capture//,/ }; do
		b64=$(mktemp)
		tr -d '\r' <"$log" | awk -v n="vm-$cname" '
			$1 == "IRQSHIFT-VM-CAPTURE-END" && $2 == n { on = 0 }
			on { print }
			$1 == "IRQSHIFT-VM-CAPTURE-BEGIN" && $2 == n { on = 1 }' >"$b64"
		want=$(tr -d '\r' <"$log" | awk -v n="vm-$cname" '$1 == "IRQSHIFT-VM-CAPTURE-BEGIN" && $2 == n { print $3 }' | tail -n1)
		tgz=$(mktemp)
		if ! base64 -d "$b64" >"$tgz" 2>/dev/null || [ ! -s "$tgz" ]; then
			why="capture vm-$cname: no or bad base64 between the markers"
		elif [ "$(md5sum <"$tgz" | cut -d' ' -f1)" != "$want" ]; then
			why="capture vm-$cname: checksum mismatch (console garbled?)"
		else
			mkdir -p "$testdata"
			rm -rf "${testdata:?}/vm-$cname"
			tar -xzf "$tgz" -C "$testdata" --no-same-owner
			echo "run: captured $(find "$testdata/vm-$cname" -type f | wc -l) files into $(realpath --relative-to="$root" "$testdata/vm-$cname")" >&2
		fi
		rm -f "$b64" "$tgz"
		[ -z "$why" ] || break
	done
fi

if [ -n "$why" ]; then
	echo "run: $name FAILED in ${secs}s: $why" >&2
	echo "----- last 60 lines of $log -----" >&2
	tr -d '\r' <"$log" | tail -n 60 >&2
	echo "----- full log: $log -----" >&2
	exit 1
fi
echo "run: $name PASS in ${secs}s (log $log)" >&2
