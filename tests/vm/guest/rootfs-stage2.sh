#!/bin/sh
# rootfs-stage2.sh: the guest half of rootfs.sh, run by /init as /run.sh (irqshift.mode=script):
# debootstrap's second stage in a chroot on the disk labelled irqshift-root, then what the systemd
# VM needs of the installed system. Exit 0 when all of it worked.
set -u
root=
for b in /sys/block/vd*; do
	d=/dev/${b##*/}
	# The ext4 label sits at byte 1144 of the disk (superblock at 1024, s_volume_name at 120).
	if [ "$(dd if="$d" bs=1 skip=1144 count=13 2>/dev/null)" = irqshift-root ]; then root=$d; fi
done
[ -n "$root" ] || { echo "stage2: no disk labelled irqshift-root"; exit 1; }
mkdir -p /newroot
mount -t ext4 "$root" /newroot || exit 1
rc=0
if chroot /newroot /debootstrap/debootstrap --second-stage; then
	# irqbalance stays installed for the Conflicts= test but does not start at boot; a getty on the
	# console would only write over the tests' output.
	chroot /newroot systemctl disable irqbalance.service || rc=1
	ln -sf /dev/null /newroot/etc/systemd/system/serial-getty@ttyAMA0.service
	# rootfs.sh's dpkg setting for the build only (no fsync per file: the image is written once).
	rm -f /newroot/etc/dpkg/dpkg.cfg.d/irqshift-rootfs-build /newroot/var/cache/apt/archives/*.deb
else
	tail -n 30 /newroot/debootstrap/debootstrap.log 2>/dev/null
	rc=1
fi
sync
umount /newroot || rc=1
exit $rc
