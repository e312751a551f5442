#!/bin/bash
# mkinitramfs.sh: build the gzip'd cpio initramfs for the arm64 test VM.
#
# usage: tests/vm/mkinitramfs.sh [-o OUT.gz] [-k KERNEL_DIR] [-s SCRIPT] [-d FILE]... [TEST_BINARY...]
#
#   -o OUT.gz      output (default $VM_CACHE/initrd.gz)
#   -k KERNEL_DIR  unpacked kernel package (default: the one fetch.sh chose, $VM_CACHE/kernel.current)
#   -s SCRIPT      also ship SCRIPT as /run.sh; boot with `irqshift.mode=script` to run it
#                  instead of the tests (for `make demo`).
#   -d FILE        ship FILE (the irqshift .deb) in /payload/; the systemd mode copies it into
#                  the root file system for the tests.
#   TEST_BINARY    arm64 test binaries (CGO_ENABLED=0 GOARCH=arm64 go test -c -tags vm ...);
#                  they are installed as /tests/<name> and run in order with -test.v.
#
# Also ships /bin/irqshift when bin/irqshift-linux-arm64 exists (or $IRQSHIFT_BIN), busybox,
# the virtio modules (decompressed), Debian's irqbalance when fetch.sh assembled it
# (/usr/sbin/irqbalance, /opt/irqbalance/) and tests/vm/guest/init as /init.
#
# What /init does is chosen by the kernel command line (run.sh sets it):
#   irqshift.mode=test     (default) run every /tests/* binary; print IRQSHIFT-VM-RESULT: PASS|FAIL
#   irqshift.mode=capture  irqshift.capture=NAME[,NAME...]: run TestCaptureFixtures (capture_test.go)
#   irqshift.mode=script   run /run.sh
#   irqshift.mode=shell    an interactive shell on the console (run.sh -i)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${VM_CACHE:-$here/.cache}
out=$CACHE/initrd.gz
kdir=${KERNEL_DIR:-}
script=
payload=()

die() { printf 'mkinitramfs: FAILED: %s\n' "$*" >&2; exit 1; }

while getopts o:k:s:d: opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) kdir=$OPTARG ;;
	s) script=$OPTARG ;;
	d) payload+=("$OPTARG") ;;
	*) die "usage: $0 [-o OUT.gz] [-k KERNEL_DIR] [-s SCRIPT] [-d FILE]... [TEST_BINARY...]" ;;
	esac
done
shift $((OPTIND - 1))

if [ -z "$kdir" ]; then
	[ -f "$CACHE/kernel.current" ] || die "no kernel: run tests/vm/fetch.sh first (or pass -k)"
	kdir=$(cat "$CACHE/kernel.current")
fi
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* under $kdir: run tests/vm/fetch.sh"
kver=${vmlinuz##*/vmlinuz-}
mods=$kdir/lib/modules/$kver/kernel
bb=$CACHE/busybox/bin/busybox
[ -x "$bb" ] || die "no $bb: run tests/vm/fetch.sh"

stage=$(mktemp -d "${TMPDIR:-/tmp}/irqshift-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,run,tmp,mnt,etc,root,tests,lib/modules,usr/bin,usr/sbin}
cp "$bb" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
# A console node so the kernel can give /init its stdio before devtmpfs is mounted.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$stage/dev/null" c 1 3 2>/dev/null || true

# Virtio modules, in load order (docs/KERNELS.md, "The virtio modules and their load order"), then
# ext4 and what it needs (modinfo -F depends on 6.1, 6.12 and 7.3: jbd2, mbcache, crc16) for the
# systemd VM's root file system. Built-in ones (6.12 has virtio_pci built in; 6.12 and 7.3 have
# virtio_console) are simply absent; /init insmods whatever /lib/modules/order lists.
# virtio_console drives run.sh --busy's virtio-serial devices (it depends on nothing loadable).
: >"$stage/lib/modules/order"
for m in virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_console virtio-rng \
	virtio_blk failover net_failover virtio_net crc16 mbcache jbd2 ext4; do
	f=$(find "$mods" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -n1)
	[ -n "$f" ] || continue
	case $f in
	*.xz) xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
	*.gz) gzip -dc "$f" >"$stage/lib/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$stage/lib/modules/$m.ko" ;;
	*) cp "$f" "$stage/lib/modules/$m.ko" ;;
	esac
	echo "$m" >>"$stage/lib/modules/order"
done

# irqshift itself, once it can be built.
ibin=${IRQSHIFT_BIN:-$root/bin/irqshift-linux-arm64}
if [ -f "$ibin" ]; then
	cp "$ibin" "$stage/bin/irqshift"
	chmod 755 "$stage/bin/irqshift"
	echo "mkinitramfs: including $(realpath --relative-to="$root" "$ibin" 2>/dev/null || echo "$ibin") as /bin/irqshift" >&2
fi

# Debian's irqbalance and exactly the libraries it needs (fetch.sh assembles them in
# $CACHE/irqbalance/root: /usr/sbin/irqbalance, /opt/irqbalance/, /lib/ld-linux-aarch64.so.1), for
# the test of CRI-O's `irqbalance --oneshot` beside the daemon (rules_test.go), which skips without.
irqb=$CACHE/irqbalance/root
if [ -x "$irqb/opt/irqbalance/sbin/irqbalance" ]; then
	cp -a "$irqb/." "$stage/"
	echo "mkinitramfs: including $(head -n1 "$irqb/opt/irqbalance/MANIFEST" | cut -d, -f1) as /usr/sbin/irqbalance" >&2
else
	echo "mkinitramfs: no $irqb/opt/irqbalance/sbin/irqbalance (fetch.sh): the guest has no irqbalance" >&2
fi

n=0
for t in "$@"; do
	[ -f "$t" ] || die "no test binary $t"
	n=$((n + 1))
	cp "$t" "$stage/tests/$(printf '%02d' "$n")-$(basename "$t")"
	chmod 755 "$stage/tests/"*
done

if [ -n "$script" ]; then
	[ -f "$script" ] || die "no script $script"
	cp "$script" "$stage/run.sh"
	chmod 755 "$stage/run.sh"
fi

if [ ${#payload[@]} -gt 0 ]; then
	mkdir -p "$stage/payload"
	for f in "${payload[@]}"; do
		[ -f "$f" ] || die "no file $f for /payload"
		cp "$f" "$stage/payload/"
	done
fi

cp "$here/guest/init" "$stage/init"
chmod 755 "$stage/init"
echo "$kver" >"$stage/etc/kernel-release"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitramfs: $out ($(du -h "$out" | cut -f1), kernel $kver, $n test binaries$([ -n "$script" ] && echo ", script $script"))" >&2
