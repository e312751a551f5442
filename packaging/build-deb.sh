#!/bin/bash
# build-deb.sh: build irqshift_VERSION_ARCH.deb for each ARCH (default: arm64 amd64) with
# dpkg-deb alone (no debhelper, no dpkg-dev): a static Go binary, the systemd unit, the man
# page, the bash, zsh and fish completions, /etc/default/irqshift and the commented example
# /etc/irqshift/rules.d/50-example.toml as conffiles, copyright, changelog, README.md and
# docs/*.md, and the maintainer scripts of packaging/debian/.
#
#   packaging/build-deb.sh [ARCH...]      run from anywhere; `make deb` calls it
#
# VERSION is the newest entry of packaging/debian/changelog (a native package, so no
# revision); its date is SOURCE_DATE_EPOCH unless the environment sets one, and every mtime
# in the package is clamped to it, so the same tree and toolchain give the same bytes.
#
# Environment: GO (default: go in PATH, else /usr/local/go/bin/go), DEB_OUT (default
# bin/deb), SOURCE_DATE_EPOCH.
# Prints the path of each .deb it wrote.
set -euo pipefail
umask 022
export LC_ALL=C TZ=UTC

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
deb=$here/debian
cd "$root"

die() { printf 'build-deb: FAILED: %s\n' "$*" >&2; exit 1; }

GO=$(command -v "${GO:-go}" || command -v /usr/local/go/bin/go) || die "no Go toolchain (GO=${GO:-go})"
OUT=${DEB_OUT:-$root/bin/deb}
for cmd in dpkg-deb gzip md5sum sed find; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done

# --- version and date from the changelog --------------------------------------------------
VERSION=$(sed -n '1s/^irqshift (\([^)]*\)) .*/\1/p' "$deb/changelog")
# Debian version syntax; no '-': a native package has no revision.
[[ $VERSION =~ ^([0-9]+:)?[0-9][A-Za-z0-9.+~]*$ ]] ||
	die "first line of $deb/changelog gives no native version: '$(head -n 1 "$deb/changelog")'"
date=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p;T;q' "$deb/changelog")
[ -n "$date" ] || die "no trailer line in $deb/changelog"
changelog_epoch=$(date -d "$date" +%s) || die "bad date in $deb/changelog: $date"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$changelog_epoch}

ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(arm64 amd64)
for arch in "${ARCHES[@]}"; do
	case $arch in
	arm64 | amd64) ;; # Debian and Go name these two the same
	*) die "unsupported architecture $arch (arm64, amd64)" ;;
	esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gobuild() { # gobuild GOARCH OUTPUT
	# -buildvcs=false: no VCS stamp (a dirty tree would change the bytes); the version is the
	# package's.
	CGO_ENABLED=0 GOOS=linux GOARCH=$1 "$GO" build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION" -o "$2" .
}

# The man page and the completions come from a binary that runs here.
hostarch=$("$GO" env GOHOSTARCH)
gobuild "$hostarch" "$work/irqshift-host"
"$work/irqshift-host" man >"$work/irqshift.8"
[ -s "$work/irqshift.8" ] || die "irqshift man printed nothing"
for shell in bash zsh fish; do
	"$work/irqshift-host" completion "$shell" >"$work/completion.$shell"
	[ -s "$work/completion.$shell" ] || die "irqshift completion $shell printed nothing"
done

# README.md and docs/*.md in /usr/share/doc/irqshift/, each compressed (gzip -9n) when over
# 4 KiB as Debian policy (12.3) asks; docs/X.md becomes X.md(.gz) beside README.md.
mkdir "$work/doc"
for f in README.md docs/*.md; do
	if [ "$(stat -c %s "$f")" -gt 4096 ]; then
		gzip -9n <"$f" >"$work/doc/${f##*/}.gz"
	else
		cp "$f" "$work/doc/${f##*/}"
	fi
done
chmod 0644 "$work/doc/"*

mkdir -p "$OUT"
for arch in "${ARCHES[@]}"; do
	pkg=$work/$arch
	install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/systemd/system" \
		"$pkg/usr/share/man/man8" "$pkg/usr/share/doc/irqshift" \
		"$pkg/usr/share/lintian/overrides" "$pkg/etc/default" "$pkg/etc/irqshift/rules.d" \
		"$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
		"$pkg/usr/share/fish/vendor_completions.d"

	gobuild "$arch" "$pkg/usr/bin/irqshift"
	chmod 0755 "$pkg/usr/bin/irqshift"

	sed 's#@BINDIR@#/usr/bin#g' systemd/irqshift.service.in >"$pkg/usr/lib/systemd/system/irqshift.service"
	! grep -q '@[A-Z]*@' "$pkg/usr/lib/systemd/system/irqshift.service" ||
		die "placeholder left in irqshift.service"
	gzip -9n <"$work/irqshift.8" >"$pkg/usr/share/man/man8/irqshift.8.gz"
	install -m 0644 systemd/irqshift.default "$pkg/etc/default/irqshift"
	# The rules directory the daemon reads and `irqshift pin --persist` writes, owned by the
	# package so that dpkg removes it on purge when nothing but its conffile was in it. The
	# example is all comments (no rule in force until the admin uncomments one) and sorts
	# after irqshift's own 00-pins.toml.
	install -m 0644 packaging/rules.d/50-example.toml "$pkg/etc/irqshift/rules.d/50-example.toml"
	install -m 0644 "$deb/copyright" "$pkg/usr/share/doc/irqshift/copyright"
	# A native package's changelog is changelog.gz (changelog.Debian.gz is for the Debian
	# changes of a non-native one).
	gzip -9n <"$deb/changelog" >"$pkg/usr/share/doc/irqshift/changelog.gz"
	cp -p "$work/doc/"* "$pkg/usr/share/doc/irqshift/"
	install -m 0644 "$work/completion.bash" "$pkg/usr/share/bash-completion/completions/irqshift"
	install -m 0644 "$work/completion.zsh" "$pkg/usr/share/zsh/vendor-completions/_irqshift"
	install -m 0644 "$work/completion.fish" "$pkg/usr/share/fish/vendor_completions.d/irqshift.fish"
	install -m 0644 "$deb/lintian-overrides" "$pkg/usr/share/lintian/overrides/irqshift"
	chmod 0644 "$pkg/usr/lib/systemd/system/irqshift.service" "$pkg/usr/share/man/man8/irqshift.8.gz" \
		"$pkg/usr/share/doc/irqshift/changelog.gz"

	install -m 0755 "$deb/postinst" "$deb/prerm" "$deb/postrm" "$pkg/DEBIAN/"
	install -m 0644 "$deb/conffiles" "$pkg/DEBIAN/conffiles"
	while read -r f; do
		[ -f "$pkg$f" ] || die "conffile $f is not in the package"
	done <"$deb/conffiles"

	# md5sums of every file but the conffiles (dpkg keeps their sums itself), as dh_md5sums.
	(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort |
		grep -vxF -f <(sed 's#^/##' "$deb/conffiles") | xargs -d '\n' md5sum) >"$pkg/DEBIAN/md5sums"
	chmod 0644 "$pkg/DEBIAN/md5sums"

	# Installed-Size as dpkg-gencontrol computes it: KiB of each regular file and symlink
	# rounded up, 1 for every other object (directories), DEBIAN/ left out.
	size=$(cd "$pkg" && find . -path ./DEBIAN -prune -o \( -type f -o -type l \) -printf '%s\n' -o -printf '1024\n' |
		awk '{ n += int(($1 + 1023) / 1024) } END { print n }')
	sed -e '/^#/d' -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
		"$deb/control" >"$pkg/DEBIAN/control"
	chmod 0644 "$pkg/DEBIAN/control"
	! grep -q '@[A-Z_]*@' "$pkg/DEBIAN/control" || die "placeholder left in control"

	find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	out=$OUT/irqshift_${VERSION#*:}_$arch.deb
	# --root-owner-group: root:root whoever builds; dpkg-deb sorts the members and clamps
	# their mtimes to SOURCE_DATE_EPOCH; xz as dpkg-deb's default, named for stability.
	dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
	echo "$out"
done
