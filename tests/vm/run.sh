#!/bin/bash
# run.sh: boot the arm64 test VM under qemu-system-aarch64 (TCG) and report its result.
#
# usage: tests/vm/run.sh [options]
#   -g, --gic 3|2|5       GIC version (env VM_GIC, default 3). GICv2 has no ITS and allows <= 8 CPUs.
#                         5: QEMU's experimental GICv5 (-M virt,gic-version=x-5, -cpu max,pauth-impdef=on;
#                         QEMU 11.1+, TCG only, no ITS: the PCI devices use INTx, GICv5 SPIs). Bookworm's
#                         QEMU 7.2 has none: pass --qemu-chroot (qemu-newest.sh builds one).
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
#   -n, --numa N          N NUMA nodes (env VM_NUMA, default 0 = none): -m and -smp split evenly,
#                         node K gets CPUs K*smp/N..(K+1)*smp/N-1 and its share of the memory
#                         (-object memory-backend-ram + -numa node,...,memdev=)
#   -p, --pci-node K      put the PCI host bridge, so every PCI device and its MSIs, on node K (env
#                         VM_PCI_NODE; needs --numa >= 2): the machine's DTB is dumped with the
#                         same -M/-cpu/-smp/-m/-numa arguments (dumpdtb=), `numa-node-id = <K>;` is
#                         added to pcie@10000000 with dtc, and the guest boots with -dtb. The DTB
#                         is cached in $VM_CACHE/dtb/, keyed by those arguments and QEMU's version.
#   -x, --extra-rng N     N more virtio-rng-pci devices, more PCI MSIs to place (env VM_EXTRA_RNG)
#   -b, --busy N          N busy devices (env VM_BUSY): virtio-serial-pci K (K = 0..N-1) with one
#                         virtserialport named irqshift-busy.K on a pipe chardev whose host FIFOs
#                         (a temporary directory) are fed by `cat /dev/zero` and drained by `cat`;
#                         the feeders are killed when the VM ends, on every exit path. In the guest
#                         each is one movable MSI-X IRQ (virtioM-virtqueues, M its virtio index) that
#                         fires while its port (/dev/vportMp1) is read and is idle otherwise
#                         (busy_test.go; docs/KERNELS.md, "Busy IRQs in the VM").
#   -s, --single-thread   run every vCPU on one host thread (-accel tcg,thread=single; env
#                         VM_TCG_SINGLE=1). On by default above 16 CPUs (VM_TCG_SINGLE=0 or
#                         --multi-thread turns it off): multi-threaded TCG with more vCPUs than
#                         host cores stalls (64 vCPUs: 765 s to boot, RCU stalls; one thread: ~10 s).
#       --multi-thread    multi-threaded TCG (QEMU's default) whatever the CPU count
#       --rootfs IMG      also attach IMG (an ext4 image from rootfs.sh) as a virtio-blk disk, as a
#                         copy-on-write snapshot (QEMU's snapshot=on: the image never changes);
#                         mode systemd boots it with systemd as PID 1 (see guest/init)
#       --rootfs-writable write to IMG itself (rootfs.sh's second stage)
#       --qemu-chroot DIR run qemu-system-aarch64 inside the chroot DIR (env VM_QEMU_CHROOT), e.g. the
#                         trixie chroot with trixie-backports' QEMU that qemu-newest.sh builds. qemu
#                         runs in a private mount namespace (unshare -m): the chroot's /proc, /dev
#                         and a tmpfs on its /mnt holding bind mounts of the kernel, initrd, disk
#                         image(s) and DTB vanish with the qemu process; the chroot is not changed.
# With --numa or --pci-node the kernel command line also gets IRQSHIFT_VM_NUMA=N and
# IRQSHIFT_VM_PCI_NODE=K (for the tests, in /init's environment), and the log's default name the
# suffix -numaN[-pciK][-rngN]; with --busy N, IRQSHIFT_VM_BUSY=N and the suffix -busyN.
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
numa=${VM_NUMA:-0}
pcinode=${VM_PCI_NODE:-}
extrarng=${VM_EXTRA_RNG:-0}
busy=${VM_BUSY:-0}
tcgsingle=${VM_TCG_SINGLE:-auto}
rootfs=
rootfsrw=0
qchroot=${VM_QEMU_CHROOT:-}
mem=1024
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
	-n | --numa) numa=$2; shift ;;
	-p | --pci-node) pcinode=$2; shift ;;
	-x | --extra-rng) extrarng=$2; shift ;;
	-b | --busy) busy=$2; shift ;;
	-s | --single-thread) tcgsingle=1 ;;
	--multi-thread) tcgsingle=0 ;;
	--rootfs) rootfs=$2; shift ;;
	--rootfs-writable) rootfsrw=1 ;;
	--qemu-chroot) qchroot=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (try --help)" ;;
	esac
	shift
done

case $gic in 2 | 3 | 5) ;; *) die "--gic must be 2, 3 or 5" ;; esac
if ! [[ $smp =~ ^[0-9]+$ ]] || [ "$smp" -lt 1 ]; then die "--smp must be a number >= 1"; fi
if [ "$gic" = 2 ] && [ "$smp" -gt 8 ]; then die "GICv2 supports at most 8 CPUs (asked for $smp)"; fi
if [[ $testrun =~ [[:space:]] ]]; then die "--run REGEX may not contain spaces (it goes on the kernel command line)"; fi
if ! [[ $numa =~ ^[0-9]+$ ]]; then die "--numa must be a number of nodes (0 = no NUMA)"; fi
if [ "$numa" -gt "$smp" ]; then die "--numa $numa: more nodes than CPUs ($smp)"; fi
if [ "$numa" -gt 0 ] && [ $((mem / numa % 2)) != 0 ]; then die "--numa $numa: ${mem} MiB do not split into even MiB per node"; fi
if [ -n "$pcinode" ]; then
	[[ $pcinode =~ ^[0-9]+$ ]] || die "--pci-node must be a node number"
	[ "$numa" -ge 2 ] || die "--pci-node needs --numa N with N >= 2"
	[ "$pcinode" -lt "$numa" ] || die "--pci-node $pcinode: there are only nodes 0-$((numa - 1))"
fi
if ! [[ $extrarng =~ ^[0-9]+$ ]]; then die "--extra-rng must be a number"; fi
if ! [[ $busy =~ ^[0-9]+$ ]] || [ "$busy" -gt 8 ]; then die "--busy must be a number of devices, 0-8"; fi
case $tcgsingle in
auto) if [ "$smp" -gt 16 ]; then tcgsingle=1; else tcgsingle=0; fi ;;
0 | 1) ;;
*) die "VM_TCG_SINGLE must be 0, 1 or unset (auto: 1 above 16 CPUs)" ;;
esac

if [ -z "$kdir" ]; then
	[ -f "$CACHE/kernel.current" ] || die "no kernel: run tests/vm/fetch.sh first"
	kdir=$(cat "$CACHE/kernel.current")
fi
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* under $kdir: run tests/vm/fetch.sh"
[ -f "$initrd" ] || die "no initramfs $initrd: run tests/vm/mkinitramfs.sh"
[ -z "$rootfs" ] || [ -f "$rootfs" ] || die "no root file system image $rootfs: run tests/vm/rootfs.sh"
if [ -n "$qchroot" ]; then
	[ -d "$qchroot" ] || die "--qemu-chroot $qchroot: no such directory (tests/vm/qemu-newest.sh builds one)"
	qchroot=$(realpath "$qchroot")
	[ -x "$qchroot/usr/bin/qemu-system-aarch64" ] || die "--qemu-chroot $qchroot: no usr/bin/qemu-system-aarch64 in it"
	[ "$(id -u)" = 0 ] || die "--qemu-chroot needs root (chroot, unshare -m, mount)"
	command -v unshare >/dev/null || die "--qemu-chroot needs unshare (util-linux)"
else
	command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not installed: run tests/vm/fetch.sh"
fi

# qemu_plain ARGS...: qemu-system-aarch64 with no files to reach (--version, -M virt,help).
qemu_plain() {
	if [ -n "$qchroot" ]; then
		chroot "$qchroot" qemu-system-aarch64 "$@"
	else
		qemu-system-aarch64 "$@"
	fi
}
if [ "$gic" = 5 ] && ! qemu_plain -M virt,help 2>/dev/null | grep -q 'gic-version=.*x-5'; then
	if [ -n "$qchroot" ]; then
		die "-g 5: the QEMU in $qchroot ($(qemu_plain --version | head -n1)) offers no gic-version x-5"
	fi
	die "-g 5: this host's $(qemu_plain --version | head -n1) has no GICv5 (gic-version x-5; bookworm's QEMU 7.2 has none, QEMU 11.1 has): build trixie-backports' QEMU with tests/vm/qemu-newest.sh and pass --qemu-chroot DIR (its QEMU_CHROOT=)"
fi

name="$mode-gicv$gic-${smp}cpu"
[ "$numa" -gt 0 ] && name="$name-numa$numa"
[ -n "$pcinode" ] && name="$name-pci$pcinode"
[ "$extrarng" -gt 0 ] && name="$name-rng$extrarng"
[ "$busy" -gt 0 ] && name="$name-busy$busy"
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
[ "$numa" -gt 0 ] && cmdline="$cmdline IRQSHIFT_VM_NUMA=$numa"
[ -n "$pcinode" ] && cmdline="$cmdline IRQSHIFT_VM_PCI_NODE=$pcinode"
[ "$busy" -gt 0 ] && cmdline="$cmdline IRQSHIFT_VM_BUSY=$busy"
[ -n "$append" ] && cmdline="$cmdline $append"

# The machine: these arguments decide its device tree (see --pci-node).
gicarg=$gic
cpu=cortex-a72
if [ "$gic" = 5 ]; then
	# QEMU calls its GICv5 experimental (x-). -cpu max: an Armv9 CPU, as GICv5 machines will have
	# (QEMU 11.1 gives cortex-a72 the GICv5 CPU interface too, and 7.3 boots on it). pauth-impdef:
	# QEMU's own pointer-authentication algorithm, much cheaper under TCG than the architected QARMA.
	gicarg=x-5
	cpu=max,pauth-impdef=on
fi
machine=(-cpu "$cpu" -smp "$smp" -m "$mem")
if [ "$numa" -gt 0 ]; then
	for ((k = 0; k < numa; k++)); do
		lo=$((k * smp / numa))
		hi=$(((k + 1) * smp / numa - 1))
		size=$((mem / numa))
		[ $k = $((numa - 1)) ] && size=$((mem - (numa - 1) * (mem / numa)))
		machine+=(-object "memory-backend-ram,id=m$k,size=${size}M" -numa "node,nodeid=$k,cpus=$lo-$hi,memdev=m$k")
	done
fi

# The files qemu opens. With --qemu-chroot they are bind-mounted (inside qemu's own mount
# namespace, see qemu_cmd) at /mnt/irqshift-vm/N-NAME in the chroot: qpath VAR FILE sets VAR to
# the path qemu is to be given and records the bind.
binds=()
qkernel='' qinitrd='' qdisk='' qdtb='' qrootfs='' qtmp=''
qpath() {
	local src dst
	src=$(realpath "$2")
	if [ -z "$qchroot" ]; then
		printf -v "$1" '%s' "$src"
		return
	fi
	dst=/mnt/irqshift-vm/$((${#binds[@]} / 2))-$(basename "$src")
	binds+=("$src" "$dst")
	printf -v "$1" '%s' "$dst"
}
# qemu_cmd: the command that runs qemu-system-aarch64 (its arguments follow). In the chroot: a
# private mount namespace (unshare -m, no fork: qemu keeps the PID that timeout(1) and our trap
# signal) in which the chroot gets /proc, the host's /dev (rbind) and a tmpfs on /mnt with the
# binds; all of it vanishes with qemu, and nothing is mounted in the host's namespace.
# shellcheck disable=SC2016 # expanded by the inner bash
inchroot='set -e
root=$1 n=$2
shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mkdir -p "$root/mnt"
mount -t tmpfs -o mode=755,size=64k irqshift-vm "$root/mnt"
mkdir -p "$root/mnt/irqshift-vm"
while [ "$n" -gt 0 ]; do
	if [ -d "$1" ]; then mkdir -p "$root$2"; else : >"$root$2"; fi
	mount --bind "$1" "$root$2"
	shift 2
	n=$((n - 1))
done
exec chroot "$root" qemu-system-aarch64 "$@"'
qemu_cmd() {
	if [ -n "$qchroot" ]; then
		qemu_cmd=(unshare -m --propagation private bash -c "$inchroot" irqshift-qemu-chroot "$qchroot" $((${#binds[@]} / 2)) "${binds[@]}")
	else
		qemu_cmd=(qemu-system-aarch64)
	fi
}

# --pci-node K: QEMU's DT-booted virt machine gives every PCI device numa_node -1 (docs/KERNELS.md,
# "NUMA: a device's node and the kernel's default masks"); a numa-node-id in the host bridge's node
# puts them all on node K.
dtbargs=()
if [ -n "$pcinode" ]; then
	command -v dtc >/dev/null || die "dtc not installed (package device-tree-compiler): run tests/vm/fetch.sh"
	key=$( (qemu_plain --version | head -n1; echo "virt,gic-version=$gicarg" "${machine[@]}" "pci-node=$pcinode") | sha256sum | cut -c1-16)
	dtb=$CACHE/dtb/virt-gicv$gic-${smp}cpu-numa$numa-pci$pcinode-$key.dtb
	if [ ! -s "$dtb" ]; then
		mkdir -p "$CACHE/dtb"
		tmp=$(mktemp -d "${TMPDIR:-/tmp}/irqshift-dtb.XXXXXX")
		# -nic none: no default NIC (its option ROM is not installed); it does not change the DTB.
		qpath qtmp "$tmp"
		qemu_cmd
		binds=()
		"${qemu_cmd[@]}" -M "virt,gic-version=$gicarg,dumpdtb=$qtmp/virt.dtb" "${machine[@]}" -nographic -nic none \
			>"$tmp/dump.log" 2>&1 || { cat "$tmp/dump.log" >&2; rm -rf "$tmp"; die "qemu dumpdtb failed"; }
		dtc -q -I dtb -O dts -o "$tmp/virt.dts" "$tmp/virt.dtb" || { rm -rf "$tmp"; die "dtc could not decompile the dumped DTB"; }
		awk -v k="$pcinode" '
			{ print }
			/^\tpcie@10000000 \{$/ { print "\t\tnuma-node-id = <" k ">;"; n++ }
			END { if (n != 1) exit 1 }' "$tmp/virt.dts" >"$tmp/numa.dts" ||
			{ rm -rf "$tmp"; die "no (or more than one) pcie@10000000 node in QEMU's DTB"; }
		dtc -q -I dts -O dtb -o "$tmp/numa.dtb" "$tmp/numa.dts" || { rm -rf "$tmp"; die "dtc could not compile the patched DTB"; }
		if command -v fdtget >/dev/null && [ "$(fdtget "$tmp/numa.dtb" /pcie@10000000 numa-node-id)" != "$pcinode" ]; then
			rm -rf "$tmp"
			die "the patched DTB has no numa-node-id $pcinode in /pcie@10000000"
		fi
		cp "$tmp/numa.dtb" "$dtb.tmp.$$" && mv "$dtb.tmp.$$" "$dtb"
		rm -rf "$tmp"
		echo "run: DTB with the PCI host bridge on node $pcinode: $dtb" >&2
	fi
	qpath qdtb "$dtb"
	dtbargs=(-dtb "$qdtb")
fi
rngs=()
for ((k = 0; k < extrarng; k++)); do rngs+=(-device virtio-rng-pci); done
# --busy N: virtio-serial devices whose port the guest can read to make its IRQ fire
# (docs/KERNELS.md, "Busy IRQs in the VM"). Each port's pipe chardev is a pair of FIFOs,
# DIR/cK.in (host to guest) and DIR/cK.out (guest to host); QEMU opens both read-write, so it never
# waits for the host side, and busy_start's feeders (whose own opens wait for QEMU) keep .in full
# and .out drained. busy_stop kills them and removes DIR: run from every exit path below.
busydevs=()
busydir=
busypids=()
qbusy=''
busy_start() {
	local k
	[ -n "$busydir" ] || return 0
	for ((k = 0; k < busy; k++)); do
		cat /dev/zero >"$busydir/c$k.in" 2>/dev/null &
		busypids+=($!)
		cat "$busydir/c$k.out" >/dev/null 2>&1 &
		busypids+=($!)
	done
}
busy_stop() {
	[ -n "$busydir" ] || return 0
	if [ ${#busypids[@]} -gt 0 ]; then
		kill "${busypids[@]}" 2>/dev/null || true
		wait "${busypids[@]}" 2>/dev/null || true
	fi
	busypids=()
	rm -rf "$busydir"
	busydir=
}
if [ "$busy" -gt 0 ]; then
	busydir=$(mktemp -d "${TMPDIR:-/tmp}/irqshift-busy.XXXXXX")
	trap busy_stop EXIT
	trap 'busy_stop; exit 130' INT TERM HUP
	qpath qbusy "$busydir"
	for ((k = 0; k < busy; k++)); do
		mkfifo "$busydir/c$k.in" "$busydir/c$k.out"
		# shellcheck disable=SC2054 # commas are qemu option syntax
		busydevs+=(-device "virtio-serial-pci,id=vs$k" -chardev "pipe,id=c$k,path=$qbusy/c$k"
			-device "virtserialport,bus=vs$k.0,chardev=c$k,name=irqshift-busy.$k")
	done
fi
rootdisk=()
if [ -n "$rootfs" ]; then
	# snapshot=on: writes go to a temporary overlay. Writable (rootfs.sh's one build): no flush
	# reaches the host's disk until QEMU exits (cache=unsafe), which the guest's sync precedes.
	qpath qrootfs "$rootfs"
	drive="file=$qrootfs,if=none,format=raw,id=r0,snapshot=on"
	[ "$rootfsrw" = 1 ] && drive="file=$qrootfs,if=none,format=raw,id=r0,cache=unsafe"
	# The guest finds it by its ext4 label (irqshift-root), not by its name.
	rootdisk=(-drive "$drive" -device virtio-blk-pci,drive=r0)
fi
# Only the big VMs run single-threaded: the small ones keep the MTTCG they were measured with.
accel=()
[ "$tcgsingle" = 1 ] && accel=(-accel tcg,thread=single)

qpath qkernel "$vmlinuz"
qpath qinitrd "$initrd"
qpath qdisk "$disk"
qemu_cmd
# On GICv5 (no ITS, no MSIs) the three PCI devices fall back to INTx, wired GICv5 SPIs like
# virtio-rng-device's; virtio-blk then has one shared interrupt instead of managed queues.
# shellcheck disable=SC2054 # commas are qemu option syntax
qemu=("${qemu_cmd[@]}"
	-M "virt,gic-version=$gicarg" "${accel[@]}" "${machine[@]}"
	-nographic -no-reboot
	-kernel "$qkernel" -initrd "$qinitrd" -append "$cmdline" "${dtbargs[@]}"
	-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile=
	-device virtio-rng-pci
	-drive "file=$qdisk,if=none,format=raw,id=d0,readonly=on" -device virtio-blk-pci,drive=d0
	-device virtio-rng-device
	"${rngs[@]}" "${rootdisk[@]}" "${busydevs[@]}")

tcgmode=multi-threaded
[ "$tcgsingle" = 1 ] && tcgmode=single-threaded
where=
[ -n "$qchroot" ] && where=", $(qemu_plain --version | head -n1 | sed 's/ (.*//') in chroot $qchroot"
echo "run: $name: kernel $(basename "$vmlinuz"), initrd $(basename "$initrd"), $tcgmode TCG$where, timeout ${tmo}s, log $log" >&2
start=$(date +%s.%N)
busy_start

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
	busy_stop
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
busy_stop
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
