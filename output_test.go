package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/quote"
)

// TestTerminalEscapesInNames: an action name with terminal escapes (a
// driver names its IRQ after a device name it was given) is shown escaped
// in every table, never sent raw to the terminal, and JSON keeps it
// exactly, escaped by the JSON encoder.
func TestTerminalEscapesInNames(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	interrupts := filepath.Join(proc, "interrupts")
	data, err := os.ReadFile(interrupts)
	if err != nil {
		t.Fatal(err)
	}
	evil := "uart\x1b[2J\x1b]0;owned\x07\tx"
	if err := os.WriteFile(interrupts, []byte(strings.Replace(string(data), "uart-pl011", evil, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--proc", proc, "--sys", sys, "--state", "none"}
	for _, args := range [][]string{{"list"}, {"rebalance", "--dry-run"}, {"drain", "0", "--dry-run"}} {
		code, stdout, stderr := runCLI(t, nil, append(base, args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d, %s", args, code, stderr)
		}
		if strings.ContainsAny(stdout+stderr, "\x1b\x07") {
			t.Errorf("%v: a control character reached the terminal:\n%q", args, stdout)
		}
		if args[0] == "list" && !strings.Contains(stdout, `uart\x1b[2J\x1b]0;owned\a\tx`) {
			t.Errorf("%v: the escaped name is not shown:\n%s", args, stdout)
		}
	}
	code, stdout, stderr := runCLI(t, nil, append(base, "list", "--json")...)
	if code != exitOK {
		t.Fatalf("list --json: exit %d, %s", code, stderr)
	}
	if strings.ContainsAny(stdout, "\x1b\x07") {
		t.Errorf("list --json: a raw control character")
	}
	var doc struct {
		IRQs []struct {
			IRQ     int      `json:"irq"`
			Actions []string `json:"actions"`
		} `json:"irqs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, irq := range doc.IRQs {
		if irq.IRQ == 13 {
			found = len(irq.Actions) == 1 && irq.Actions[0] == evil
		}
	}
	if !found {
		t.Errorf("list --json does not keep IRQ 13's action name exactly")
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"virtio0-input.0": "virtio0-input.0",
		"":                "",
		"naïve ✓":         "naïve ✓",
		"a\x1b[31mb":      `a\x1b[31mb`,
		"tab\there":       `tab\there`,
		"bad\xffutf8":     `bad\xffutf8`,
		"nul\x00":         `nul\x00`,
		"line\nbreak":     `line\nbreak`,
		"\u202eevil":      `\u202eevil`,
	} {
		if got := quote.Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
