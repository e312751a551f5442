#!/bin/bash
# fetch.sh: get everything the arm64 test VM needs, idempotently, on Debian 12 (as root).
#
#  1. host tools: qemu-system-aarch64 (package qemu-system-arm), cpio, xz, gzip, kmod, dtc
#     (device-tree-compiler: run.sh --pci-node patches the machine's DTB), ...
#  2. dpkg --add-architecture arm64 (+ apt-get update)
#  3. apt-get download of the arm64 kernel image and busybox-static:arm64 into
#     tests/vm/.cache/debs/, unpacked with dpkg-deb -x into tests/vm/.cache/kernel/<pkg>/
#     and tests/vm/.cache/busybox/.
#
# Environment:
#   KERNEL_PKG     arm64 kernel image package to use. Default: the newest
#                  linux-image-<version>-arm64-unsigned that apt knows about. On bookworm that is
#                  a 6.12 kernel (6.12.x+deb12), which is what our default runs; it answers EPERM
#                  to refused affinity writes and makes those files 0444. Debian 12's stock 6.1
#                  (EIO instead) is tested with e.g.
#                  KERNEL_PKG=linux-image-6.1.0-56-arm64-unsigned (see `make vm-test-6.1`).
#   KERNEL_SERIES  instead of a full name, restrict the default to a series, e.g. 6.1 or 6.12.
#   VM_CACHE       cache directory (default tests/vm/.cache).
#   FETCH_SET_CURRENT=0  do not make this kernel the default for run.sh / mkinitramfs.sh.
#
# Prints, as its last line, `KERNEL_DIR=<dir>` for the chosen kernel; the same path is written
# to $VM_CACHE/kernel.current so run.sh / mkinitramfs.sh find it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$here/.cache}
mkdir -p "$CACHE/debs"

log() { printf 'fetch: %s\n' "$*" >&2; }
die() { printf 'fetch: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
	command -v sudo >/dev/null || die "not root and no sudo: run as root"
else
	SUDO=
fi

updated=0
apt_update() {
	if [ "$updated" = 0 ]; then
		log "apt-get update"
		# Unrelated third-party sources may fail; judge by whether the packages are found later.
		$SUDO apt-get update -qq >&2 || log "apt-get update reported errors (continuing)"
		updated=1
	fi
}

# --- 1. arm64 architecture (first, so one apt-get update serves both steps) -------------------------------------------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	log "dpkg --add-architecture arm64"
	$SUDO dpkg --add-architecture arm64
	updated=0
	apt_update
fi
# --- 2. host tools -------------------------------------------------------------------------
# command -> Debian package
declare -A need=(
	[qemu-system-aarch64]=qemu-system-arm
	[cpio]=cpio
	[xz]=xz-utils
	[gzip]=gzip
	[depmod]=kmod
	[dpkg-deb]=dpkg
	[timeout]=coreutils
	[base64]=coreutils
	[tar]=tar
	[truncate]=coreutils
	[dtc]=device-tree-compiler
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "installing host packages: ${missing[*]}"
	apt_update
	if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >"$CACHE/apt-install.log" 2>&1; then
		tail -n 20 "$CACHE/apt-install.log" >&2
		die "apt-get install ${missing[*]} (full output: $CACHE/apt-install.log)"
	fi
else
	log "host tools present"
fi

# The arm64 package lists must be present (a machine may have the arch but stale lists).
if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
	apt_update
	apt-cache show busybox-static:arm64 >/dev/null 2>&1 || die "busybox-static:arm64 unknown to apt even after apt-get update"
fi

# --- 3. choose the kernel package -------------------------------------------------------------
candidates() {
	apt-cache search --names-only '^linux-image-[0-9].*-arm64-unsigned$' |
		awk '{print $1}' | grep -v -e '-cloud-' -e '-rt-' |
		{ if [ -n "${KERNEL_SERIES:-}" ]; then grep -F "linux-image-${KERNEL_SERIES}." || true; else cat; fi; } |
		sort -V -r
}

# download PKG: apt-get download into $CACHE/debs unless a .deb of it is already there.
download() {
	local pkg=$1 name=${1%%:*} f
	f=$(find "$CACHE/debs" -maxdepth 1 -name "${name}_*_arm64.deb" | head -n1)
	if [ -n "$f" ]; then
		log "have $(basename "$f")"
		echo "$f"
		return 0
	fi
	log "apt-get download $pkg"
	(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || return 1
	f=$(find "$CACHE/debs" -maxdepth 1 -name "${name}_*_arm64.deb" | head -n1)
	[ -n "$f" ] || return 1
	echo "$f"
}

if [ -n "${KERNEL_PKG:-}" ]; then
	tries=("${KERNEL_PKG%%:*}")
	log "kernel package from KERNEL_PKG: ${tries[0]}"
else
	mapfile -t tries < <(candidates | head -n 3)
	[ ${#tries[@]} -gt 0 ] || die "apt-cache search found no linux-image-*-arm64-unsigned${KERNEL_SERIES:+ for series $KERNEL_SERIES} (is arm64 enabled and apt-get update done?)"
	log "newest arm64 kernel package: ${tries[0]}"
fi

kdeb=
for p in "${tries[@]}"; do
	if kdeb=$(download "$p:arm64"); then
		KPKG=$p
		break
	fi
	log "download of $p failed; trying the next candidate"
	kdeb=
done
[ -n "$kdeb" ] || die "could not download any of: ${tries[*]} (arm64)"
log "kernel: chose $KPKG"

kdir=$CACHE/kernel/$KPKG
if [ -n "$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)" ]; then
	log "kernel already unpacked in $kdir"
else
	log "unpacking $(basename "$kdeb")"
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg-deb -x "$kdeb" "$kdir.tmp" || die "dpkg-deb -x $kdeb"
	rm -rf "$kdir"
	mv "$kdir.tmp" "$kdir"
fi
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kdeb"
kver=${vmlinuz##*/vmlinuz-}
[ -d "$kdir/lib/modules/$kver" ] || die "no lib/modules/$kver in $kdeb"

# --- 4. busybox-static:arm64 ------------------------------------------------------------------
bdeb=$(download busybox-static:arm64) || die "apt-get download busybox-static:arm64"
bdir=$CACHE/busybox
if [ -x "$bdir/bin/busybox" ]; then
	log "busybox already unpacked"
else
	rm -rf "$bdir"
	mkdir -p "$bdir"
	dpkg-deb -x "$bdeb" "$bdir" || die "dpkg-deb -x $bdeb"
	[ -x "$bdir/bin/busybox" ] || die "no bin/busybox in $bdeb"
fi

# The default kernel for run.sh / mkinitramfs.sh; suite.sh fetches extra kernels with
# FETCH_SET_CURRENT=0 so they do not replace it.
[ "${FETCH_SET_CURRENT:-1}" = 0 ] || echo "$kdir" >"$CACHE/kernel.current"
log "ready: kernel $kver ($KPKG), busybox $(basename "$bdeb")"
echo "KERNEL_DIR=$kdir"
