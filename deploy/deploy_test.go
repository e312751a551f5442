// Package deploy holds the files for running irqshift on fleets: the
// Kubernetes DaemonSet (kubernetes/), the Prometheus scrape jobs and alert
// rules (prometheus/), the same rules and a PodMonitor for the Prometheus
// operator (kubernetes/monitoring/) and a Grafana dashboard (grafana/). Its
// tests check them against irqshift itself: the flags its CLI accepts, the
// paths it reads and writes, the address its metrics server serves, the
// metrics the daemon registers and the alerts' runbook (docs/RUNBOOK.md).
package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/daemon"
)

const (
	manifestPath      = "kubernetes/irqshift.yaml"
	kustomizationPath = "kubernetes/kustomization.yaml"
	scrapePath        = "prometheus/scrape.yaml"
	alertsPath        = "prometheus/alerts.yaml"
	unitPath          = "../systemd/irqshift.service.in"
	defaultsPath      = "../systemd/irqshift.default"
)

// unitFlags returns the values of the systemd unit's ExecStart flags.
func unitFlags(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		for i := 0; i+1 < len(fields); i++ {
			if name, ok := strings.CutPrefix(fields[i], "--"); ok && !strings.HasPrefix(fields[i+1], "-") {
				out[name] = fields[i+1]
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no ExecStart flags", unitPath)
	}
	return out
}

// servedPaths returns the HTTP paths the daemon's metrics server handles.
func servedPaths(t *testing.T) []string {
	t.Helper()
	return []string{daemon.MetricsPath}
}

// unitReadWritePaths is the unit's ReadWritePaths, without the "-" that
// lets a path be missing (-/etc/irqshift/rules.d).
func unitReadWritePaths(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "ReadWritePaths="); ok {
			for _, p := range strings.Fields(rest) {
				out = append(out, strings.TrimPrefix(p, "-"))
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no ReadWritePaths", unitPath)
	}
	return out
}

// buildIrqshift builds the irqshift binary of this tree.
func buildIrqshift(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "irqshift")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// systemdMetricsAddress is the IRQSHIFT_METRICS_ADDRESS of the unit's
// defaults file (a commented example).
func systemdMetricsAddress(t *testing.T) string {
	t.Helper()
	f, err := os.Open(defaultsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimLeft(s.Text(), "# ")
		if v, ok := strings.CutPrefix(line, "IRQSHIFT_METRICS_ADDRESS="); ok && v != "" {
			return v
		}
	}
	t.Fatalf("%s: no IRQSHIFT_METRICS_ADDRESS", defaultsPath)
	return ""
}
