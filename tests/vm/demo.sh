#!/bin/sh
# demo.sh: `make demo`. Boots the arm64 VM (newest kernel, GICv3 + ITS, 4 vCPUs) and shows, step
# by step, what the kernel does with device IRQs when a CPU goes offline, and what irqshift does
# instead.
#
# usage: tests/vm/demo.sh          (on the host; `make demo` builds bin/irqshift-linux-arm64 first)
#
# This one file is both halves of the demo:
#   - on the host (bash) it fetches the kernel (fetch.sh), builds an initramfs with this file as
#     /run.sh (mkinitramfs.sh -s), boots it (run.sh -m script, kernel `quiet loglevel=3`) and
#     prints the guest's narration without the kernel's console noise;
#   - in the guest (busybox sh, /init runs /run.sh) it narrates.
# Exit status: the guest script's result (0 when every step worked). Environment: KERNEL_PKG,
# VM_TIMEOUT, VM_CACHE as for run.sh and fetch.sh; DEMO_SMP (default 4).

# ---------------------------------------------------------------------------------------------
# Guest half (POSIX sh, busybox). Only ever runs inside the VM, as /run.sh.
# ---------------------------------------------------------------------------------------------
demo_guest() {
	PATH=/bin:/sbin:/usr/bin:/usr/sbin
	# The IRQ tables need no interrupt rates; the steps that do pass --sample.
	IRQSHIFT_SAMPLE=0
	export PATH IRQSHIFT_SAMPLE
	fails=0
	ncpu=$(grep -c ^processor /proc/cpuinfo)

	step() { printf '\n\n==== %s ====\n' "$*"; }
	say() { printf '%s\n' "$*" | fold -s -w 96; }
	ok() { printf '  OK: %s\n' "$*"; }
	bad() {
		printf '  PROBLEM: %s\n' "$*"
		fails=$((fails + 1))
	}
	# run CMD...: show and run a command; count a non-zero exit as a failed step.
	run() {
		printf '\n$ %s\n' "$*"
		"$@"
		rc=$?
		if [ $rc != 0 ]; then bad "'$*' exited $rc"; fi
		return $rc
	}
	online() { cat /sys/devices/system/cpu/online; }
	# movable: the IRQ numbers irqshift classes as movable.
	movable() { irqshift list 2>/dev/null | awk '$1 == "IRQ" { for (i = 1; i <= NF; i++) if ($i == "CLASS") c = i } $1 ~ /^[0-9]+$/ && $c ~ /^movable/ {print $1}'; }

	# table: one line per IRQ from the kernel's own files (/proc/interrupts, /proc/irq/N/*), with
	# irqshift's class, then a bar chart of the movable IRQs per effective CPU.
	table() {
		irqshift list >/tmp/demo-list 2>/dev/null
		cpus=""
		c=0
		while [ $c -lt "$ncpu" ]; do
			st=1
			[ -f /sys/devices/system/cpu/cpu$c/online ] && st=$(cat /sys/devices/system/cpu/cpu$c/online)
			cpus="$cpus $c:$st"
			c=$((c + 1))
		done
		awk -v cpus="$cpus" '
		FNR == NR {
			if ($1 == "IRQ") for (i = 1; i <= NF; i++) if ($i == "CLASS") col = i
			if ($1 ~ /^[0-9]+$/) { c = $col; sub(/,.*/, "", c); cls[$1] = c }
			next
		}
		FNR == 1 {
			printf "  %4s  %-17s %-13s %-8s %-9s %s\n", "IRQ", "ACTION", "KIND", "CLASS", "AFFINITY", "EFFECTIVE"
			next
		}
		$1 ~ /^[0-9]+:$/ {
			n = substr($1, 1, length($1) - 1)
			t = 0
			for (i = 2; i <= NF; i++) if ($i == "Level" || $i == "Edge") { t = i; break }
			if (!t) next
			act = ""
			for (i = t + 1; i <= NF; i++) act = act (act == "" ? "" : " ") $i
			chip = $(t - 2); hw = $(t - 1)
			if (chip ~ /^GIC(v[0-9]+)?(-[0-9]+)?$/) kind = (hw + 0 < 32) ? "per-CPU (PPI)" : "SPI (wired)"
			else kind = "MSI"
			f = "/proc/irq/" n "/smp_affinity_list"; aff = ""; getline aff < f; close(f)
			f = "/proc/irq/" n "/effective_affinity_list"; eff = ""; getline eff < f; close(f)
			if (eff == "") eff = "-"
			printf "  %4s  %-17s %-13s %-8s %-9s %s\n", n, act, kind, cls[n], aff, eff
			if (cls[n] == "movable") per[eff]++
		}
		END {
			printf "  movable IRQs per effective CPU:\n"
			k = split(cpus, cs, " ")
			for (i = 1; i <= k; i++) {
				split(cs[i], p, ":")
				bar = ""
				for (j = 0; j < per[p[1]]; j++) bar = bar "#"
				printf "    CPU%s  %-10s %d%s\n", p[1], bar, per[p[1]], p[2] == "0" ? "   (offline)" : ""
			}
		}' /tmp/demo-list /proc/interrupts
	}
	# count_on CPU: movable IRQs whose effective CPU is CPU.
	count_on() {
		n=0
		for i in $(movable); do
			[ "$(cat /proc/irq/"$i"/effective_affinity_list)" = "$1" ] && n=$((n + 1))
		done
		echo $n
	}
	# spis_on CPU: sets on and all: how many of the movable wired GIC SPIs are on CPU, of all.
	spis_on() {
		on=0
		all=0
		for i in $(movable); do
			if grep -Eq "^ *$i: .* GIC(v[0-9]+)?(-[0-9]+)? +[0-9]+ +(Level|Edge)" /proc/interrupts; then
				all=$((all + 1))
				[ "$(cat /proc/irq/"$i"/effective_affinity_list)" = "$1" ] && on=$((on + 1))
			fi
		done
	}

	t0=$(cut -d' ' -f1 /proc/uptime)
	say "irqshift demo: Linux $(uname -r) on $(grep -q GICv3 /proc/interrupts && echo 'GICv3 with ITS' || echo GICv2), $ncpu vCPUs (arm64 under QEMU), kernel booted in ${t0}s."
	say "Devices: a PL011 UART, a PL031 RTC, virtio-rng over virtio-mmio (wired SPIs), and over PCI (MSI-X): virtio-net, virtio-rng, a virtio-serial port fed from the host, and a virtio-blk disk with one queue per CPU."

	step "1. The IRQ table at boot"
	say "Every numbered row of /proc/interrupts with its mask (smp_affinity_list) and the CPU that really takes it (effective_affinity_list). CLASS is irqshift's verdict: per-cpu and managed IRQs are the kernel's; only movable ones can be moved."
	table
	say "At boot the kernel gives every device IRQ the mask 0-$((ncpu - 1)); the GIC delivers each to one CPU. The virtio-blk queues are managed: one per CPU, owned by the kernel."

	step "2. The kernel alone: pin IRQs to CPU2, then take CPU2 offline"
	mov=$(movable | tr '\n' ' ')
	nmov=$(echo "$mov" | wc -w)
	say "An admin pins every movable IRQ to CPU2:  for n in ${mov% }; do echo 2 > /proc/irq/\$n/smp_affinity_list; done"
	for n in $mov; do echo 2 >/proc/irq/"$n"/smp_affinity_list || bad "pin IRQ $n to CPU2"; done
	table
	say "Now CPU2 goes offline the plain way:  echo 0 > /sys/devices/system/cpu/cpu2/online"
	echo 0 >/sys/devices/system/cpu/cpu2/online || bad "offline cpu2"
	table
	spis_on 0
	lost=0
	for n in $mov; do [ "$(cat /proc/irq/"$n"/smp_affinity_list)" = "$(online)" ] && lost=$((lost + 1)); done
	say "-> The kernel moved them itself inside the offline path, before anyone was told: $on of the $all wired SPIs went to CPU0 (the MSIs to the least-loaded CPUs), and $lost of the $nmov pins were overwritten with the online mask $(online)."
	if [ "$on" != "$all" ] || [ "$all" = 0 ]; then bad "expected every SPI on CPU0 (the kernel's own migration)"; fi
	say "CPU2 comes back:  echo 1 > /sys/devices/system/cpu/cpu2/online"
	for n in $mov; do eval "was_$n=\$(cat /proc/irq/$n/smp_affinity_list)"; done
	echo 1 >/sys/devices/system/cpu/cpu2/online || bad "online cpu2"
	table
	back=0
	reset=""
	for n in $mov; do
		was=""
		eval "was=\$was_$n"
		if [ "$(cat /proc/irq/"$n"/smp_affinity_list)" != "$was" ]; then
			reset="$reset $n"
		elif [ "$(cat /proc/irq/"$n"/effective_affinity_list)" = 2 ]; then
			back=$((back + 1))
		fi
	done
	msg="-> CPU2 is back, and the kernel moved $back IRQs back to it: the pins are gone for good."
	if [ -n "$reset" ]; then
		msg="$msg (The only masks that changed,$reset, are virtio-net's queues: its driver resets them to all CPUs in its own CPU-online callback.)"
	fi
	say "$msg"
	if [ $back != 0 ]; then bad "the kernel moved IRQs back to CPU2"; fi
	say "irqshift starts from this mess: it must not take the kernel's 0-1,3 masks for the admin's pins."

	step "3. irqshift: rebalance, drain, offline, online"
	say "irqshift spreads the movable IRQs round-robin with single-CPU masks and reads the effective CPU back."
	run irqshift rebalance
	table
	say "Take CPU3 away the irqshift way: drain it first (its IRQs move while it is still up), then offline it."
	run irqshift drain 3
	run irqshift offline 3
	table
	spis_on 0
	if [ "$(count_on 3)" = 0 ]; then ok "no movable IRQ is left on CPU3; $on of the $all wired SPIs are on CPU0 (the kernel alone put all of them there)"; else bad "movable IRQs still on CPU3"; fi
	say "Bring CPU3 back; irqshift online rebalances, so CPU3 takes IRQs again."
	run irqshift online 3
	table
	n3=$(count_on 3)
	if [ "$n3" -gt 0 ]; then ok "CPU3 is online and the effective CPU of $n3 movable IRQs again"; else bad "CPU3 got no IRQs back"; fi

	step "4. eBPF: where interrupts really fire"
	say "irqshift verify counts, with an eBPF program on the irq/irq_handler_entry tracepoint, on which CPU each IRQ really fires, and compares it with effective_affinity_list. Load: reading /dev/hwrng from the PCI virtio-rng (an ITS MSI). irqshift pins its IRQ to CPU1, then CPU3: the counts follow."
	hw=/sys/class/misc/hw_random
	# MSI rows: IRQ number and its total count.
	msi_counts() { awk -v n="$ncpu" '$1 ~ /^[0-9]+:$/ && /MSI/ {s = 0; for (i = 2; i <= n + 1; i++) s += $i; print $1, s}' /proc/interrupts; }
	rng=""
	for name in $(cat $hw/rng_available); do
		echo "$name" >$hw/rng_current 2>/dev/null || continue
		a=$(msi_counts)
		dd if=/dev/hwrng of=/dev/null bs=64 count=50 2>/dev/null
		b=$(msi_counts)
		rng=$(printf '%s\n%s\n' "$a" "$b" | awk '{ if ($1 in s && $2 - s[$1] >= 20) { sub(":", "", $1); print $1; exit } s[$1] = $2 }')
		[ -n "$rng" ] && break
	done
	if [ -z "$rng" ]; then
		bad "no virtio-rng over PCI (MSI) found in $hw/rng_available"
	else
		say "The PCI virtio-rng ($(cat $hw/rng_current)) interrupts on IRQ $rng."
		for cpu in 1 3; do
			run irqshift --state /run/irqshift-demo.json pin "$rng" "$cpu"
			(dd if=/dev/hwrng of=/dev/null bs=64 count=4000 2>/dev/null &)
			run irqshift verify --duration 2s --irq "$rng"
		done
	fi

	step "5. A busy device: irqshift knows where interrupts are hot"
	# Step 4's reads of /dev/hwrng would make the virtio-rng busy too.
	killall dd 2>/dev/null
	say "A virtio-serial port fed from the host fires its IRQ while the guest reads it. A balancer that only counts IRQs may put it beside another busy one; irqshift measures each IRQ's rate (--sample, 1 s) and gives busy IRQs quiet CPUs."
	port=""
	for p in /sys/class/virtio-ports/*; do
		[ "$(cat "$p/name" 2>/dev/null)" = irqshift-busy.0 ] && port=/dev/${p##*/}
	done
	birq=$(awk '$1 ~ /^[0-9]+:$/ && / virtio[0-9]+-virtqueues$/ { sub(":", "", $1); print $1; exit }' /proc/interrupts)
	if [ -z "$port" ] || [ -z "$birq" ]; then
		bad "no busy virtio-serial port (irqshift-busy.0) or no virtqueues IRQ"
	else
		# Big reads (a small one per interrupt barely makes it fire); dd ends at EOF, which the
		# port gives while the host end is not connected yet: read again.
		(while :; do dd if="$port" of=/dev/null bs=65536 || sleep 0.05; done) >/dev/null 2>&1 &
		# How fast it fires depends on the host feeding the pipe under software emulation (5 to
		# 50 times a second measured): wait, up to 10 s, for a second in which it fired 10 times.
		irq_total() { awk -v n="$birq" '$1 == n ":" { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }
		tries=0
		fired=0
		while [ $tries -lt 10 ] && [ "$fired" -lt 10 ]; do
			a=$(irq_total)
			sleep 1
			fired=$(($(irq_total) - a))
			tries=$((tries + 1))
		done
		say "Reading $port: its IRQ $birq fired $fired times in the last second. irqshift top, one frame:"
		run irqshift top --once
		cpu=$(cat /proc/irq/"$birq"/effective_affinity_list)
		if [ -e /sys/devices/system/cpu/cpu"$cpu"/online ]; then
			say "IRQ $birq fires on CPU$cpu. Take CPU$cpu offline with irqshift: it samples the rates for a second, drains the CPU and sends the busy IRQ to the CPU with the lowest rate."
			run irqshift offline "$cpu" --sample 1s
			away="irqshift online $cpu"
		else
			say "IRQ $birq fires on CPU$cpu, which cannot go offline here: drain it instead, with rates."
			run irqshift drain "$cpu" --sample 1s
			away="irqshift undrain $cpu"
		fi
		new=$(cat /proc/irq/"$birq"/effective_affinity_list)
		run irqshift top --once
		if [ "$new" != "$cpu" ]; then ok "the busy IRQ $birq left CPU$cpu for CPU$new"; else bad "IRQ $birq is still on CPU$cpu"; fi
		run $away
	fi

	printf '\n'
	if [ $fails = 0 ]; then
		say "Demo done in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b-a}')s of guest time: every step worked."
		return 0
	fi
	say "Demo finished with $fails problem(s) (marked PROBLEM above)."
	return 1
}

if grep -qs 'irqshift.mode=script' /proc/cmdline && [ "$(hostname 2>/dev/null)" = irqshift-vm ]; then
	demo_guest
	exit $?
fi

# ---------------------------------------------------------------------------------------------
# Host half (bash).
# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC3040,SC3028,SC3054 # bash from here on (re-exec'd if needed)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${VM_CACHE:-$here/.cache}
smp=${DEMO_SMP:-4}
start=$(date +%s.%N)
since() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }
die() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

bin=${IRQSHIFT_BIN:-$root/bin/irqshift-linux-arm64}
[ -f "$bin" ] || die "no $bin: run 'make demo' (it builds it with 'make build-arm64')"
mkdir -p "$CACHE/logs"
prep=$CACHE/logs/demo-prepare.log

echo "demo: preparing the arm64 VM (fetch kernel + busybox, build the initramfs) ..."
out=$(bash "$here/fetch.sh" 2>"$prep") || {
	tail -n 20 "$prep" >&2
	die "fetch.sh (full output: $prep)"
}
kdir=$(printf '%s\n' "$out" | sed -n 's/^KERNEL_DIR=//p' | tail -n1)
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "fetch.sh gave no kernel (see $prep)"
kver=${vmlinuz##*/vmlinuz-}
initrd=$CACHE/initrd-demo-$kver.gz
IRQSHIFT_BIN=$bin bash "$here/mkinitramfs.sh" -k "$kdir" -s "$here/demo.sh" -o "$initrd" 2>>"$prep" ||
	die "mkinitramfs.sh (see $prep)"
log=$CACHE/logs/demo-$kver-gicv3-${smp}cpu.log
echo "demo: ready in $(since)s; booting Linux $kver, GICv3, $smp vCPUs under qemu-system-aarch64 (software emulation, no KVM)"
echo

# The guest's console, minus the kernel's own lines and /init's bookkeeping.
bash "$here/run.sh" -k "$kdir" -i "$initrd" -m script -g 3 -c "$smp" -b 1 -a loglevel=3 -l "$log" 2>"$CACHE/logs/demo-run.err" |
	sed -u -e '/^\[ *[0-9]*\.[0-9]*\]/d' -e '/^init: /d' -e '/^IRQSHIFT-VM-RESULT: /d'
rc=${PIPESTATUS[0]}
echo
if [ "$rc" = 0 ]; then
	echo "demo: PASS in $(since)s (host wall time, including the boot)."
else
	cat "$CACHE/logs/demo-run.err" >&2
	echo "demo: FAILED after $(since)s." >&2
fi
echo "demo: full console log: $(realpath --relative-to="$PWD" "$log" 2>/dev/null || echo "$log")"
exit "$rc"
