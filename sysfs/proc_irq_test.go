package sysfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestIRQAffinity(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"proc/irq/13/smp_affinity_list":       "0-3\n",
		"proc/irq/13/effective_affinity_list": "0\n",
		"proc/irq/11/smp_affinity_list":       "0-3\n",
		"proc/irq/11/effective_affinity_list": "\n",
		"proc/irq/26/smp_affinity_list":       "2\n",
		"proc/irq/26/effective_affinity_list": "2\n",
		"proc/irq/40/smp_affinity_list":       "1\n", // old kernel: no effective file
		"proc/irq/41/smp_affinity_list":       "x\n",
		"proc/irq/42/smp_affinity_list":       "1\n",
		"proc/irq/42/effective_affinity_list": "1-\n",
	})
	if err := os.Chmod(fs.ProcPath("irq", "26", "smp_affinity_list"), 0o444); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		irq       int
		affinity  string
		effective string
		hasEff    bool
		readOnly  bool
		wantErr   error
	}{
		{irq: 13, affinity: "0-3", effective: "0", hasEff: true},
		{irq: 11, affinity: "0-3", effective: "", hasEff: true},
		{irq: 26, affinity: "2", effective: "2", hasEff: true, readOnly: true},
		{irq: 40, affinity: "1"},
		{irq: 41, wantErr: ErrFileParse},
		{irq: 42, wantErr: ErrFileParse},
		{irq: 99, wantErr: ErrGone},
	}
	for _, tt := range tests {
		got, _, err := fs.irqAffinity(tt.irq, nil)
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
		if got.IRQ != tt.irq || got.Affinity.String() != tt.affinity || got.Effective.String() != tt.effective ||
			got.HasEffective != tt.hasEff || got.ReadOnly != tt.readOnly {
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
		"sys/kernel/irq/6/actions":    "\n",
		"sys/kernel/irq/6/chip_name":  "GICv3\n",
		"sys/kernel/irq/6/hwirq":      strings.Repeat("9", 10<<20) + "x\n",
	})
	k, err := fs.KernelIRQ(13)
	if err != nil || k.ChipName != "GICv3" || k.HWIRQ != 33 || !k.HasHWIRQ || k.Type != "level" || len(k.Actions) != 1 {
		t.Errorf("KernelIRQ(13) = %+v, %v", k, err)
	}
	k, err = fs.KernelIRQ(37)
	if err != nil || k.HasHWIRQ || len(k.Actions) != 2 || k.Actions[1] != "mmc0" {
		t.Errorf("KernelIRQ(37) = %+v, %v", k, err)
	}
	if _, err := fs.KernelIRQ(5); !errors.Is(err, ErrFileParse) || !strings.Contains(err.Error(), `"boom"`) {
		t.Errorf("KernelIRQ(5) err = %v, want ErrFileParse quoting the hwirq", err)
	}
	_, err = fs.KernelIRQ(6)
	checkShortError(t, "a 10 MB hwirq", err, fs.SysPath("kernel/irq/6"))
	if _, err := fs.KernelIRQ(7); !isNotExist(err) {
		t.Errorf("KernelIRQ of a missing IRQ: %v, want not-exist", err)
	}
}
