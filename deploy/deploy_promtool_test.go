package deploy

// promtool's own checks of the Prometheus files: the rules parse and lint
// clean, the scrape configuration loads, and the unit tests of
// prometheus/alerts_test.yaml pass, in which every alert fires in one case
// and stays quiet in others. promtool comes from Debian's prometheus
// package (deploy/promtool.sh; `make test` fetches it into bin/tools and
// sets PROMTOOL).

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	alertsTestPath = "prometheus/alerts_test.yaml"
	// cachedPromtool is where `make promtool` puts it.
	cachedPromtool = "../bin/tools/prometheus/usr/bin/promtool"
)

// promtool returns the promtool to run: $PROMTOOL, which must exist (the
// Makefile sets it, so `make test` never skips), else the one `make
// promtool` caches, else one on PATH. With none of them the test is
// skipped, as on a machine that only runs `go test ./...`.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = exec.LookPath(abs)
		}
		if err != nil {
			t.Fatalf("PROMTOOL=%s: %v (`make promtool` fetches it)", p, err)
		}
		return abs
	}
	if _, err := exec.LookPath(cachedPromtool); err == nil {
		abs, err := filepath.Abs(cachedPromtool)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Skip("promtool not found: PROMTOOL is not set, " + cachedPromtool + " does not exist and no promtool is on PATH; `make promtool` fetches it (`make test` does, and sets PROMTOOL)")
	return ""
}

// runPromtool runs promtool with args in this directory and returns its
// output, failing the test if it exits non-zero.
func runPromtool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPromtoolCheckRules: promtool parses the rule file, every expression
// and template, and finds no duplicate rule (--lint-fatal).
func TestPromtoolCheckRules(t *testing.T) {
	tool := promtool(t)
	out := runPromtool(t, tool, "check", "rules", "--lint-fatal", alertsPath)
	t.Logf("promtool check rules %s:\n%s", alertsPath, out)
}

// TestPromtoolCheckConfig: scrape.yaml is a whole prometheus.yml (one with
// only scrape_configs) and promtool loads it. Debian builds Prometheus
// without Kubernetes discovery, so where promtool does not know
// kubernetes_sd_configs it checks a copy without them: the rest of each job
// (relabelling, paths, intervals, the systemd job's targets) is still
// checked, and TestPrometheusScrape checks the discovery's role and
// namespace.
func TestPromtoolCheckConfig(t *testing.T) {
	tool := promtool(t)
	out, err := exec.Command(tool, "check", "config", scrapePath).CombinedOutput()
	if err == nil {
		t.Logf("promtool check config %s:\n%s", scrapePath, out)
		return
	}
	if !strings.Contains(string(out), "field kubernetes_sd_configs not found") {
		t.Fatalf("promtool check config %s: %v\n%s", scrapePath, err, out)
	}
	data, err := os.ReadFile(scrapePath)
	if err != nil {
		t.Fatal(err)
	}
	stripped, jobs, err := withoutKubernetesSD(data)
	if err != nil {
		t.Fatalf("%s: %v", scrapePath, err)
	}
	if len(jobs) == 0 {
		t.Fatalf("promtool does not know kubernetes_sd_configs, but no job of %s has them:\n%s", scrapePath, out)
	}
	copyPath := filepath.Join(t.TempDir(), "scrape.yaml")
	if err := os.WriteFile(copyPath, stripped, 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := runPromtool(t, tool, "check", "config", copyPath)
	t.Logf("this promtool has no Kubernetes discovery: checked %s without the kubernetes_sd_configs of jobs %v:\n%s", scrapePath, jobs, out2)
}

// withoutKubernetesSD returns a scrape configuration without the
// kubernetes_sd_configs of its jobs, and the jobs that had them.
func withoutKubernetesSD(data []byte) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, errors.New("not a mapping")
	}
	var jobs []string
	top := doc.Content[0].Content
	for i := 0; i+1 < len(top); i += 2 {
		if top[i].Value != "scrape_configs" {
			continue
		}
		for _, job := range top[i+1].Content {
			var kept []*yaml.Node
			name, had := "", false
			for j := 0; j+1 < len(job.Content); j += 2 {
				switch job.Content[j].Value {
				case "kubernetes_sd_configs":
					had = true
					continue
				case "job_name":
					name = job.Content[j+1].Value
				}
				kept = append(kept, job.Content[j], job.Content[j+1])
			}
			if had {
				jobs = append(jobs, name)
			}
			job.Content = kept
		}
	}
	out, err := yaml.Marshal(&doc)
	return out, jobs, err
}

// TestPromtoolTestRules runs the unit tests of alerts_test.yaml.
func TestPromtoolTestRules(t *testing.T) {
	tool := promtool(t)
	out := runPromtool(t, tool, "test", "rules", alertsTestPath)
	t.Logf("promtool test rules %s:\n%s", alertsTestPath, out)
}

// ruleTests is the part of a promtool unit test file the tests read.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTests []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestPrometheusAlertTests needs no promtool: alerts_test.yaml tests
// alerts.yaml itself, every alert of it fires in some case and is checked
// quiet in another (promtool passes a test of an alert that does not exist
// when it expects nothing), and its input series are the daemon's: names,
// labels and fixed label values as TestPrometheusAlerts checks the rules'.
func TestPrometheusAlertTests(t *testing.T) {
	data, err := os.ReadFile(alertsTestPath)
	if err != nil {
		t.Fatal(err)
	}
	var tests ruleTests
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatalf("%s: %v", alertsTestPath, err)
	}
	if !slices.Equal(tests.RuleFiles, []string{filepath.Base(alertsPath)}) {
		t.Errorf("%s: rule_files %v, want [%s]", alertsTestPath, tests.RuleFiles, filepath.Base(alertsPath))
	}

	rules := readAlerts(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}

	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTests {
			if !slices.Contains(alerts, at.Alertname) {
				t.Errorf("%s: eval_time %s tests %q, no alert of %s", alertsTestPath, at.EvalTime, at.Alertname, alertsPath)
			}
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("%s: no test in which %s fires", alertsTestPath, a)
		}
		if !quiet[a] {
			t.Errorf("%s: no test in which %s does not fire", alertsTestPath, a)
		}
	}

	series, jobs := daemonSeries(t)
	for _, tc := range tests.Tests {
		for _, in := range tc.InputSeries {
			name, _, _ := strings.Cut(in.Series, "{")
			if !strings.HasPrefix(name, "irqshift_") {
				continue
			}
			if _, ok := series[name]; !ok {
				t.Errorf("%s: input series %s is no series the daemon exports (%s)", alertsTestPath, name, seriesNames(series))
				continue
			}
			checkSelectors(t, alertsTestPath+": "+in.Series, in.Series, series, jobs)
		}
	}
}
