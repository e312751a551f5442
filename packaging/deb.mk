# packaging/deb.mk: Debian packages, included by the top Makefile (paths relative to the repo
# root). Only Debian's own tools: dpkg-deb, gzip, and the Go toolchain.
#
#   make deb        bin/deb/irqshift_VERSION_arm64.deb and irqshift_VERSION_amd64.deb
#                   (packaging/build-deb.sh); VERSION is the newest entry of
#                   packaging/debian/changelog, not git describe
#   make test-deb   make deb, then lintian (installed with apt-get when missing) and the checks
#                   of packaging/test-deb.sh: fields, files and modes, conffiles (the rules
#                   example of packaging/rules.d/ loaded by the binary too), the unit (with
#                   systemd-analyze verify), the binary's ELF machine and static linking, its
#                   --version, the maintainer scripts against stubs, a reproducible rebuild
#
# Variables: DEB_ARCHES (default "arm64 amd64"), DEB_OUT (default bin/deb), LINTIAN_FAIL_ON
# (default error), DEB_REPRO=0 (no rebuild check), SOURCE_DATE_EPOCH (default: the changelog's
# date).

DEB_ARCHES ?= arm64 amd64

.PHONY: deb test-deb

deb:
	GO='$(GO)' bash packaging/build-deb.sh $(DEB_ARCHES)

test-deb: deb
	GO='$(GO)' bash packaging/test-deb.sh $(DEB_ARCHES)
