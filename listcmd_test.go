package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestListFitsATerminal: the default list fits 80 columns even when a
// driver names its IRQ at length (as mlx5 and NVMe do on servers): the
// actions are cut, never the class.
func TestListFitsATerminal(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	interrupts := filepath.Join(proc, "interrupts")
	long := "mlx5_comp63@pci:0000:01:00.0,nvme0q63,a-driver-with-a-very-long-name"
	writeFile(t, interrupts, strings.Replace(readTrim(t, interrupts), "virtio0-output.0", long, 1)+"\n")
	code, out, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, line := range lines {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("%d columns: %q", n, line)
		}
	}
	if !regexp.MustCompile(`(?m)^30 +mlx5_comp63@pci:0000:01.*… +0-3 +1 +0 +movable$`).MatchString(out) {
		t.Errorf("IRQ 30's row is not its number, its actions cut, mask, effective CPU, total and class:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^IRQ +ACTIONS +AFFINITY +EFFECTIVE +TOTAL +CLASS$`).MatchString(out) {
		t.Errorf("no default header:\n%s", out)
	}
	// The fixture's movable IRQs: 0,13,18 … on CPU 0 (5), 21,30 on CPU 1,
	// 23 on CPU 2, 28 on CPU 3, as the kernel left them.
	if !strings.Contains(out, "movable IRQs per CPU: 5 on CPU 0, 2 on CPU 1, 1 on CPUs 2-3 (spread 4") {
		t.Errorf("no per-CPU summary of movable IRQs:\n%s", out)
	}

	code, out, _ = runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "list", "--wide")
	if code != 0 || !strings.Contains(out, long) || !strings.Contains(out, "ITS-PCI-MSIX-0000:00:01.0") {
		t.Errorf("list --wide cuts what it shows: exit %d\n%s", code, out)
	}
}

func TestListFiltersAndScripts(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys, "--state", "none"}, args...)...)
	}
	rows := func(out string) []string {
		var irqs []string
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			irqs = append(irqs, strings.Fields(line)[0])
		}
		return irqs
	}
	for _, tc := range []struct {
		args []string
		irqs string
	}{
		{[]string{"13", "20-21"}, "13 20 21"},
		// The per-CPU timer and PMU fire on every CPU.
		{[]string{"--cpu", "2"}, "11 19 23 26"},
		{[]string{"--movable", "--cpu", "1-2"}, "21 23 30"},
		{[]string{"--class", "managed"}, "24 25 26 27"},
		{[]string{"--class", "per-cpu,managed", "--cpu", "3"}, "11 19 27"},
		{[]string{"--name", "virtio0-*"}, "28 29 30"},
		{[]string{"--node", "0", "--name", "uart*"}, "13"},
		{[]string{"--cpu", "3", "--movable", "-o", "irq"}, "28"},
	} {
		args := append([]string{"list", "--no-headings"}, tc.args...)
		code, out, stderr := cli(args...)
		if code != 0 || strings.Join(rows(out), " ") != tc.irqs {
			t.Errorf("%v: exit %d, IRQs %v, want %s (%s)", args, code, rows(out), tc.irqs, stderr)
		}
	}
	if _, out, _ := cli("list", "--no-headings", "-o", "irq,device,class", "13"); strings.TrimSpace(out) != "13  -  movable" {
		t.Errorf("list --no-headings -o irq,device,class 13: %q", out)
	}

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"list", "x"}, `"x" is not an IRQ number`},
		{[]string{"list", "999"}, "no IRQ 999 here"},
		{[]string{"list", "--cpu", "0x4"}, "a hex mask? irqshift takes cpulists: 0x4 is 2"},
		{[]string{"list", "--cpu", "9"}, "CPU 9 does not exist here (CPUs 0-3)"},
		{[]string{"list", "--class", "moveable"}, `"moveable" is not a class`},
		{[]string{"list", "-o", "irq,colour"}, `"COLOUR" is not a column`},
		{[]string{"list", "--wide", "-o", "irq"}, "not both"},
	} {
		code, out, stderr := cli(tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, tc.says) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, code, out, stderr, tc.says)
		}
	}

	code, out, _ := cli("list", "--json", "--movable", "--cpu", "1")
	var doc listDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("list --json: exit %d\n%s", code, out)
	}
	var got []int
	for _, irq := range doc.IRQs {
		got = append(got, irq.IRQ)
	}
	if doc.Version != version || len(got) != 2 || got[0] != 21 || got[1] != 30 ||
		doc.MovablePerCPU["0"] != 5 || doc.MovablePerCPU["1"] != 2 || len(doc.MovablePerCPU) != 4 {
		t.Errorf("list --json --movable --cpu 1: version %q, IRQs %v, per CPU %v", doc.Version, got, doc.MovablePerCPU)
	}
}

// TestDryRunIsADiff: a dry run shows each write's mask before and after
// (a narrowing reads 0-3 → 0, not 0 → 0), why, and the movable IRQs per
// CPU before and after; its JSON carries the same.
func TestDryRunIsADiff(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	base := []string{"--proc", proc, "--sys", sys, "--state", "none", "rebalance", "--dry-run"}
	code, out, stderr := runCLI(t, nil, base...)
	if code != 0 {
		t.Fatalf("rebalance --dry-run: exit %d: %s", code, stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^IRQ +ACTIONS +MASK +CPU +WHY$`),
		// uart-pl011: mask 0-3, fires on CPU 0, stays there.
		regexp.MustCompile(`(?m)^13 +uart-pl011 +0-3 → 0 +0 → 0 +narrow: stays on CPU 0$`),
		regexp.MustCompile(`(?m)^movable IRQs per CPU before: 5 on CPU 0, 2 on CPU 1, 1 on CPUs 2-3 \(spread 4`),
		regexp.MustCompile(`(?m)^movable IRQs per CPU after: (3|2) on CPU`),
	} {
		if !want.MatchString(out) {
			t.Errorf("rebalance --dry-run lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "(within one)") {
		t.Errorf("the plan does not leave the counts within one:\n%s", out)
	}
	if after := readTrim(t, filepath.Join(proc, "irq", "13", "smp_affinity_list")); after != "0-3" {
		t.Errorf("a dry run wrote IRQ 13's mask: %s", after)
	}

	code, out, _ = runCLI(t, nil, append(base, "--json")...)
	var doc planDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("rebalance --dry-run --json: exit %d\n%s", code, out)
	}
	var uart *planMoveJSON
	for i := range doc.Moves {
		if doc.Moves[i].IRQ == 13 {
			uart = &doc.Moves[i]
		}
	}
	if doc.Version != version || uart == nil || uart.MaskBefore.String() != "0-3" || uart.To.String() != "0" || uart.Cause != "narrow" || uart.Why == "" {
		t.Errorf("dry-run JSON: version %q, IRQ 13 move %+v", doc.Version, uart)
	}
	lo, hi := 99, 0
	for _, n := range doc.MovablePerCPUAfter {
		lo, hi = min(lo, n), max(hi, n)
	}
	if doc.MovablePerCPUBefore["0"] != 5 || len(doc.MovablePerCPUAfter) != 4 || hi-lo > 1 {
		t.Errorf("dry-run JSON per CPU: before %v, after %v", doc.MovablePerCPUBefore, doc.MovablePerCPUAfter)
	}
}
