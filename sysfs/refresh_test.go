package sysfs_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// TestRefreshReadsOnlyWhatChanged: after an offline, Refresh reads again
// exactly the IRQs it is told to (here those that were effective on the
// CPU: the kernel moved them, or shut the managed ones down; which IRQs
// an event can have moved is affinity's decision, tested there), in any
// order, and agrees with a full snapshot on every IRQ's files; with
// nothing changed and nothing to read it reads nothing.
func TestRefreshReadsOnlyWhatChanged(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.Big(64, 2, 512))
	fs := sim.FS()
	prev, err := fs.Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	same, err := fs.Refresh(prev, prev.CPUs.Online, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !same.Incremental || len(same.Reread) != 0 || len(same.Appeared) != 0 || len(same.Vanished) != 0 {
		t.Errorf("refresh of an unchanged machine: incremental %v, reread %v, appeared %v, vanished %v", same.Incremental, same.Reread, same.Appeared, same.Vanished)
	}
	const cpu = 5
	var onCPU []int
	for _, row := range prev.Interrupts.IRQs {
		if aff := prev.Affinity[row.IRQ]; aff.Effective.Contains(cpu) {
			onCPU = append(onCPU, row.IRQ)
		}
	}
	if len(onCPU) == 0 {
		t.Fatal("no IRQ on CPU5: the test proves nothing")
	}
	if err := sim.SetCPUOnline(cpu, false); err != nil {
		t.Fatal(err)
	}
	online, err := fs.OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Refresh(prev, online, onCPU)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Reread, onCPU) {
		t.Errorf("reread %v, want the IRQs that were on CPU%d: %v", got.Reread, cpu, onCPU)
	}
	// The list may come in any order, and name a number prev has no row
	// for: Reread follows prev's rows.
	unsorted := append([]int{1 << 20}, onCPU...)
	slices.Reverse(unsorted)
	unordered, err := fs.Refresh(prev, online, unsorted)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unordered.Reread, onCPU) {
		t.Errorf("told %v: reread %v, want %v", unsorted, unordered.Reread, onCPU)
	}
	want, err := fs.Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, got, want)
	if prev.CPUs.Online.Contains(cpu) != true || prev.Affinity[onCPU[0]].Effective.Contains(cpu) != true {
		t.Error("Refresh modified the snapshot it started from")
	}
}

// TestRefreshFindsAppearedAndVanished: IRQs freed and allocated since the
// snapshot are found (the link count of /proc/irq changed), the new one
// described from /sys/kernel/irq as /proc/interrupts would.
func TestRefreshFindsAppearedAndVanished(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	fs := sim.FS()
	prev, err := fs.Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.RemoveIRQ(21); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddIRQ(sysfstest.MSI(40, "ITS-PCI-MSIX-0000:00:05.0", 3, "late-q0")); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddIRQ(sysfstest.MSI(41, "ITS-PCI-MSIX-0000:00:05.0", 4, "late-q1")); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Refresh(prev, prev.CPUs.Online, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Vanished, []int{21}) || !slices.Equal(got.Appeared, []int{40, 41}) {
		t.Errorf("vanished %v appeared %v, want [21] [40 41]", got.Vanished, got.Appeared)
	}
	want, err := fs.Snapshot(sysfs.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, got, want)
}

// sameFiles compares two snapshots' rows (but their counts) and files.
func sameFiles(t *testing.T, got, want *sysfs.Snapshot) {
	t.Helper()
	if !got.CPUs.Online.Equal(want.CPUs.Online) {
		t.Errorf("online %s, want %s", got.CPUs.Online, want.CPUs.Online)
	}
	if len(got.Interrupts.IRQs) != len(want.Interrupts.IRQs) {
		t.Fatalf("%d rows, want %d", len(got.Interrupts.IRQs), len(want.Interrupts.IRQs))
	}
	for i, w := range want.Interrupts.IRQs {
		g := got.Interrupts.IRQs[i]
		if g.IRQ != w.IRQ || g.Chip != w.Chip || g.HWIRQ != w.HWIRQ || g.HasHWIRQ != w.HasHWIRQ || g.Trigger != w.Trigger ||
			g.Handler != w.Handler || !slices.Equal(g.Actions, w.Actions) {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
		ga, wa := got.Affinity[w.IRQ], want.Affinity[w.IRQ]
		if !ga.Affinity.Equal(wa.Affinity) || !ga.Effective.Equal(wa.Effective) || ga.HasEffective != wa.HasEffective || ga.ReadOnly != wa.ReadOnly {
			t.Errorf("IRQ %d: %+v, want %+v", w.IRQ, ga, wa)
		}
		gn, gok := got.IRQNodes[w.IRQ]
		wn, wok := want.IRQNodes[w.IRQ]
		if gn != wn || gok != wok {
			t.Errorf("IRQ %d node %d (%v), want %d (%v)", w.IRQ, gn, gok, wn, wok)
		}
	}
}

// TestRefreshNeedsASnapshot: a snapshot not made by Snapshot (or none)
// cannot be refreshed, and says so.
func TestRefreshNeedsASnapshot(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	for _, prev := range []*sysfs.Snapshot{nil, {}} {
		if _, err := sim.FS().Refresh(prev, sysfs.CPUSet{}, nil); !errors.Is(err, sysfs.ErrNoRefresh) {
			t.Errorf("Refresh(%v): %v, want ErrNoRefresh", prev, err)
		}
	}
}
