#!/bin/bash
# test-deb.sh: check the packages packaging/build-deb.sh wrote; `make test-deb` builds them
# (make deb) and runs this.
#
#   packaging/test-deb.sh [ARCH...]       default: arm64 amd64
#
# Installs lintian first when it is missing (apt-get, as root or with sudo). For each
# bin/deb/irqshift_VERSION_ARCH.deb (VERSION from packaging/debian/changelog):
#   - lintian (both packages in one run) fails on LINTIAN_FAIL_ON (default error); every tag,
#     informational and overridden ones too, is printed
#   - the control fields, the exact file list with modes, owners and mtimes, the control
#     members with theirs, md5sums, conffiles, the unit's ExecStart, the gzip headers
#   - the documentation: README.md and docs/*.md as they are in the tree (gzip -9n when over
#     4 KiB), the man page's sections and no warning from man --warnings (as lintian runs it)
#   - the bash, zsh and fish completions: bash -n (zsh -n, fish -n where installed), and
#     the same as `irqshift completion SHELL` of the host's binary
#   - the rules example /etc/irqshift/rules.d/50-example.toml: a conffile, all comments, and
#     with the host's binary it loads as no rules, and its examples load once uncommented
#   - the binary: ELF e_machine (183 aarch64, 62 x86-64), static (ET_EXEC, no PT_INTERP, no
#     PT_DYNAMIC), its Go build settings, a copyright stanza for every module it embeds, and
#     `irqshift --version` of the host's architecture
#   - systemd-analyze verify of the packaged unit (skipped without systemd-analyze)
#   - the maintainer scripts: sh -n, shellcheck when installed, and a run of each against
#     stub deb-systemd-helper/deb-systemd-invoke/systemctl with /run and /etc/irqshift
#     redirected to a temporary directory: what they call on install, upgrade, remove and
#     purge, that /run/irqshift/state.json survives everything but purge, and that the
#     admin's files in /etc/irqshift/rules.d survive purge too
#   - a second build into a temporary directory gives the same bytes (DEB_REPRO=0 skips)
# Environment: DEB_OUT (default bin/deb), LINTIAN_FAIL_ON, DEB_REPRO, GO, SOURCE_DATE_EPOCH.
set -euo pipefail
export LC_ALL=C TZ=UTC
start=$SECONDS

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
deb=$here/debian
OUT=${DEB_OUT:-$root/bin/deb}
LINTIAN_FAIL_ON=${LINTIAN_FAIL_ON:-error}
GO=$(command -v "${GO:-go}" || command -v /usr/local/go/bin/go) || GO=

log() { printf 'test-deb: %s\n' "$*" >&2; }
die() { printf 'test-deb: FAILED: %s\n' "$*" >&2; exit 1; }
failed=0
bad() { printf 'test-deb: FAIL: %s\n' "$*" >&2; failed=1; }

ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(arm64 amd64)

# --- tools: command -> Debian package ------------------------------------------------------
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
declare -A need=(
	[lintian]=lintian
	[dpkg-deb]=dpkg
	[gzip]=gzip
	[od]=coreutils
	[md5sum]=coreutils
	[tar]=tar
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	[ -z "$SUDO" ] || command -v sudo >/dev/null || die "need ${missing[*]}: not root and no sudo"
	log "installing ${missing[*]}"
	apt_log=$(mktemp)
	# Without package lists (a fresh container) the first try fails: update, try again.
	if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
		log "apt-get update"
		$SUDO apt-get update -qq >>"$apt_log" 2>&1 || log "apt-get update reported errors (continuing)"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 ||
			{ tail -n 20 "$apt_log" >&2; die "apt-get install ${missing[*]} failed"; }
	fi
	rm -f "$apt_log"
fi

# --- what the packages must be -------------------------------------------------------------
VERSION=$(sed -n '1s/^irqshift (\([^)]*\)) .*/\1/p' "$deb/changelog")
[ -n "$VERSION" ] || die "no version on the first line of $deb/changelog"
date=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p;T;q' "$deb/changelog")
SDE=${SOURCE_DATE_EPOCH:-$(date -d "$date" +%s)}
stamp=$(date -d "@$SDE" '+%Y-%m-%d %H:%M')
case $(uname -m) in
x86_64) hostarch=amd64 ;;
aarch64) hostarch=arm64 ;;
*) hostarch=none ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expected_files() {
	cat <<-'EOF'
		drwxr-xr-x root/root ./
		drwxr-xr-x root/root ./etc/
		drwxr-xr-x root/root ./etc/default/
		-rw-r--r-- root/root ./etc/default/irqshift
		drwxr-xr-x root/root ./etc/irqshift/
		drwxr-xr-x root/root ./etc/irqshift/rules.d/
		-rw-r--r-- root/root ./etc/irqshift/rules.d/50-example.toml
		drwxr-xr-x root/root ./usr/
		drwxr-xr-x root/root ./usr/bin/
		-rwxr-xr-x root/root ./usr/bin/irqshift
		drwxr-xr-x root/root ./usr/lib/
		drwxr-xr-x root/root ./usr/lib/systemd/
		drwxr-xr-x root/root ./usr/lib/systemd/system/
		-rw-r--r-- root/root ./usr/lib/systemd/system/irqshift.service
		drwxr-xr-x root/root ./usr/share/
		drwxr-xr-x root/root ./usr/share/doc/
		drwxr-xr-x root/root ./usr/share/doc/irqshift/
		-rw-r--r-- root/root ./usr/share/doc/irqshift/changelog.gz
		-rw-r--r-- root/root ./usr/share/doc/irqshift/copyright
		drwxr-xr-x root/root ./usr/share/lintian/
		drwxr-xr-x root/root ./usr/share/lintian/overrides/
		-rw-r--r-- root/root ./usr/share/lintian/overrides/irqshift
		drwxr-xr-x root/root ./usr/share/man/
		drwxr-xr-x root/root ./usr/share/man/man8/
		-rw-r--r-- root/root ./usr/share/man/man8/irqshift.8.gz
		drwxr-xr-x root/root ./usr/share/bash-completion/
		drwxr-xr-x root/root ./usr/share/bash-completion/completions/
		-rw-r--r-- root/root ./usr/share/bash-completion/completions/irqshift
		drwxr-xr-x root/root ./usr/share/zsh/
		drwxr-xr-x root/root ./usr/share/zsh/vendor-completions/
		-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_irqshift
		drwxr-xr-x root/root ./usr/share/fish/
		drwxr-xr-x root/root ./usr/share/fish/vendor_completions.d/
		-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/irqshift.fish
	EOF
	local f
	for f in "$root/README.md" "$root"/docs/*.md; do
		echo "-rw-r--r-- root/root ./usr/share/doc/irqshift/$(doc_name "$f")"
	done
}
# doc_name FILE: its name in /usr/share/doc/irqshift (.gz when over 4 KiB).
doc_name() {
	if [ "$(stat -c %s "$1")" -gt 4096 ]; then echo "${1##*/}.gz"; else echo "${1##*/}"; fi
}
expected_control_members() {
	cat <<-'EOF'
		drwxr-xr-x root/root ./
		-rw-r--r-- root/root ./conffiles
		-rw-r--r-- root/root ./control
		-rw-r--r-- root/root ./md5sums
		-rwxr-xr-x root/root ./postinst
		-rwxr-xr-x root/root ./postrm
		-rwxr-xr-x root/root ./prerm
	EOF
}

# Little-endian unsigned integer of N bytes at OFFSET in FILE.
le() { od -An -v -t "u$2" -j "$3" -N "$2" "$1" | tr -d ' '; }

check_elf() { # check_elf FILE ARCH
	local f=$1 arch=$2 want machine type phoff phentsize phnum i ptype
	case $arch in arm64) want=183 ;; amd64) want=62 ;; esac
	[ "$(od -An -v -t x1 -N 4 "$f" | tr -d ' ')" = 7f454c46 ] || { bad "$arch: $f is not ELF"; return; }
	# ELFCLASS64, ELFDATA2LSB: both architectures are 64-bit little-endian.
	if [ "$(le "$f" 1 4)" != 2 ] || [ "$(le "$f" 1 5)" != 1 ]; then
		bad "$arch: not a 64-bit little-endian ELF"
		return
	fi
	machine=$(le "$f" 2 18)
	[ "$machine" = "$want" ] || bad "$arch: e_machine $machine, want $want"
	type=$(le "$f" 2 16)
	[ "$type" = 2 ] || bad "$arch: e_type $type, want 2 (ET_EXEC: static, not PIE)"
	phoff=$(le "$f" 8 32) phentsize=$(le "$f" 2 54) phnum=$(le "$f" 2 56)
	for ((i = 0; i < phnum; i++)); do
		ptype=$(le "$f" 4 $((phoff + i * phentsize)))
		[ "$ptype" != 3 ] || bad "$arch: the binary has PT_INTERP (dynamically linked)"
		[ "$ptype" != 2 ] || bad "$arch: the binary has PT_DYNAMIC"
	done
	[ "$phnum" -gt 0 ] || bad "$arch: no program headers"
}

check_gzip() { # check_gzip FILE: gzip -9n: no name, no mtime, maximum compression
	local f=$1
	gzip -t "$f" || { bad "$f: bad gzip"; return; }
	[ "$(le "$f" 1 3)" = 0 ] || bad "$f: gzip header has flags (a file name?): not gzip -n"
	[ "$(le "$f" 4 4)" = 0 ] || bad "$f: gzip header has an mtime: not gzip -n"
	[ "$(le "$f" 1 8)" = 2 ] || bad "$f: not compressed with gzip -9"
}

# The packaged rules example read by the packaged binary, on a fixture tree: as shipped it is
# a rules directory without rules; with its example lines uncommented (a '#' and no space)
# every example loads, so that they follow the rules format as it changes.
check_rules_example() { # check_rules_example BINARY EXAMPLE ARCH
	local bin=$1 example=$2 arch=$3 fix=$root/tests/testdata/vm-gicv3-4cpu d=$tmp/rules-$3 want got
	mkdir -p "$d/as-shipped" "$d/uncommented"
	cp "$example" "$d/as-shipped/"
	if ! got=$("$bin" --proc "$fix/proc" --sys "$fix/sys" --rules "$d/as-shipped" rules --json 2>&1); then
		bad "$arch: irqshift rules on the example as shipped: $got"
	elif ! grep -q '"rules": \[\]' <<<"$got"; then
		bad "$arch: the example as shipped has rules: $got"
	fi
	sed -n 's/^#\([^ ]\)/\1/p' "$example" >"$d/uncommented/${example##*/}"
	want=$(sed -n 's/^#name = "\(.*\)"$/\1/p' "$example" | tr '\n' ' ')
	[ -n "$want" ] || bad "$arch: the rules example has no example rule"
	if ! got=$("$bin" --proc "$fix/proc" --sys "$fix/sys" --rules "$d/uncommented" rules --json 2>&1); then
		bad "$arch: the rules example's rules, uncommented, do not load: $got"
	else
		got=$(grep -o '"name": *"[^"]*"' <<<"$got" | sed 's/.*"\([^"]*\)"$/\1/' | tr '\n' ' ')
		[ "$got" = "$want" ] || bad "$arch: the rules example's rules, uncommented, load as '$got', want '$want'"
	fi
}

# The maintainer scripts against stubs; /run is $sim/run, /etc/irqshift $sim/etc/irqshift.
check_scripts() { # check_scripts CONTROL_DIR
	local c=$1 sim=$tmp/sim s
	for s in postinst prerm postrm; do
		[ "$(head -n 1 "$c/$s")" = '#!/bin/sh' ] || bad "$s: not #!/bin/sh"
		grep -qx 'set -e' "$c/$s" || bad "$s: no set -e"
		sh -n "$c/$s" || bad "$s: sh -n"
		if command -v shellcheck >/dev/null; then
			shellcheck -s sh "$c/$s" || bad "$s: shellcheck"
		fi
	done
	rm -rf "$sim" && mkdir -p "$sim/bin" "$sim/run/systemd/system" "$sim/run/irqshift" "$sim/etc/irqshift/rules.d"
	for s in postinst prerm postrm; do
		sed -e "s#/run/#$sim/run/#g" -e "s#/etc/irqshift/#$sim/etc/irqshift/#g" "$c/$s" >"$sim/$s"
	done
	for s in deb-systemd-helper deb-systemd-invoke systemctl; do
		cat >"$sim/bin/$s" <<-EOF
			#!/bin/sh
			echo "$s \$*" >>"$sim/calls"
			[ "$s \$1 \$2" != "deb-systemd-helper --quiet was-enabled" ] || [ ! -e "$sim/disabled" ]
		EOF
		chmod +x "$sim/bin/$s"
	done
	echo '{"version":1}' >"$sim/run/irqshift/state.json"
	# The admin's rules and persistent pins: dpkg removes only the package's conffile.
	echo '# Written by irqshift pin --persist.' >"$sim/etc/irqshift/rules.d/00-pins.toml"
	echo '# the admin' >"$sim/etc/irqshift/rules.d/10-local.toml"
	run() { # run WANT SCRIPT ARGS...: the calls SCRIPT makes must be WANT (one per line)
		local want=$1
		shift
		: >"$sim/calls"
		PATH=$sim/bin:$PATH sh "$sim/$1" "${@:2}" || bad "$* failed"
		[ "$(cat "$sim/calls")" = "$want" ] || bad "$*: calls
$(cat "$sim/calls")
want
$want"
	}
	local u=irqshift.service
	run "deb-systemd-helper unmask $u
deb-systemd-helper --quiet was-enabled $u
deb-systemd-helper enable $u
systemctl --system daemon-reload
deb-systemd-invoke start $u" postinst configure ''
	# Upgrade: prerm leaves the service running, postinst restarts it.
	run "" prerm upgrade 0.11.0
	run "" postrm upgrade 0.11.0
	run "deb-systemd-helper unmask $u
deb-systemd-helper --quiet was-enabled $u
deb-systemd-helper enable $u
systemctl --system daemon-reload
deb-systemd-invoke restart $u" postinst configure 0.10.0
	# The admin disabled it: the upgrade only updates the state, and still restarts.
	touch "$sim/disabled"
	run "deb-systemd-helper unmask $u
deb-systemd-helper --quiet was-enabled $u
deb-systemd-helper update-state $u
systemctl --system daemon-reload
deb-systemd-invoke restart $u" postinst configure 0.10.0
	rm "$sim/disabled"
	[ -f "$sim/run/irqshift/state.json" ] || bad "an upgrade removed /run/irqshift/state.json"
	run "deb-systemd-invoke stop $u" prerm remove
	run "systemctl --system daemon-reload" postrm remove
	[ -f "$sim/run/irqshift/state.json" ] || bad "remove removed /run/irqshift/state.json"
	run "deb-systemd-helper purge $u
deb-systemd-helper unmask $u" postrm purge
	[ ! -e "$sim/run/irqshift" ] || bad "purge left /run/irqshift"
	for f in 00-pins.toml 10-local.toml; do
		[ -f "$sim/etc/irqshift/rules.d/$f" ] || bad "purge removed the admin's /etc/irqshift/rules.d/$f"
	done
	# Without systemd running, or in a dpkg --root installation: links only, nothing started.
	rmdir "$sim/run/systemd/system"
	run "deb-systemd-helper unmask $u
deb-systemd-helper --quiet was-enabled $u
deb-systemd-helper enable $u" postinst configure ''
	mkdir -p "$sim/run/systemd/system"
	DPKG_ROOT=$tmp/dpkgroot run "" prerm remove
	unset -f run
}

# --- lintian, both packages at once (it is the slow part) ---------------------------------
debs=()
for arch in "${ARCHES[@]}"; do
	f=$OUT/irqshift_${VERSION#*:}_$arch.deb
	[ -f "$f" ] || die "$f missing: run make deb"
	debs+=("$f")
done
# Not as root when root: lintian unpacks what it checks and warns about root.
as=()
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1 &&
	runuser -u nobody -- test -r "${debs[0]}"; then
	as=(runuser -u nobody --)
fi
log "lintian $(lintian --version | sed 's/^Lintian v//') --fail-on $LINTIAN_FAIL_ON --display-info on ${debs[*]##*/}"
lstart=$SECONDS
# No --show-overrides: lintian 2.116 then counts the overridden tags for --fail-on too.
set +e
"${as[@]}" lintian --fail-on "$LINTIAN_FAIL_ON" --display-info "${debs[@]}" >"$tmp/lintian.out" 2>&1
lrc=$?
set -e
sed 's/^/  /' "$tmp/lintian.out" >&2
[ -s "$tmp/lintian.out" ] || log "lintian: no tags"
log "lintian took $((SECONDS - lstart)) s; overridden in packaging/debian/lintian-overrides:"
sed -n 's/^irqshift: /  O: /p' "$deb/lintian-overrides" >&2
[ "$lrc" = 0 ] || bad "lintian exited $lrc"
# An override that no longer matches is reported at info level: fail on it anyway.
! grep -E '(unused|mismatched)-override' "$tmp/lintian.out" >/dev/null || bad "lintian: stale override"

# --- each package --------------------------------------------------------------------------
for arch in "${ARCHES[@]}"; do
	f=$OUT/irqshift_${VERSION#*:}_$arch.deb
	x=$tmp/$arch
	dpkg-deb -R "$f" "$x"

	# Control fields.
	for kv in Package=irqshift "Version=$VERSION" "Architecture=$arch" Section=admin Priority=optional \
		"Maintainer=irqshift developers <irqshift@lists.irqshift.org>" \
		"Depends=init-system-helpers (>= 1.54~), procps"; do
		got=$(dpkg-deb -f "$f" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] || bad "$arch: ${kv%%=*} is '$got', want '${kv#*=}'"
	done
	fields=$(sed -n 's/^\([A-Za-z-]*\):.*/\1/p' "$x/DEBIAN/control" | sort | tr '\n' ' ')
	[ "$fields" = "Architecture Depends Description Installed-Size Maintainer Package Priority Section Version " ] ||
		bad "$arch: control fields: $fields"
	size=$(cd "$x" && find . -path ./DEBIAN -prune -o \( -type f -o -type l \) -printf '%s\n' -o -printf '1024\n' |
		awk '{ n += int(($1 + 1023) / 1024) } END { print n }')
	[ "$(dpkg-deb -f "$f" Installed-Size)" = "$size" ] ||
		bad "$arch: Installed-Size $(dpkg-deb -f "$f" Installed-Size), the files take $size KiB"
	synopsis=$(dpkg-deb -f "$f" Description)
	synopsis=${synopsis%%$'\n'*}
	[ ${#synopsis} -le 80 ] || bad "$arch: synopsis longer than 80 characters"

	# Files, modes, owners, mtimes; control members likewise.
	dpkg-deb -c "$f" >"$tmp/list"
	awk '{ print $1, $2, $6 }' "$tmp/list" | sort >"$tmp/got"
	expected_files | sort >"$tmp/want"
	diff -u "$tmp/want" "$tmp/got" >&2 || bad "$arch: file list (want -, got +)"
	awk -v s="$stamp" '$4 " " $5 != s { print "  " $0 }' "$tmp/list" >"$tmp/late"
	[ ! -s "$tmp/late" ] || bad "$arch: mtimes not $stamp:
$(cat "$tmp/late")"
	dpkg-deb --ctrl-tarfile "$f" | tar -tvf - >"$tmp/clist"
	awk '{ print $1, $2, $6 }' "$tmp/clist" | sort >"$tmp/got"
	expected_control_members | sort >"$tmp/want"
	diff -u "$tmp/want" "$tmp/got" >&2 || bad "$arch: control members (want -, got +)"
	for s in postinst prerm postrm conffiles; do
		cmp -s "$deb/$s" "$x/DEBIAN/$s" || bad "$arch: DEBIAN/$s differs from packaging/debian/$s"
	done

	# conffiles and md5sums.
	# The rules example is a conffile, so that dpkg keeps the admin's edits on upgrades.
	printf '%s\n' /etc/default/irqshift /etc/irqshift/rules.d/50-example.toml >"$tmp/want"
	diff -u "$tmp/want" "$x/DEBIAN/conffiles" >&2 || bad "$arch: conffiles (want -, got +)"
	cmp -s "$root/systemd/irqshift.default" "$x/etc/default/irqshift" || bad "$arch: /etc/default/irqshift differs"
	example=$x/etc/irqshift/rules.d/50-example.toml
	cmp -s "$here/rules.d/50-example.toml" "$example" || bad "$arch: 50-example.toml differs from packaging/rules.d/"
	# All comments: it places nothing until the admin uncomments a rule.
	! grep -vn -e '^#' -e '^$' "$example" >&2 || bad "$arch: 50-example.toml has lines that are not comments"
	(cd "$x" && md5sum --quiet --strict -c DEBIAN/md5sums) || bad "$arch: md5sums do not match"
	(cd "$x" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' |
		grep -vxF -e etc/default/irqshift -e etc/irqshift/rules.d/50-example.toml | sort) >"$tmp/want"
	awk '{ print $2 }' "$x/DEBIAN/md5sums" >"$tmp/got"
	diff -u "$tmp/want" "$tmp/got" >&2 || bad "$arch: md5sums lists (want -, got +)"

	# The unit.
	unit=$x/usr/lib/systemd/system/irqshift.service
	exec=$(sed -n 's/^ExecStart=//p' "$unit")
	case $exec in
	"/usr/bin/irqshift "*) ;;
	*) bad "$arch: ExecStart=$exec" ;;
	esac
	sed 's#@BINDIR@#/usr/bin#g' "$root/systemd/irqshift.service.in" | cmp -s - "$unit" ||
		bad "$arch: the unit differs from systemd/irqshift.service.in"
	if command -v systemd-analyze >/dev/null; then
		mkdir -p "$tmp/unit-$arch"
		sed "s#^ExecStart=/usr/bin/#ExecStart=$x/usr/bin/#" "$unit" >"$tmp/unit-$arch/irqshift.service"
		# verify exits 0 on lines it ignores ("Failed to parse ..., ignoring"): any word
		# about our unit fails too.
		if ! systemd-analyze verify --man=no "$tmp/unit-$arch/irqshift.service" >"$tmp/verify" 2>&1 ||
			grep -q irqshift "$tmp/verify"; then
			sed 's/^/  /' "$tmp/verify" >&2
			bad "$arch: systemd-analyze verify"
		fi
	else
		log "$arch: systemd-analyze verify skipped: systemd-analyze not installed"
	fi

	# Documentation.
	for g in usr/share/doc/irqshift/changelog.gz usr/share/man/man8/irqshift.8.gz; do
		check_gzip "$x/$g"
	done
	gzip -dc "$x/usr/share/doc/irqshift/changelog.gz" | cmp -s - "$deb/changelog" ||
		bad "$arch: changelog.gz is not packaging/debian/changelog"
	cmp -s "$deb/copyright" "$x/usr/share/doc/irqshift/copyright" || bad "$arch: copyright differs"
	gzip -dc "$x/usr/share/man/man8/irqshift.8.gz" >"$tmp/man"
	grep -q '^\.TH irqshift 8' "$tmp/man" || bad "$arch: man page has no .TH irqshift 8"
	for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS 'DEVICE RULES' ENVIRONMENT FILES 'EXIT STATUS' \
		SIGNALS 'JSON OUTPUT' EXAMPLES 'SEE ALSO'; do
		grep -qxF ".SH $s" "$tmp/man" || bad "$arch: man page has no section $s"
	done
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$tmp/man" 2>"$tmp/manwarn" >/dev/null ||
			bad "$arch: man -l failed on the man page"
		[ ! -s "$tmp/manwarn" ] || bad "$arch: man --warnings: $(cat "$tmp/manwarn")"
	fi
	for src in "$root/README.md" "$root"/docs/*.md; do
		d=$x/usr/share/doc/irqshift/$(doc_name "$src")
		case $d in
		*.gz) check_gzip "$d" && gzip -dc "$d" | cmp -s - "$src" || bad "$arch: $d is not ${src#"$root"/}" ;;
		*) cmp -s "$src" "$d" || bad "$arch: $d is not ${src#"$root"/}" ;;
		esac
	done
	# The man page sends readers to JSON.md.gz: it must be there.
	! grep -q 'JSON\.md\.gz' "$tmp/man" || [ -f "$x/usr/share/doc/irqshift/JSON.md.gz" ] ||
		bad "$arch: the man page names JSON.md.gz, which the package lacks"

	# Completions.
	bash -n "$x/usr/share/bash-completion/completions/irqshift" || bad "$arch: bash -n on the bash completion"
	for sh in zsh fish; do
		c=$x/usr/share/zsh/vendor-completions/_irqshift
		[ "$sh" = zsh ] || c=$x/usr/share/fish/vendor_completions.d/irqshift.fish
		if command -v "$sh" >/dev/null; then
			"$sh" -n "$c" || bad "$arch: $sh -n on the $sh completion"
		else
			log "$arch: $sh -n skipped: $sh not installed"
		fi
	done

	# The binary.
	bin=$x/usr/bin/irqshift
	check_elf "$bin" "$arch"
	if [ -n "$GO" ]; then
		"$GO" version -m "$bin" >"$tmp/buildinfo"
		# (-trimpath keeps -ldflags out of the build information: --version checks -X below.)
		for kv in "GOARCH=$arch" GOOS=linux CGO_ENABLED=0 -trimpath=true; do
			grep -qxF "	build	$kv" "$tmp/buildinfo" || bad "$arch: build setting $kv missing: $(grep build "$tmp/buildinfo" | tr '\t' ' ')"
		done
		# Every embedded module needs a Files: stanza in copyright.
		awk '/^Files:/ { f = 1; print $2; next } /^[^ ]/ { f = 0 } f { print $1 }' \
			"$deb/copyright" >"$tmp/patterns"
		awk -F '\t' '$2 == "dep" { print $3 }' "$tmp/buildinfo" | while read -r m; do
			grep -qxF "$m/*" "$tmp/patterns" || echo "$m"
		done >"$tmp/nocopyright"
		[ ! -s "$tmp/nocopyright" ] || bad "$arch: modules without a copyright stanza: $(tr '\n' ' ' <"$tmp/nocopyright")"
	else
		log "$arch: build settings and modules unchecked: no Go toolchain"
	fi
	if [ "$arch" = "$hostarch" ]; then
		v=$("$bin" --version 2>&1) || bad "$arch: irqshift --version failed"
		[ "$v" = "irqshift version $VERSION" ] || bad "$arch: irqshift --version: '$v'"
		for sh in bash zsh fish; do
			case $sh in
			bash) c=usr/share/bash-completion/completions/irqshift ;;
			zsh) c=usr/share/zsh/vendor-completions/_irqshift ;;
			fish) c=usr/share/fish/vendor_completions.d/irqshift.fish ;;
			esac
			"$bin" completion "$sh" | cmp -s - "$x/$c" || bad "$arch: /$c is not irqshift completion $sh"
		done
		check_rules_example "$bin" "$example" "$arch"
	fi
done

# --- maintainer scripts (the same in every package) ---------------------------------------
check_scripts "$tmp/${ARCHES[0]}/DEBIAN"

# --- reproducibility -----------------------------------------------------------------------
if [ "${DEB_REPRO:-1}" != 0 ]; then
	DEB_OUT=$tmp/rebuild bash "$here/build-deb.sh" "${ARCHES[@]}" >/dev/null
	for arch in "${ARCHES[@]}"; do
		n=irqshift_${VERSION#*:}_$arch.deb
		cmp -s "$OUT/$n" "$tmp/rebuild/$n" || bad "$arch: a second build differs: not reproducible (or the sources changed since make deb)"
	done
fi

[ "$failed" = 0 ] || die "see FAIL lines above"
log "ok: ${debs[*]##*/} (version $VERSION) in $((SECONDS - start)) s"
