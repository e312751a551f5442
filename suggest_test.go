package main

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	commands := []string{"list", "rules", "rebalance", "drain", "undrain", "offline", "online", "pin", "unpin", "status"}
	for word, want := range map[string]string{"lsit": "list", "rebalanse": "rebalance", "statsu": "status", "frobnicate": "", "unpni": "unpin"} {
		if got := closest(word, commands); got != want {
			t.Errorf("closest(%q) = %q, want %q", word, got, want)
		}
	}
}

// TestBannedCPUsThatDoNotExist: a ban of a CPU the machine lacks is a
// warning (it does nothing), not silence.
func TestBannedCPUsThatDoNotExist(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	code, _, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "--banned-cpus", "2,9-10", "list")
	if code != 0 || !strings.Contains(stderr, `level=WARN msg="banned CPUs that do not exist here; their ban does nothing" cpus=9-10 possible=0-3`) {
		t.Errorf("--banned-cpus 2,9-10: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "--banned-cpus", "2", "list")
	if code != 0 || stderr != "" {
		t.Errorf("--banned-cpus 2: exit %d, stderr %q", code, stderr)
	}
}
