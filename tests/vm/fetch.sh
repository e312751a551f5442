#!/bin/bash
# fetch.sh: get everything the arm64 test VM needs, idempotently, on Debian 12 (as root).
#
#  1. host tools: qemu-system-aarch64 (package qemu-system-arm), cpio, xz, gzip, kmod, dtc
#     (device-tree-compiler: run.sh --pci-node patches the machine's DTB), ...
#  2. dpkg --add-architecture arm64 (+ apt-get update)
#  3. apt-get download of the arm64 kernel and busybox-static:arm64 into tests/vm/.cache/debs/,
#     unpacked with dpkg-deb -x into tests/vm/.cache/kernel/<pkg>/ and tests/vm/.cache/busybox/.
#  4. Debian bookworm's irqbalance:arm64 and exactly the shared libraries it needs (step 6
#     below), assembled once in tests/vm/.cache/irqbalance/root/ for the initramfs.
#
# Kernels come from two places:
#   - the host's own apt lists (bookworm: 6.1 and 6.12, `linux-image-VER-arm64-unsigned`, one
#     package with boot/vmlinuz-VER and lib/modules/VER);
#   - a private apt configuration in $VM_CACHE/apt (suites trixie-backports and sid of the
#     Debian archive the host already uses, signed by debian-archive-keyring): the 7.x kernels,
#     packaged as `linux-binary-VER-arm64` (usr/lib/modules/VER/vmlinuz) and
#     `linux-modules-VER-arm64` (usr/lib/modules/VER/kernel). fetch.sh unpacks both into one
#     directory and links boot/vmlinuz-VER and lib/modules to them, so run.sh and
#     mkinitramfs.sh see the layout of the older packages. The host's apt sources are never
#     changed: every private call passes -o Dir::Etc::sourcelist=… -o Dir::Etc::sourceparts=-
#     -o Dir::State::Lists=…; its lists are refreshed when older than a day.
#
# Environment:
#   KERNEL_PKG     kernel package to use: linux-image-VER-arm64-unsigned (host lists) or
#                  linux-binary-VER-arm64 (private lists). Default: the newest kernel either
#                  offers (7.x from trixie-backports or sid).
#   KERNEL_SERIES  restrict the default to a series, e.g. 6.1, 6.12 or 7 (a prefix of VER
#                  followed by a dot).
#   VM_CACHE       cache directory (default tests/vm/.cache).
#   VM_DEBIAN_MIRROR  the archive for the private lists (default: the host's Debian source).
#   FETCH_SET_CURRENT=0  do not make this kernel the default for run.sh / mkinitramfs.sh.
#
# Prints, as its last line, `KERNEL_DIR=<dir>` for the chosen kernel; the same path is written
# to $VM_CACHE/kernel.current so run.sh / mkinitramfs.sh find it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
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
	[readelf]=binutils
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

# --- 3. the private apt configuration (7.x kernels) -------------------------------------------
APT_DIR=$CACHE/apt
private=(-o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::State::status=$APT_DIR/status"
	-o "Dir::Cache=$APT_DIR/cache" -o APT::Sandbox::User=root)

private_ready=0
private_update() {
	[ "$private_ready" = 0 ] || return 0
	private_ready=1
	local mirror
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	: >>"$APT_DIR/status"
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || { log "no Debian archive in the host's apt sources (set VM_DEBIAN_MIRROR): no 7.x kernels"; return 1; }
	{
		for suite in trixie-backports sid; do
			echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
		done
	} >"$APT_DIR/sources.list.new"
	if cmp -s "$APT_DIR/sources.list.new" "$APT_DIR/sources.list" &&
		[ -n "$(find "$APT_DIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
		rm -f "$APT_DIR/sources.list.new"
		return 0
	fi
	mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
	log "apt-get update (private lists: trixie-backports, sid)"
	apt-get "${private[@]}" update -qq >&2 || log "private apt-get update reported errors (continuing)"
}

# --- 4. choose the kernel package -------------------------------------------------------------
# candidates: "VER PACKAGE" lines, newest first, from the host's lists and the private ones.
candidates() {
	{
		apt-cache search --names-only '^linux-image-[0-9].*-arm64-unsigned$' | awk '{print $1}' |
			sed -n 's/^linux-image-\(.*\)-arm64-unsigned$/\1 &/p'
		if [ "$private_ready" = 1 ]; then
			apt-cache "${private[@]}" search --names-only '^linux-binary-[0-9].*-arm64$' | awk '{print $1}' |
				sed -n 's/^linux-binary-\(.*\)-arm64$/\1 &/p'
		fi
	} | grep -v -e '-cloud' -e '-rt' |
		awk -v s="${KERNEL_SERIES:+$KERNEL_SERIES.}" 'index($1, s) == 1' |
		sort -V -r -k1,1
}

# download PKG [APT_OPTION...]: apt-get download into $CACHE/debs unless a .deb of it is
# already there.
download() {
	local pkg=$1 name=${1%%:*} f
	shift
	f=$(find "$CACHE/debs" -maxdepth 1 -name "${name}_*_arm64.deb" | head -n1)
	if [ -n "$f" ]; then
		log "have $(basename "$f")"
		echo "$f"
		return 0
	fi
	log "apt-get download $pkg"
	(cd "$CACHE/debs" && apt-get "$@" download -q -o APT::Sandbox::User=root "$pkg" >&2) || return 1
	f=$(find "$CACHE/debs" -maxdepth 1 -name "${name}_*_arm64.deb" | head -n1)
	[ -n "$f" ] || return 1
	echo "$f"
}

# unpack_kernel PKG DIR: download PKG (and, for a linux-binary package, its linux-modules
# package) and unpack it into DIR with the boot/ and lib/modules/ layout run.sh expects.
unpack_kernel() {
	local pkg=$1 dir=$2 ver debs=() d
	if [ -n "$(find "$dir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)" ]; then
		log "kernel already unpacked in $dir"
		return 0
	fi
	case $pkg in
	linux-binary-*)
		ver=${pkg#linux-binary-}
		ver=${ver%-arm64}
		d=$(download "$pkg:arm64" "${private[@]}") || return 1
		debs+=("$d")
		d=$(download "linux-modules-$ver-arm64:arm64" "${private[@]}") || return 1
		debs+=("$d")
		;;
	*)
		d=$(download "$pkg:arm64") || return 1
		debs+=("$d")
		;;
	esac
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	for d in "${debs[@]}"; do
		log "unpacking $(basename "$d")"
		dpkg-deb -x "$d" "$dir.tmp" || { log "dpkg-deb -x $d failed"; return 1; }
	done
	if [ ! -d "$dir.tmp/boot" ] && [ -d "$dir.tmp/usr/lib/modules" ]; then
		ver=$(basename "$(find "$dir.tmp/usr/lib/modules" -mindepth 2 -maxdepth 2 -name vmlinuz | head -n1 | xargs -r dirname)")
		[ -n "$ver" ] || { log "no usr/lib/modules/VER/vmlinuz in ${debs[*]}"; return 1; }
		mkdir -p "$dir.tmp/boot"
		ln -s "../usr/lib/modules/$ver/vmlinuz" "$dir.tmp/boot/vmlinuz-$ver"
		ln -s usr/lib "$dir.tmp/lib"
	fi
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

if [ -n "${KERNEL_PKG:-}" ]; then
	tries=("${KERNEL_PKG%%:*}")
	case ${tries[0]} in linux-binary-*) private_update || true ;; esac
	log "kernel package from KERNEL_PKG: ${tries[0]}"
else
	# The host's lists serve a series they have (6.1, 6.12); only the newest, or a series they
	# lack, needs the private lists.
	if [ -z "${KERNEL_SERIES:-}" ] || [ -z "$(candidates)" ]; then
		private_update || true
	fi
	mapfile -t tries < <(candidates | awk '{print $2}' | head -n 3)
	[ ${#tries[@]} -gt 0 ] || die "apt-cache search found no arm64 kernel${KERNEL_SERIES:+ for series $KERNEL_SERIES} (is arm64 enabled and apt-get update done?)"
	log "newest arm64 kernel package: ${tries[0]}"
fi

KPKG=
for p in "${tries[@]}"; do
	if unpack_kernel "$p" "$CACHE/kernel/$p"; then
		KPKG=$p
		break
	fi
	log "download or unpack of $p failed; trying the next candidate"
done
[ -n "$KPKG" ] || die "could not download any of: ${tries[*]} (arm64)"
log "kernel: chose $KPKG"

kdir=$CACHE/kernel/$KPKG
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kdir"
kver=${vmlinuz##*/vmlinuz-}
[ -d "$kdir/lib/modules/$kver" ] || die "no lib/modules/$kver in $kdir"

# --- 5. busybox-static:arm64 ------------------------------------------------------------------
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

# --- 6. irqbalance:arm64 (rules_test.go: CRI-O's `irqbalance --oneshot` beside the daemon) ------
# Debian bookworm's irqbalance (the host's lists) and exactly the shared libraries it needs,
# assembled once in $CACHE/irqbalance/root/, which mkinitramfs.sh copies into the initramfs:
#   opt/irqbalance/sbin/irqbalance  the binary (its comm is irqbalance: the daemon finds it by name)
#   opt/irqbalance/lib/SONAME       every library of its NEEDED closure (readelf -d), by soname
#   lib/ld-linux-aarch64.so.1       its PT_INTERP, a link to opt/irqbalance/lib/
#   usr/sbin/irqbalance             LD_LIBRARY_PATH=/opt/irqbalance/lib exec the binary
#   opt/irqbalance/MANIFEST         the packages and libraries taken
# The libraries' packages come from the Depends and Pre-Depends of the packages fetched so far
# (first alternatives named lib* or zlib1g), a round at a time, until every NEEDED soname
# resolves in the unpacked .debs (cached in $CACHE/debs like the kernel's). Not fatal: without it
# the guest has no irqbalance and that test skips, naming the missing file.
IRQB_DIR=$CACHE/irqbalance
irqb_needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
# irqb_find SONAME TREE: the path of SONAME in the unpacked tree TREE.
irqb_find() {
	local d
	for d in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib; do
		if [ -e "$2/$d/$1" ]; then
			echo "$2/$d/$1"
			return 0
		fi
	done
	return 1
}
# irqb_deps DEB: the library packages DEB depends on.
irqb_deps() {
	dpkg-deb -f "$1" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //' | tr ',' '\n' |
		sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g' | grep -E '^(lib|zlib1g)' || true
}
# irqb_closure BINARY TREE: "SONAME PATH" for each library of BINARY's NEEDED closure that TREE
# holds, "SONAME -" for each it lacks.
irqb_closure() {
	local todo=() seen=" " so f
	mapfile -t todo < <(irqb_needed "$1")
	while [ ${#todo[@]} -gt 0 ]; do
		so=${todo[0]}
		todo=("${todo[@]:1}")
		[[ $seen == *" $so "* ]] && continue
		seen="$seen$so "
		if f=$(irqb_find "$so" "$2"); then
			echo "$so $f"
			mapfile -t -O "${#todo[@]}" todo < <(irqb_needed "$f")
		else
			echo "$so -"
		fi
	done
}
fetch_irqbalance() {
	local tmp=$IRQB_DIR.tmp tree root p deb round missing interp so f
	local want=(irqbalance) closure=()
	local -A got=()
	if [ -x "$IRQB_DIR/root/opt/irqbalance/sbin/irqbalance" ] && [ -s "$IRQB_DIR/root/opt/irqbalance/MANIFEST" ]; then
		log "irqbalance already assembled ($(head -n1 "$IRQB_DIR/root/opt/irqbalance/MANIFEST"))"
		return 0
	fi
	rm -rf "$tmp"
	tree=$tmp/unpacked
	root=$tmp/root
	mkdir -p "$tree" "$root/opt/irqbalance/sbin" "$root/opt/irqbalance/lib" "$root/lib" "$root/usr/sbin"
	for round in 1 2 3 4 5 6; do
		for p in "${want[@]}"; do
			[ -z "${got[$p]:-}" ] || continue
			deb=$(download "$p:arm64") || { log "apt-get download $p:arm64 failed"; return 1; }
			dpkg-deb -x "$deb" "$tree" || { log "dpkg-deb -x $deb failed"; return 1; }
			got[$p]=$deb
		done
		[ -x "$tree/usr/sbin/irqbalance" ] || { log "no usr/sbin/irqbalance in ${got[irqbalance]}"; return 1; }
		mapfile -t closure < <(irqb_closure "$tree/usr/sbin/irqbalance" "$tree")
		missing=$(printf '%s\n' "${closure[@]}" | awk '$2 == "-" { print $1 }' | tr '\n' ' ')
		[ -n "$missing" ] || break
		want=()
		for p in "${!got[@]}"; do
			mapfile -t -O "${#want[@]}" want < <(irqb_deps "${got[$p]}")
		done
		log "irqbalance: round $round: unresolved ${missing}; fetching the library packages the fetched ones depend on"
	done
	[ -z "$missing" ] || { log "irqbalance: libraries not found in any dependency: $missing"; return 1; }
	interp=$(readelf -l "$tree/usr/sbin/irqbalance" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	[ -n "$interp" ] || { log "irqbalance has no PT_INTERP"; return 1; }
	if ! printf '%s\n' "${closure[@]}" | grep -q "^${interp##*/} "; then
		f=$(irqb_find "${interp##*/}" "$tree") || { log "no ${interp##*/} (its interpreter) in the unpacked libraries"; return 1; }
		closure+=("${interp##*/} $f")
	fi
	cp "$tree/usr/sbin/irqbalance" "$root/opt/irqbalance/sbin/irqbalance"
	for p in "${closure[@]}"; do
		so=${p%% *}
		f=${p#* }
		cp -L "$f" "$root/opt/irqbalance/lib/$so"
	done
	mkdir -p "$root$(dirname "$interp")"
	ln -s "/opt/irqbalance/lib/${interp##*/}" "$root$interp"
	cat >"$root/usr/sbin/irqbalance" <<-'EOS'
		#!/bin/sh
		# Debian bookworm's irqbalance with the libraries it needs (tests/vm/fetch.sh).
		LD_LIBRARY_PATH=/opt/irqbalance/lib
		export LD_LIBRARY_PATH
		exec /opt/irqbalance/sbin/irqbalance "$@"
	EOS
	chmod 755 "$root/usr/sbin/irqbalance" "$root/opt/irqbalance/sbin/irqbalance"
	{
		echo "irqbalance $(dpkg-deb -f "${got[irqbalance]}" Version) arm64 (Debian), $(du -sh "$root" | cut -f1) with its libraries"
		for p in $(printf '%s\n' "${!got[@]}" | sort); do
			echo "fetched $p $(dpkg-deb -f "${got[$p]}" Version)"
		done
		for p in "${closure[@]}"; do
			f=${p#* }
			echo "library ${p%% *} ($(du -h "$root/opt/irqbalance/lib/${p%% *}" | cut -f1), from ${f#"$tree"/})"
		done
	} >"$root/opt/irqbalance/MANIFEST"
	rm -rf "$tree" "$IRQB_DIR"
	mv "$tmp" "$IRQB_DIR"
	log "irqbalance assembled: $(head -n1 "$IRQB_DIR/root/opt/irqbalance/MANIFEST")"
}
if ! fetch_irqbalance; then
	rm -rf "$IRQB_DIR.tmp"
	log "WARNING: no irqbalance for the guest (see above): the test of CRI-O's irqbalance --oneshot will skip"
fi

# The default kernel for run.sh / mkinitramfs.sh; suite.sh fetches extra kernels with
# FETCH_SET_CURRENT=0 so they do not replace it.
[ "${FETCH_SET_CURRENT:-1}" = 0 ] || echo "$kdir" >"$CACHE/kernel.current"
log "ready: kernel $kver ($KPKG), busybox $(basename "$bdeb")$([ -s "$IRQB_DIR/root/opt/irqbalance/MANIFEST" ] && echo ", $(head -n1 "$IRQB_DIR/root/opt/irqbalance/MANIFEST" | cut -d, -f1)")"
echo "KERNEL_DIR=$kdir"
