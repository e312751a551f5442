#!/bin/bash
# qemu-newest.sh: build, once, a Debian trixie chroot (amd64, the host's architecture) holding
# Debian's newest QEMU, qemu-system-arm from trixie-backports, for the GICv5 VM (run.sh -g 5
# --qemu-chroot DIR), and print `QEMU_VERSION=<version>` and, as the last line,
# `QEMU_CHROOT=<dir>`.
#
# usage: tests/vm/qemu-newest.sh
#
# Bookworm's QEMU (7.2) has no GICv5, and trixie's (10.0) neither; trixie-backports' 11.1 offers
# `-M virt,gic-version=x-5` (experimental, TCG only, no ITS so no MSIs), but it needs trixie's
# libraries, so it runs in a chroot of its own:
#   1. apt-installs debootstrap on the host if missing;
#   2. debootstrap --variant=minbase trixie from the host's Debian archive (lib.sh debian_mirror);
#   3. adds `deb <archive> trixie-backports main` to the chroot's own apt sources (the host's
#      are never changed), then apt-get update and apt-get install --no-install-recommends
#      -t trixie-backports qemu-system-arm in the chroot, apt-get clean;
#   4. checks that its qemu-system-aarch64 offers gic-version x-5.
# Steps 2-3 run inside `unshare -m` (a private mount namespace): the chroot's /proc, /dev and
# /dev/pts mounts, and any debootstrap makes, vanish with it whatever happens; a trap also
# unmounts them. About 40 s with a nearby archive; about 550 MB.
# The chroot is cached in $VM_CACHE/qemu-trixie/root, keyed by a stamp of this script
# ($VM_CACHE/qemu-trixie/stamp); a changed script rebuilds it. Any failure exits 1 with a
# `qemu-newest: FAILED: ...` line (never a silent skip).
#
# Environment: VM_CACHE, VM_DEBIAN_MIRROR (default: the host's Debian archive, see lib.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
CACHE=${VM_CACHE:-$here/.cache}
suite=trixie
backports=trixie-backports
packages=(qemu-system-arm)

log() { printf 'qemu-newest: %s\n' "$*" >&2; }
die() { printf 'qemu-newest: FAILED: %s\n' "$*" >&2; exit 1; }

[ $# = 0 ] || die "usage: $0 (no arguments)"

dir=$CACHE/qemu-trixie
root=$dir/root
key=$( (cat "$here/qemu-newest.sh"; echo "$suite $backports ${packages[*]}") | sha256sum | cut -c1-16)

# qemu_ok DIR: the chroot's QEMU runs and offers gic-version x-5.
qemu_ok() {
	chroot "$1" qemu-system-aarch64 -M virt,help 2>&1 | grep -q 'gic-version=.*x-5'
}
report() {
	local v
	v=$(chroot "$root" qemu-system-aarch64 --version | sed -n '1s/^QEMU emulator version \([^ ]*\).*/\1/p')
	[ -n "$v" ] || die "cannot read the version of $root's qemu-system-aarch64"
	echo "QEMU_VERSION=$v"
	echo "QEMU_CHROOT=$root"
}

# mounted_under DIR: prints the mount points at or below DIR in this mount namespace.
mounted_under() {
	awk -v d="$(realpath -m "$1")" '{ gsub(/\\040/, " ", $5) } $5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}
# remove DIR: rm -rf, but never through a mount point (a bound /dev would lose the host's nodes).
remove() {
	[ -e "$1" ] || return 0
	if [ -n "$(mounted_under "$1")" ]; then
		die "refusing to delete $1: something is mounted below it ($(mounted_under "$1" | tr '\n' ' '))"
	fi
	rm -rf "$1"
}

if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$key" ] && [ -x "$root/usr/bin/qemu-system-aarch64" ]; then
	qemu_ok "$root" || die "cached chroot $root: its qemu-system-aarch64 does not run or offers no gic-version x-5 (delete $dir to rebuild)"
	log "cached: $root"
	report
	exit 0
fi

[ "$(id -u)" = 0 ] || die "not root: debootstrap, chroot and mount need root"
command -v unshare >/dev/null || die "no unshare (util-linux)"
mkdir -p "$dir"
# One build at a time (two suites started together share the cache).
exec 9>"$dir/.lock"
flock 9 || die "flock $dir/.lock"
# Another build may have finished while we waited.
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$key" ] && [ -x "$root/usr/bin/qemu-system-aarch64" ] && qemu_ok "$root"; then
	log "built meanwhile: $root"
	report
	exit 0
fi

if ! command -v debootstrap >/dev/null && ! PATH=$PATH:/usr/sbin command -v debootstrap >/dev/null; then
	log "installing host package: debootstrap"
	apt-get update -qq >&2 || log "apt-get update reported errors (continuing)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >"$dir/apt-install.log" 2>&1 ||
		{ tail -n 20 "$dir/apt-install.log" >&2; die "apt-get install debootstrap (full log: $dir/apt-install.log)"; }
fi
export PATH=$PATH:/sbin:/usr/sbin

mirror=$(debian_mirror)
[ -n "$mirror" ] || die "no Debian archive in the host's apt sources (set VM_DEBIAN_MIRROR)"

tmp=$dir/root.tmp
remove "$tmp"
trap 'remove "$tmp"' EXIT
rm -f "$dir/stamp"

# The build, in its own mount namespace: $1 = the chroot, $2 = the archive, $3 = the log
# directory, then the packages.
# shellcheck disable=SC2016 # expanded by the inner bash
build='set -euo pipefail
c=$1 mirror=$2 logs=$3
shift 3
umounts() { umount "$c/dev/pts" 2>/dev/null; umount "$c/dev" 2>/dev/null; umount "$c/proc" 2>/dev/null; return 0; }
trap umounts EXIT
step() { printf "qemu-newest: %s\n" "$*" >&2; }
t=$(date +%s)
step "debootstrap --variant=minbase '"$suite"' (amd64) from $mirror"
if ! debootstrap --variant=minbase '"$suite"' "$c" "$mirror" >"$logs/debootstrap.log" 2>&1; then
	tail -n 20 "$logs/debootstrap.log" >&2
	step "debootstrap failed (full log: $logs/debootstrap.log)"
	exit 1
fi
step "debootstrap done in $(($(date +%s) - t)) s"
echo "deb $mirror '"$backports"' main" >"$c/etc/apt/sources.list.d/'"$backports"'.list"
mount -t proc proc "$c/proc"
mount --bind /dev "$c/dev"
mount --bind /dev/pts "$c/dev/pts"
t=$(date +%s)
if ! chroot "$c" apt-get update -q >"$logs/apt-chroot.log" 2>&1 ||
	! chroot "$c" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-t '"$backports"' "$@" >>"$logs/apt-chroot.log" 2>&1; then
	tail -n 20 "$logs/apt-chroot.log" >&2
	step "apt-get in the chroot failed (full log: $logs/apt-chroot.log)"
	exit 1
fi
chroot "$c" apt-get clean
step "'"${packages[*]}"' from '"$backports"' installed in $(($(date +%s) - t)) s"
'
log "building the $suite chroot with ${packages[*]} from $backports in $tmp"
t=$(date +%s)
unshare -m --propagation private bash -c "$build" qemu-newest-build "$tmp" "$mirror" "$dir" "${packages[@]}" ||
	die "building the chroot (logs in $dir)"
[ -z "$(mounted_under "$tmp")" ] || die "mounts left below $tmp after the build"
qemu_ok "$tmp" || die "the chroot's qemu-system-aarch64 does not run or offers no gic-version x-5: $(chroot "$tmp" qemu-system-aarch64 --version 2>&1 | head -n1)"
remove "$root"
mv "$tmp" "$root"
trap - EXIT
echo "$key" >"$dir/stamp"
log "ready in $(($(date +%s) - t)) s: $root ($(du -sh "$root" | cut -f1))"
report
