package sysfs

import (
	"errors"
	"os"
	"testing"
)

func TestIRQAffinity(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"proc/irq/13/smp_affinity_list":       "0-3\n",
		"proc/irq/13/effective_affinity_list": "0\n",
		"proc/irq/13/affinity_hint":           "0\n",
		"proc/irq/13/node":                    "0\n",
		"proc/irq/11/smp_affinity_list":       "0-3\n",
		"proc/irq/11/effective_affinity_list": "\n",
		"proc/irq/26/smp_affinity_list":       "2\n",
		"proc/irq/26/effective_affinity_list": "2\n",
		"proc/irq/26/affinity_hint":           "4\n",
		"proc/irq/40/smp_affinity_list":       "1\n", // old kernel: no effective file, no node
		"proc/irq/41/smp_affinity_list":       "x\n",
		"proc/irq/42/smp_affinity_list":       "1\n",
		"proc/irq/42/node":                    "zero\n",
	})
	if err := os.Chmod(fs.ProcPath("irq", "26", "smp_affinity_list"), 0o444); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		irq       int
		affinity  string
		effective string
		hasEff    bool
		hint      string
		node      int
		readOnly  bool
		wantErr   error
	}{
		{irq: 13, affinity: "0-3", effective: "0", hasEff: true, hint: "", node: 0},
		{irq: 11, affinity: "0-3", effective: "", hasEff: true, node: -1},
		{irq: 26, affinity: "2", effective: "2", hasEff: true, hint: "2", node: -1, readOnly: true},
		{irq: 40, affinity: "1", node: -1},
		{irq: 41, wantErr: ErrFileParse},
		{irq: 42, wantErr: ErrFileParse},
		{irq: 99, wantErr: ErrGone},
	}
	for _, tt := range tests {
		got, err := fs.IRQAffinity(tt.irq)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("IRQ %d: err = %v, want %v", tt.irq, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("IRQ %d: %v", tt.irq, err)
			continue
		}
		if got.Affinity.String() != tt.affinity || got.Effective.String() != tt.effective || got.HasEffective != tt.hasEff ||
			got.Hint.String() != tt.hint || got.Node != tt.node || got.ReadOnly != tt.readOnly {
			t.Errorf("IRQ %d = %+v", tt.irq, got)
		}
	}
	if eff, err := fs.ReadEffective(40); err != nil || eff.String() != "1" {
		t.Errorf("ReadEffective without the effective file = %v, %v; want the mask", eff, err)
	}
	if _, err := fs.ReadEffective(99); !errors.Is(err, ErrGone) {
		t.Errorf("ReadEffective of a gone IRQ: %v", err)
	}
}

func TestKernelIRQ(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"sys/kernel/irq/13/actions":   "uart-pl011\n",
		"sys/kernel/irq/13/chip_name": "GICv3\n",
		"sys/kernel/irq/13/hwirq":     "33\n",
		"sys/kernel/irq/13/name":      "fasteoi\n",
		"sys/kernel/irq/13/type":      "level\n",
		"sys/kernel/irq/13/wakeup":    "disabled\n",
		"sys/kernel/irq/37/actions":   "mmc1,mmc0\n",
		"sys/kernel/irq/37/chip_name": "GICv2\n",
		"sys/kernel/irq/37/hwirq":     "\n",
		"sys/kernel/irq/5/actions":    "\n",
		"sys/kernel/irq/5/chip_name":  "GICv3\n",
		"sys/kernel/irq/5/hwirq":      "boom\n",
	})
	k, err := fs.KernelIRQ(13)
	if err != nil || k.ChipName != "GICv3" || k.HWIRQ != 33 || !k.HasHWIRQ || k.Type != "level" || len(k.Actions) != 1 {
		t.Errorf("KernelIRQ(13) = %+v, %v", k, err)
	}
	k, err = fs.KernelIRQ(37)
	if err != nil || k.HasHWIRQ || len(k.Actions) != 2 || k.Actions[1] != "mmc0" {
		t.Errorf("KernelIRQ(37) = %+v, %v", k, err)
	}
	if _, err := fs.KernelIRQ(5); !errors.Is(err, ErrFileParse) {
		t.Errorf("KernelIRQ(5) err = %v, want ErrFileParse", err)
	}
	if _, _, err := fs.KernelIRQs(); !errors.Is(err, ErrFileParse) {
		t.Errorf("KernelIRQs with a bad entry: err = %v", err)
	}
	empty := writeTree(t, nil)
	irqs, ok, err := empty.KernelIRQs()
	if ok || err != nil || irqs != nil {
		t.Errorf("without /sys/kernel/irq: %v %v %v, want nothing and no error", irqs, ok, err)
	}
}
