package deploy

// The Prometheus operator's objects (kubernetes/monitoring/) against the DaemonSet and the alert
// rules: the PrometheusRule carries alerts.yaml's groups, the PodMonitor scrapes the DaemonSet's
// pods as scrape.yaml's job does, and neither is in the default kustomization.

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	monitoringKustomizationPath = "kubernetes/monitoring/kustomization.yaml"
	prometheusRulePath          = "kubernetes/monitoring/prometheusrule.yaml"
	podMonitorPath              = "kubernetes/monitoring/podmonitor.yaml"
)

var update = flag.Bool("update", false, "write "+prometheusRulePath+" from "+alertsPath)

// prometheusRuleHead is the PrometheusRule up to its spec; alerts.yaml's groups follow, indented.
const prometheusRuleHead = `# The alert rules of deploy/prometheus/alerts.yaml as a PrometheusRule of the Prometheus operator.
# Do not edit: edit alerts.yaml and copy its groups here with
#   go test ./deploy/ -run TestPrometheusRuleGroups -update
# (the test fails while the two differ). Each alert's runbook is its section of docs/RUNBOOK.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: irqshift
  namespace: irqshift
  labels:
    app.kubernetes.io/name: irqshift
spec:
`

// prometheusRuleFrom returns the PrometheusRule of an alert rule file: its groups (from the
// line "groups:" on, comments kept) under spec.
func prometheusRuleFrom(alerts []byte) ([]byte, bool) {
	text := string(alerts)
	i := strings.Index(text, "\ngroups:")
	if i < 0 {
		return nil, false
	}
	var b strings.Builder
	b.WriteString(prometheusRuleHead)
	for line := range strings.SplitAfterSeq(text[i+1:], "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return []byte(b.String()), true
}

// TestPrometheusRuleGroups: the PrometheusRule is one (monitoring.coreos.com/v1) in the
// DaemonSet's namespace, and its spec's groups are exactly those of alerts.yaml, compared as
// parsed YAML: names, expressions, durations, labels and annotations. With -update it is written
// from alerts.yaml first.
func TestPrometheusRuleGroups(t *testing.T) {
	alerts, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		out, ok := prometheusRuleFrom(alerts)
		if !ok {
			t.Fatalf("%s has no line groups:", alertsPath)
		}
		if err := os.WriteFile(prometheusRulePath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(prometheusRulePath)
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		object `yaml:",inline"`
		Spec   struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatalf("%s: %v", prometheusRulePath, err)
	}
	var want struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(alerts, &want); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" || rule.Metadata.Name == "" {
		t.Errorf("%s: %s %s %q, want a named monitoring.coreos.com/v1 PrometheusRule", prometheusRulePath, rule.APIVersion, rule.Kind, rule.Metadata.Name)
	}
	if ns := readManifest(t).ds.Metadata.Namespace; rule.Metadata.Namespace != ns {
		t.Errorf("%s: namespace %q, want the DaemonSet's, %s", prometheusRulePath, rule.Metadata.Namespace, ns)
	}
	if len(want.Groups) == 0 {
		t.Fatalf("%s has no groups", alertsPath)
	}
	if !reflect.DeepEqual(rule.Spec.Groups, want.Groups) {
		t.Errorf("%s: spec.groups differ from the groups of %s: run `go test ./deploy/ -run TestPrometheusRuleGroups -update`", prometheusRulePath, alertsPath)
	}
}

// TestPrometheusRuleFrom: the copy keeps the groups and only them, whatever comes before them.
func TestPrometheusRuleFrom(t *testing.T) {
	in := "# head\ngroups:\n  - name: g\n    rules:\n\n      - alert: A\n        expr: >-\n          up\n          == 0\n"
	out, ok := prometheusRuleFrom([]byte(in))
	if !ok {
		t.Fatal("no groups found")
	}
	var got struct {
		Spec struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	var want struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if err := yaml.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec.Groups, want.Groups) || strings.Contains(string(out), "# head") {
		t.Errorf("got\n%s", out)
	}
	if _, ok := prometheusRuleFrom([]byte("rules: []\n")); ok {
		t.Error("a file without groups: gave a PrometheusRule")
	}
}

// podMonitor is the part of a PodMonitor the tests read.
type podMonitor struct {
	object `yaml:",inline"`
	Spec   struct {
		JobLabel          string `yaml:"jobLabel"`
		NamespaceSelector struct {
			Any        bool     `yaml:"any"`
			MatchNames []string `yaml:"matchNames"`
		} `yaml:"namespaceSelector"`
		Selector struct {
			MatchLabels      map[string]string `yaml:"matchLabels"`
			MatchExpressions []any             `yaml:"matchExpressions"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port        string `yaml:"port"`
			Path        string `yaml:"path"`
			Relabelings []struct {
				SourceLabels []string `yaml:"sourceLabels"`
				TargetLabel  string   `yaml:"targetLabel"`
				Action       string   `yaml:"action"`
			} `yaml:"relabelings"`
		} `yaml:"podMetricsEndpoints"`
	} `yaml:"spec"`
}

// TestPodMonitor: the PodMonitor (monitoring.coreos.com/v1) selects the DaemonSet's pods, by
// labels of its pod template, in its namespace; scrapes one endpoint, a container port the pod
// spec names, on a path the metrics server serves (/metrics); and gives the series the target
// labels the alerts and the dashboard use: job from a pod label whose value is scrape.yaml's
// Kubernetes job (the alerts' up{job="irqshift"}), and node from the pod's node.
func TestPodMonitor(t *testing.T) {
	m := readManifest(t)
	data, err := os.ReadFile(podMonitorPath)
	if err != nil {
		t.Fatal(err)
	}
	var pm podMonitor
	if err := yaml.Unmarshal(data, &pm); err != nil {
		t.Fatalf("%s: %v", podMonitorPath, err)
	}
	if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Kind != "PodMonitor" || pm.Metadata.Name == "" {
		t.Errorf("%s: %s %s %q, want a named monitoring.coreos.com/v1 PodMonitor", podMonitorPath, pm.APIVersion, pm.Kind, pm.Metadata.Name)
	}
	ns := m.ds.Metadata.Namespace
	if pm.Metadata.Namespace != ns {
		t.Errorf("namespace %q, want the DaemonSet's, %s", pm.Metadata.Namespace, ns)
	}
	// No namespaceSelector means the PodMonitor's own namespace.
	if sel := pm.Spec.NamespaceSelector; !sel.Any && len(sel.MatchNames) > 0 && !slices.Contains(sel.MatchNames, ns) {
		t.Errorf("namespaceSelector %+v leaves out the DaemonSet's namespace %s", sel, ns)
	}

	podLabels := m.ds.Spec.Template.Metadata.Labels
	sel := pm.Spec.Selector
	if len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		t.Errorf("selector %+v: want matchLabels only", sel)
	}
	for k, v := range sel.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("selector %s=%s does not match the DaemonSet's pod labels %v", k, v, podLabels)
		}
	}
	// Not more than the pods: the DaemonSet's own selector's labels must all be in it, or
	// another workload's pods with those labels would be scraped as irqshift.
	for k, v := range m.ds.Spec.Selector.MatchLabels {
		if sel.MatchLabels[k] != v {
			t.Errorf("selector %v lacks the DaemonSet's selector label %s=%s", sel.MatchLabels, k, v)
		}
	}

	var kubernetesJob string
	for _, job := range readScrape(t).ScrapeConfigs {
		if len(job.KubernetesSDConfigs) > 0 {
			kubernetesJob = job.JobName
		}
	}
	if v, ok := podLabels[pm.Spec.JobLabel]; !ok || v != kubernetesJob {
		t.Errorf("jobLabel %q gives job=%q, want %q (scrape.yaml's job and the alerts'); the pods' labels are %v",
			pm.Spec.JobLabel, v, kubernetesJob, podLabels)
	}

	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%d podMetricsEndpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	var ports []string
	for _, c := range m.ds.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
	}
	if ep.Port == "" || !slices.Contains(ports, ep.Port) {
		t.Errorf("port %q is none of the pod's named ports %v", ep.Port, ports)
	}
	if ep.Path != "/metrics" || !slices.Contains(servedPaths(t), ep.Path) {
		t.Errorf("path %q, want /metrics, the path the metrics server serves (%v)", ep.Path, servedPaths(t))
	}
	node := false
	for _, r := range ep.Relabelings {
		if slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_node_name"}) && r.TargetLabel == "node" && (r.Action == "" || r.Action == "replace") {
			node = true
		}
	}
	if !node {
		t.Error("no relabeling sets node from __meta_kubernetes_pod_node_name: the alerts name the node")
	}
}

// TestMonitoringKustomization: monitoring/kustomization.yaml applies exactly the PrometheusRule
// and the PodMonitor; the default kustomization and the DaemonSet's file have no object of the
// operator's CRDs, so `kubectl apply -k deploy/kubernetes` works on a cluster without them.
func TestMonitoringKustomization(t *testing.T) {
	var k struct {
		Resources []string `yaml:"resources"`
	}
	read := func(path string) []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		k.Resources = nil
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return k.Resources
	}
	got := read(monitoringKustomizationPath)
	want := []string{filepath.Base(prometheusRulePath), filepath.Base(podMonitorPath)}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("%s: resources %v, want %v", monitoringKustomizationPath, got, want)
	}
	for _, r := range read(kustomizationPath) {
		if strings.Contains(r, "monitoring") || slices.Contains(want, filepath.Base(r)) {
			t.Errorf("%s: resource %s needs the Prometheus operator's CRDs", kustomizationPath, r)
		}
	}
	for _, o := range readManifest(t).objects {
		if strings.HasPrefix(o.APIVersion, "monitoring.coreos.com/") {
			t.Errorf("%s: %s %s needs the Prometheus operator's CRDs", manifestPath, o.Kind, o.Metadata.Name)
		}
	}
}
