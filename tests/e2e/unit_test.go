package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestUnitFile checks the promises the service unit makes to an operator:
// notify with watchdog, restart on failure, no irqbalance beside it, and
// hardening at least as strict as irqbalance's own unit.
func TestUnitFile(t *testing.T) {
	data, err := os.ReadFile("../../systemd/irqshift.service.in")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = v
		}
	}
	want := map[string]string{
		"Type":                     "notify",
		"Restart":                  "on-failure",
		"WatchdogSec":              "30s",
		"Conflicts":                "irqbalance.service",
		"ProtectSystem":            "strict",
		"ReadWritePaths":           "/proc/irq /sys/devices/system/cpu /run/irqshift -/etc/irqshift/rules.d",
		"RestrictAddressFamilies":  "AF_UNIX AF_NETLINK AF_INET AF_INET6",
		"NoNewPrivileges":          "yes",
		"CapabilityBoundingSet":    "CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE",
		"EnvironmentFile":          "-/etc/default/irqshift",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"RuntimeDirectoryPreserve": "yes",
	}
	for k, v := range want {
		if set[k] != v {
			t.Errorf("%s=%q, want %q", k, set[k], v)
		}
	}
	if !strings.Contains(set["ExecStart"], "irqshift --state /run/irqshift/state.json watch") {
		t.Errorf("ExecStart=%q", set["ExecStart"])
	}
	if _, ok := set["ProtectKernelTunables"]; ok {
		t.Error("ProtectKernelTunables makes /proc/irq read-only")
	}
}
