#!/usr/bin/env bash
# ebpf/install-clang.sh: make sure the tools that `make generate` needs to rebuild
# ebpf/irqcount_bpfel.o are installed, from Debian's packages:
#
#   clang          compiles irqcount.c for the BPF target
#   llvm           llvm-strip, which bpf2go runs to drop DWARF from the object
#   libbpf-dev     /usr/include/bpf/bpf_helpers.h (SEC, __uint, helper declarations)
#   linux-libc-dev /usr/include/linux/bpf.h and the multiarch asm/ headers
#
# Does nothing when everything is there already. A normal `go build` never needs any of this:
# the generated irqcount_bpfel.go and irqcount_bpfel.o are committed.
#
# apt may be busy (another script, unattended-upgrades): the dpkg lock is waited for
# (DPkg::Lock::Timeout) and a failed apt-get whose output says the lock was held is retried, for up
# to APT_LOCK_WAIT seconds (default 600).
set -euo pipefail

APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}

log() { echo "install-clang: $*" >&2; }
die() { log "$*"; exit 1; }

multiarch_asm_present() {
	local d
	for d in /usr/include/*-linux-gnu/asm/types.h /usr/include/asm/types.h; do
		[ -f "$d" ] && return 0
	done
	return 1
}

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v llvm-strip >/dev/null 2>&1 || missing+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
{ [ -f /usr/include/linux/bpf.h ] && multiarch_asm_present; } || missing+=(linux-libc-dev)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
	die "missing ${missing[*]} and no apt-get here: install clang, llvm-strip and the libbpf headers by hand"

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root (or install sudo) to let apt-get install them"
	SUDO=sudo
fi

# apt_retry ARGS...: apt-get ARGS, retried while the failure is a held lock.
apt_retry() {
	local deadline=$((SECONDS + APT_LOCK_WAIT)) out rc
	out=$(mktemp)
	while :; do
		rc=0
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=60 "$@" >"$out" 2>&1 || rc=$?
		if [ $rc -eq 0 ]; then
			rm -f "$out"
			return 0
		fi
		if grep -qiE 'could not get lock|unable to lock|is another process using it|lock-frontend' "$out" &&
			[ $SECONDS -lt $deadline ]; then
			log "apt is busy (lock held by another process); retrying in 10 s"
			sleep 10
			continue
		fi
		tail -n 20 "$out" >&2
		rm -f "$out"
		return $rc
	done
}

log "installing ${missing[*]}"
log "apt-get update"
apt_retry update -q || log "apt-get update reported errors (continuing)"
apt_retry install -y -q --no-install-recommends "${missing[@]}" ||
	die "apt-get install ${missing[*]} failed"

command -v clang >/dev/null 2>&1 || die "clang still missing after apt-get install"
command -v llvm-strip >/dev/null 2>&1 || die "llvm-strip still missing after apt-get install"
[ -f /usr/include/bpf/bpf_helpers.h ] || die "/usr/include/bpf/bpf_helpers.h still missing after apt-get install"
log "ok: $(clang --version | head -n 1)"
