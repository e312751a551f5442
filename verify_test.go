package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVerifyOnFixtureTree(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	code, stdout, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "verify", "--duration", "20ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Method string `json:"method"`
		Coarse bool   `json:"coarse"`
		IRQs   []struct {
			IRQ      int               `json:"irq"`
			Expected []int             `json:"expected"`
			Fired    map[string]uint64 `json:"fired"`
			Verdict  string            `json:"verdict"`
		} `json:"irqs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if doc.Method != "proc-interrupts" || !doc.Coarse {
		t.Errorf("method %q coarse %v on a fixture tree", doc.Method, doc.Coarse)
	}
	// 15 rows, minus the two per-CPU ones; nothing fires in a fixture.
	if len(doc.IRQs) != 13 {
		t.Errorf("%d IRQs checked, want 13", len(doc.IRQs))
	}
	for _, irq := range doc.IRQs {
		if irq.IRQ == 11 || irq.IRQ == 19 {
			t.Errorf("per-CPU IRQ %d checked without --all", irq.IRQ)
		}
		if irq.Verdict != "silent" || len(irq.Fired) != 0 || len(irq.Expected) == 0 {
			t.Errorf("IRQ %+v", irq)
		}
	}
	code, stdout, _ = runCLI(t, nil, "--proc", proc, "--sys", sys, "verify", "--duration", "10ms", "--all", "--irq", "11")
	if code != 0 || !strings.Contains(stdout, "arch_timer") || !strings.Contains(stdout, "/proc/interrupts count deltas") {
		t.Errorf("verify --irq 11: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"verify", "--irq", "99"}, {"verify", "--duration", "0s"}} {
		if code, _, stderr := runCLI(t, nil, append([]string{"--proc", proc, "--sys", sys}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
}
