package deploy

// The Prometheus files against irqshift: the scrape jobs and the alert rules.

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/irqshift/irqshift/daemon"
)

// scrapeConfig is the part of scrape.yaml the tests read.
type scrapeConfig struct {
	ScrapeConfigs []struct {
		JobName             string `yaml:"job_name"`
		MetricsPath         string `yaml:"metrics_path"`
		KubernetesSDConfigs []struct {
			Role       string `yaml:"role"`
			Namespaces struct {
				Names []string `yaml:"names"`
			} `yaml:"namespaces"`
		} `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// readAlerts reads the alert rules, alerts.yaml.
func readAlerts(t *testing.T) alertRules {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	return rules
}

// daemonSeries returns the series the daemon registers, each with its
// family (MetricFamily.Series()), and the scrape configuration's job names.
func daemonSeries(t *testing.T) (map[string]daemon.MetricFamily, map[string]bool) {
	t.Helper()
	families, err := daemon.MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]daemon.MetricFamily{}
	for _, f := range families {
		for _, s := range f.Series() {
			series[s] = f
		}
	}
	jobs := map[string]bool{}
	for _, job := range readScrape(t).ScrapeConfigs {
		jobs[job.JobName] = true
	}
	return series, jobs
}

func readScrape(t *testing.T) scrapeConfig {
	t.Helper()
	data, err := os.ReadFile(scrapePath)
	if err != nil {
		t.Fatal(err)
	}
	var sc scrapeConfig
	if err := yaml.Unmarshal(data, &sc); err != nil {
		t.Fatalf("%s: %v", scrapePath, err)
	}
	return sc
}

// metaLabel is the name Prometheus's Kubernetes discovery gives a pod
// label or annotation: invalid characters become underscores.
func metaLabel(prefix, key string) string {
	return prefix + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(key, "_")
}

// TestPrometheusScrape: the Kubernetes job keeps exactly the DaemonSet's
// pods in its namespace on the port named metrics; the systemd job scrapes
// the address the unit's defaults file suggests.
func TestPrometheusScrape(t *testing.T) {
	m := readManifest(t)
	sc := readScrape(t)
	served := servedPaths(t)
	var portName string
	for _, p := range m.c.Ports {
		if p.Name == "metrics" {
			portName = p.Name
		}
	}
	pod := map[string]string{"__meta_kubernetes_pod_container_port_name": portName}
	for k, v := range m.ds.Spec.Template.Metadata.Labels {
		pod[metaLabel("__meta_kubernetes_pod_label_", k)] = v
	}
	for k, v := range m.ds.Spec.Template.Metadata.Annotations {
		pod[metaLabel("__meta_kubernetes_pod_annotation_", k)] = v
	}

	jobs := map[string]bool{}
	for _, job := range sc.ScrapeConfigs {
		jobs[job.JobName] = true
		if job.MetricsPath != "" && !slices.Contains(served, job.MetricsPath) {
			t.Errorf("job %s scrapes %s; the metrics server serves %v", job.JobName, job.MetricsPath, served)
		}
	}
	for _, want := range []string{"irqshift", "irqshift-systemd"} {
		if !jobs[want] {
			t.Errorf("%s has no job %s", scrapePath, want)
		}
	}
	for _, job := range sc.ScrapeConfigs {
		switch job.JobName {
		case "irqshift":
			if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" ||
				!slices.Equal(job.KubernetesSDConfigs[0].Namespaces.Names, []string{m.ds.Metadata.Namespace}) {
				t.Errorf("job irqshift discovers %+v, want pods of namespace %s", job.KubernetesSDConfigs, m.ds.Metadata.Namespace)
			}
			// Every keep rule must keep the DaemonSet's pod on its metrics
			// port, and some must drop a pod with another port name, and a
			// pod without the app label.
			keeps := func(labels map[string]string) bool {
				for _, r := range job.RelabelConfigs {
					if r.Action != "keep" {
						continue
					}
					var values []string
					for _, l := range r.SourceLabels {
						values = append(values, labels[l])
					}
					if !regexp.MustCompile("^(?:" + r.Regex + ")$").MatchString(strings.Join(values, ";")) {
						return false
					}
				}
				return true
			}
			if !keeps(pod) {
				t.Errorf("job irqshift drops the DaemonSet's pods (%v)", pod)
			}
			otherPort := map[string]string{}
			for k, v := range pod {
				otherPort[k] = v
			}
			otherPort["__meta_kubernetes_pod_container_port_name"] = "other"
			if keeps(otherPort) {
				t.Error("job irqshift keeps a port not named metrics")
			}
			otherPod := map[string]string{"__meta_kubernetes_pod_container_port_name": portName}
			if keeps(otherPod) {
				t.Error("job irqshift keeps pods without the DaemonSet's labels")
			}
		case "irqshift-systemd":
			want := systemdMetricsAddress(t)
			if len(job.StaticConfigs) != 1 || !slices.Equal(job.StaticConfigs[0].Targets, []string{want}) {
				t.Errorf("job irqshift-systemd targets %+v, want %s (%s)", job.StaticConfigs, want, defaultsPath)
			}
		}
	}
}

// alertRules is the rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// targetLabels are the labels every scraped series has from its target.
var targetLabels = []string{"job", "instance", "node", "namespace", "pod"}

var (
	metricName = regexp.MustCompile(`\birqshift_[a-z_]+\b`)
	selector   = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*$`)
	byClause   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	labelRef   = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// TestPrometheusAlerts: every alert has a for, a severity, a summary and
// a description; every irqshift metric, label and label
// value it names is one the daemon registers (taken from the daemon
// package, so a renamed metric fails here); the alerts cover misrouted
// IRQs, write errors, reaction time, resyncs, IRQs left on offline CPUs,
// an uneven interrupt load, a daemon that has not settled for long and one
// that is down.
func TestPrometheusAlerts(t *testing.T) {
	series, jobs := daemonSeries(t)

	rules := readAlerts(t)
	names := map[string]bool{}
	used := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q has no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert (record %q)", g.Name, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			names[r.Alert] = true
			// Its syntax, and the expression's, are promtool's to check
			// (deploy_promtool_test.go); here: that it has one.
			if r.For == "" {
				t.Errorf("%s: no for", r.Alert)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}

			// Output labels of the expression, for $labels in annotations.
			outLabels := slices.Clone(targetLabels)
			for _, name := range metricName.FindAllString(r.Expr, -1) {
				f, ok := series[name]
				if !ok {
					t.Errorf("%s: %s is no series the daemon exports (%s)", r.Alert, name, seriesNames(series))
					continue
				}
				used[name] = true
				outLabels = append(outLabels, f.Labels...)
			}
			if by := byClause.FindAllStringSubmatch(r.Expr, -1); by != nil {
				outLabels = nil
				for _, b := range by {
					for l := range strings.SplitSeq(b[1], ",") {
						l = strings.TrimSpace(l)
						if l != "le" && !slices.Contains(targetLabels, l) && !labelOfAny(series, l) {
							t.Errorf("%s: aggregates by %s, a label no irqshift metric has", r.Alert, l)
						}
						outLabels = append(outLabels, l)
					}
				}
			}
			for _, ann := range r.Annotations {
				for _, ref := range labelRef.FindAllStringSubmatch(ann, -1) {
					if !slices.Contains(outLabels, ref[1]) {
						t.Errorf("%s: annotation uses $labels.%s, which %q does not keep", r.Alert, ref[1], r.Expr)
					}
				}
			}
			checkSelectors(t, r.Alert, r.Expr, series, jobs)
		}
	}
	for _, want := range []string{"irqshift_misrouted_irqs_total", "irqshift_write_errors_total", "irqshift_reaction_seconds_bucket", "irqshift_resyncs_total",
		"irqshift_movable_irqs_on_offline_cpus", "irqshift_busiest_cpu_rate_share", "irqshift_busiest_cpu_rate_share_best", "irqshift_cpu_interrupt_rate",
		"irqshift_last_settle_timestamp_seconds"} {
		if !used[want] {
			t.Errorf("no alert on %s", want)
		}
	}
	upAlert := false
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			upAlert = upAlert || regexp.MustCompile(`\bup\{[^}]*job`).MatchString(r.Expr)
		}
	}
	if !upAlert {
		t.Error("no alert on up{job=...}: a daemon that is down")
	}
}

// checkSelectors checks the label matchers of the selectors in expr: an
// irqshift metric's labels must be its own or a target's, and a literal
// value of one of its own labels that takes a fixed set of values (or each
// alternative of a regex) must be one its help text lists and one of its
// constants (MetricFamily.Values: affinity.BanSources,
// sysfs.WriteErrorClasses, daemon.AllSettleReasons,
// daemon.AllResyncReasons); a histogram's _bucket series also has le; up's
// job must be a scrape job.
func checkSelectors(t *testing.T, alert, expr string, series map[string]daemon.MetricFamily, jobs map[string]bool) {
	t.Helper()
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		name, body := sel[1], sel[2]
		f, isIrqshift := series[name]
		for part := range strings.SplitSeq(body, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mm := matcher.FindStringSubmatch(part)
			if mm == nil {
				t.Errorf("%s: cannot read matcher %q", alert, part)
				continue
			}
			label, value := mm[1], mm[3]
			switch {
			case name == "up" && label == "job":
				for _, job := range strings.Split(value, "|") {
					if !jobs[job] {
						t.Errorf("%s: up{job} names %s, no job of %s", alert, job, scrapePath)
					}
				}
			case !isIrqshift:
			case label == "le" && f.Type == "histogram" && name == f.Name+"_bucket":
			case slices.Contains(f.Labels, label):
				values, fixed := f.Values[label]
				if !fixed {
					break // a label of free values (cpu) takes any
				}
				for _, v := range strings.Split(value, "|") {
					if !regexp.MustCompile(`\b` + regexp.QuoteMeta(v) + `\b`).MatchString(f.Help) {
						t.Errorf("%s: %s{%s} matches %q, which its help does not list: %s", alert, name, label, v, f.Help)
					}
					if !slices.Contains(values, v) {
						t.Errorf("%s: %s{%s} matches %q, which is none of its values %v", alert, name, label, v, values)
					}
				}
			case slices.Contains(targetLabels, label):
			default:
				t.Errorf("%s: %s has no label %s (it has %v)", alert, name, label, f.Labels)
			}
		}
	}
}

// TestPrometheusLostEventReasons: the alert rules count as lost uevents
// exactly the resyncs of every reason of daemon.AllResyncReasons but the
// normal ones (the start and a SIGHUP), so a resync reason added to
// irqshift is alerted on unless excluded here on purpose.
func TestPrometheusLostEventReasons(t *testing.T) {
	rules := readAlerts(t)
	var got []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, sel := range selector.FindAllStringSubmatch(r.Expr, -1) {
				if sel[1] != "irqshift_resyncs_total" {
					continue
				}
				for part := range strings.SplitSeq(sel[2], ",") {
					if mm := matcher.FindStringSubmatch(part); mm != nil && mm[1] == "reason" && mm[2] == "=~" {
						got = append(got, strings.Split(mm[3], "|")...)
					}
				}
			}
		}
	}
	var want []string
	for _, r := range daemon.AllResyncReasons {
		if r != daemon.ResyncStart && r != daemon.ResyncSIGHUP {
			want = append(want, string(r))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s counts irqshift_resyncs_total{reason=~%q}, want the reasons of lost uevents %q", alertsPath, got, want)
	}
}

func labelOfAny(series map[string]daemon.MetricFamily, label string) bool {
	for _, f := range series {
		if slices.Contains(f.Labels, label) {
			return true
		}
	}
	return false
}

func seriesNames(series map[string]daemon.MetricFamily) string {
	var names []string
	for s := range series {
		names = append(names, s)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
