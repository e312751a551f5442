package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// copyVMTree copies a tree captured in the arm64 VM into a temporary
// directory and applies its MODES file (git keeps no 0444).
func copyVMTree(t *testing.T, name string) (proc, sys string) {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("tests", "testdata", name)
	if out, err := exec.Command("cp", "-r", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", src, err, out)
	}
	modes, err := os.Open(filepath.Join(dst, "MODES"))
	if err != nil {
		t.Fatal(err)
	}
	defer modes.Close()
	scan := bufio.NewScanner(modes)
	for scan.Scan() {
		mode, path, ok := strings.Cut(scan.Text(), " ")
		if !ok {
			continue
		}
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatalf("MODES line %q", scan.Text())
		}
		if err := os.Chmod(filepath.Join(dst, path), os.FileMode(m)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "proc"), filepath.Join(dst, "sys")
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPinSurvivesKernelOverwrite walks the story of issue 4 on a VM tree:
// the admin pins the uart (IRQ 13) to CPU2, the kernel offlines CPU2 and
// overwrites the mask with the online mask, a rebalance must not put it
// back on the offline CPU, and once CPU2 is back a rebalance restores the
// pin instead of learning the kernel's mask as a new one.
func TestPinSurvivesKernelOverwrite(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	state := filepath.Join(t.TempDir(), "state.json")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", state}, args...)...)
	}
	mask := filepath.Join(proc, "irq", "13", "smp_affinity_list")

	if code, out, errOut := cli("pin", "13", "2"); code != 0 {
		t.Fatalf("pin: exit %d\n%s%s", code, out, errOut)
	}
	if got := readTrim(t, mask); got != "2" {
		t.Fatalf("mask after pin = %q, want 2", got)
	}
	code, out, _ := cli("list", "--json")
	var doc struct {
		IRQs []struct {
			IRQ int   `json:"irq"`
			Pin []int `json:"pin"`
		} `json:"irqs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("list: exit %d %s", code, out)
	}
	for _, irq := range doc.IRQs {
		if (irq.IRQ == 13) != (len(irq.Pin) == 1 && irq.Pin[0] == 2) {
			t.Errorf("IRQ %d pin %v; want only IRQ 13 pinned to [2]", irq.IRQ, irq.Pin)
		}
	}

	// The kernel offlines CPU2: the online mask replaces the pin.
	writeFile(t, filepath.Join(sys, "devices/system/cpu/online"), "0-1,3\n")
	writeFile(t, mask, "0-1,3\n")
	writeFile(t, filepath.Join(proc, "irq", "13", "effective_affinity_list"), "0\n")
	if code, out, errOut := cli("rebalance"); code != 0 {
		t.Fatalf("rebalance with CPU2 offline: exit %d\n%s%s", code, out, errOut)
	}
	if got := readTrim(t, mask); strings.Contains(got, "2") {
		t.Errorf("rebalance wrote %q with CPU2 offline", got)
	}

	// CPU2 returns; the pin comes back.
	writeFile(t, filepath.Join(sys, "devices/system/cpu/online"), "0-3\n")
	if code, out, errOut := cli("rebalance"); code != 0 {
		t.Fatalf("rebalance after online: exit %d\n%s%s", code, out, errOut)
	}
	if got := readTrim(t, mask); got != "2" {
		t.Errorf("pin not restored: mask %q, want 2", got)
	}

	if code, out, _ := cli("unpin", "13"); code != 0 || !strings.Contains(out, "unpinned") {
		t.Errorf("unpin: exit %d %q", code, out)
	}
	if code, _, errOut := cli("unpin", "13"); code != exitUsage || !strings.Contains(errOut, "no pin") {
		t.Errorf("second unpin: exit %d %q", code, errOut)
	}
	if code, _, errOut := cli("pin", "11", "2"); code != exitUsage || !strings.Contains(errOut, "per-CPU") {
		t.Errorf("pin of a per-CPU IRQ: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "--proc", proc, "--sys", sys, "pin", "13", "1"); code != exitUsage || !strings.Contains(errOut, "--state") {
		t.Errorf("pin without state: exit %d %q", code, errOut)
	}
}
