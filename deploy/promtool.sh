#!/bin/bash
# promtool.sh DIR: put Debian's promtool at DIR/usr/bin/promtool, for the tests of
# deploy/prometheus (deploy/deploy_promtool_test.go). `make test` runs it through the Makefile's
# $(PROMTOOL) target, which skips it once the file is there.
#
# promtool ships in Debian's `prometheus` package, which is also the Prometheus server: the
# package is fetched with `apt-get download` (the host's configured sources, never changed) and
# only usr/bin/promtool and the copyright file are unpacked, so nothing is installed, no service
# is started and no server binary is left on disk. The .deb is deleted afterwards. `apt-get
# update` runs only when the download fails (lists missing or stale), as root or with sudo.
# DIR/VERSION records the package's version.
set -euo pipefail

dir=${1:?usage: promtool.sh DIR}
log() { printf 'promtool: %s\n' "$*" >&2; }
die() { printf 'promtool: FAILED: %s\n' "$*" >&2; exit 1; }

command -v apt-get >/dev/null || die "no apt-get: promtool comes from Debian's prometheus package"
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

tmp=$dir.tmp
rm -rf "$tmp"
mkdir -p "$tmp/deb"
trap 'rm -rf "$tmp"' EXIT

download() {
	# APT::Sandbox::User=root: the _apt user may not write to $tmp.
	(cd "$tmp/deb" && apt-get download -q -o APT::Sandbox::User=root prometheus >&2)
}
if ! download; then
	log "apt-get download prometheus failed: apt-get update and retry"
	$SUDO apt-get update -qq >&2 || log "apt-get update reported errors (continuing)"
	download || die "apt-get download prometheus"
fi
deb=$(find "$tmp/deb" -maxdepth 1 -name 'prometheus_*.deb' | head -n1)
[ -n "$deb" ] || die "apt-get download left no prometheus_*.deb"
version=$(dpkg-deb -f "$deb" Version)
log "unpacking usr/bin/promtool of $(basename "$deb")"
mkdir -p "$tmp/root"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/root" ./usr/bin/promtool ./usr/share/doc/prometheus/copyright ||
	die "no usr/bin/promtool in $(basename "$deb")"
echo "$version" >"$tmp/root/VERSION"
"$tmp/root/usr/bin/promtool" --version >/dev/null 2>&1 || die "$tmp/root/usr/bin/promtool --version failed"
rm -rf "$dir"
mv "$tmp/root" "$dir"
log "ready: $dir/usr/bin/promtool (prometheus $version)"
