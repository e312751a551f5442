#!/bin/bash
# rootfs.sh: build, once, the Debian arm64 root file system that the systemd VM boots (systemd as
# PID 1), and print `ROOTFS=<image>` as the last line.
#
# usage: tests/vm/rootfs.sh -k KERNEL_DIR
#
#   1. apt-installs debootstrap (and e2fsprogs) on the host if missing;
#   2. debootstrap --foreign --arch=arm64 --variant=minbase: the first stage only downloads and
#      unpacks Debian's packages, so no arm64 code runs on the host (no qemu-user or binfmt_misc,
#      which a container may not have);
#   3. packs the tree into an ext4 image with mke2fs -d (no loop device, no mount);
#   4. boots it once in the arm64 VM (KERNEL_DIR's kernel) with guest/rootfs-stage2.sh as the
#      script: debootstrap's second stage in a chroot, then irqbalance and the serial getty
#      disabled; about 12 minutes under TCG on a 2-core host (dpkg runs emulated).
# The image is cached in $VM_CACHE/rootfs/, keyed by this script, rootfs-stage2.sh, the suite and
# the package list; later runs boot a copy-on-write snapshot of it (run.sh --rootfs), so a test
# never changes it.
#
# Environment: VM_CACHE, VM_ROOTFS_SUITE (default bookworm), VM_DEBIAN_MIRROR (default: the host's
# Debian archive, see lib.sh), VM_ROOTFS_TIMEOUT (default 1800 s for the second stage).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
CACHE=${VM_CACHE:-$here/.cache}
suite=${VM_ROOTFS_SUITE:-bookworm}
# systemd as init; udev so device units (the console, the disks) appear; dbus for systemctl's and
# systemd-analyze's bus; irqbalance for the Conflicts= test; init-system-helpers for the package's
# maintainer scripts (deb-systemd-helper, deb-systemd-invoke); procps for the unit's ExecReload (/bin/kill).
packages=(systemd systemd-sysv udev dbus procps irqbalance init-system-helpers)

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: FAILED: %s\n' "$*" >&2; exit 1; }

kdir=
while getopts k: opt; do
	case $opt in
	k) kdir=$OPTARG ;;
	*) die "usage: $0 -k KERNEL_DIR" ;;
	esac
done
[ -n "$kdir" ] || die "usage: $0 -k KERNEL_DIR"

key=$( (cat "$here/rootfs.sh" "$here/guest/rootfs-stage2.sh"; echo "$suite ${packages[*]}") | sha256sum | cut -c1-12)
img=$CACHE/rootfs/$suite-arm64-$key.img
if [ -s "$img" ]; then
	log "cached: $img"
	echo "ROOTFS=$img"
	exit 0
fi
mkdir -p "$CACHE/rootfs"

if [ "$(id -u)" != 0 ]; then die "not root: debootstrap and mke2fs -d need root to keep file owners"; fi
missing=()
command -v debootstrap >/dev/null || PATH=$PATH:/usr/sbin command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v mke2fs >/dev/null || PATH=$PATH:/sbin:/usr/sbin command -v mke2fs >/dev/null || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing host packages: ${missing[*]}"
	apt-get update -qq >&2 || log "apt-get update reported errors (continuing)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$CACHE/rootfs/apt-install.log" 2>&1 ||
		{ tail -n 20 "$CACHE/rootfs/apt-install.log" >&2; die "apt-get install ${missing[*]}"; }
fi
export PATH=$PATH:/sbin:/usr/sbin

mirror=$(debian_mirror)
[ -n "$mirror" ] || die "no Debian archive in the host's apt sources (set VM_DEBIAN_MIRROR)"

stage=$CACHE/rootfs/stage
rm -rf "$stage" "$img.tmp"
trap 'rm -rf "$stage" "$img.tmp"' EXIT
log "debootstrap --foreign $suite arm64 (first stage) from the host's Debian archive"
t=$(date +%s)
if ! debootstrap --foreign --arch=arm64 --variant=minbase --include="$(
	IFS=,
	echo "${packages[*]}"
)" "$suite" "$stage" "$mirror" >"$CACHE/rootfs/debootstrap.log" 2>&1; then
	tail -n 20 "$CACHE/rootfs/debootstrap.log" >&2
	die "debootstrap first stage (full log: $CACHE/rootfs/debootstrap.log)"
fi
log "first stage done in $(($(date +%s) - t)) s"

echo irqshift-vm >"$stage/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tirqshift-vm\n' >"$stage/etc/hosts"
# The initramfs mounts the root read-write; nothing else to mount.
echo '# irqshift systemd VM: the root is mounted by the initramfs' >"$stage/etc/fstab"
# No fsync per unpacked file while the image is built (rootfs-stage2.sh removes this).
mkdir -p "$stage/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$stage/etc/dpkg/dpkg.cfg.d/irqshift-rootfs-build"

# 2 GiB, sparse: the installed system is ~250 MB, the rest is room for the tests' journal.
mke2fs -q -t ext4 -L irqshift-root -d "$stage" "$img.tmp" 2G >&2 || die "mke2fs -d"
rm -rf "$stage"

initrd=$CACHE/rootfs/initrd-stage2.gz
IRQSHIFT_BIN=/nonexistent bash "$here/mkinitramfs.sh" -k "$kdir" -s "$here/guest/rootfs-stage2.sh" -o "$initrd" ||
	die "mkinitramfs for the second stage"
log "debootstrap --second-stage in the arm64 VM (a few minutes under TCG)"
t=$(date +%s)
bash "$here/run.sh" -q -k "$kdir" -i "$initrd" -m script --rootfs "$img.tmp" --rootfs-writable \
	-t "${VM_ROOTFS_TIMEOUT:-1800}" -l "$CACHE/logs/rootfs-$suite.log" ||
	die "second stage in the VM (log $CACHE/logs/rootfs-$suite.log)"
log "second stage done in $(($(date +%s) - t)) s"
mv "$img.tmp" "$img"
trap - EXIT
# Older images of other keys are of no use any more.
find "$CACHE/rootfs" -maxdepth 1 -name "$suite-arm64-*.img" ! -name "$(basename "$img")" -delete
log "ready: $img"
echo "ROOTFS=$img"
