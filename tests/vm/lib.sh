# lib.sh: shell functions shared by fetch.sh and rootfs.sh (sourced, not run).

# debian_mirror: the Debian archive that the host's own apt sources name (deb822 or one-line
# format), not its security archive; VM_DEBIAN_MIRROR overrides it. The VM's private apt lists
# and its root file system come from the archive the host already trusts, so no host name is
# written into the project.
debian_mirror() {
	if [ -n "${VM_DEBIAN_MIRROR:-}" ]; then
		echo "$VM_DEBIAN_MIRROR"
		return
	fi
	# Missing files are normal (a host has one format or the other): never fail, print nothing.
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}'
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'
	} | grep -v -e security -e '^$' | grep -E '/debian/?$' | head -n1 || true
}
