package daemon

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irqshift/irqshift/sysfs"
)

// TestMetricFamilies: MetricFamilies reports every metric the docs list
// (docs/DAEMON.md, "Metrics"; the build info and the last settle's time in
// docs/FLEET.md, "Metrics"), with its type and labels, and nothing else.
func TestMetricFamilies(t *testing.T) {
	got, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		typ    string
		labels []string
	}{
		"irqshift_hotplug_events_total":          {"counter", []string{"action"}},
		"irqshift_irq_moves_total":               {"counter", []string{"reason"}},
		"irqshift_write_errors_total":            {"counter", []string{"class"}},
		"irqshift_reaction_seconds":              {"histogram", nil},
		"irqshift_movable_irqs":                  {"gauge", []string{"cpu"}},
		"irqshift_unmovable_irqs":                {"gauge", []string{"class"}},
		"irqshift_resyncs_total":                 {"counter", []string{"reason"}},
		"irqshift_settles_total":                 {"counter", nil},
		"irqshift_verified_moves_total":          {"counter", nil},
		"irqshift_misrouted_irqs_total":          {"counter", nil},
		"irqshift_banned_cpus":                   {"gauge", []string{"source"}},
		"irqshift_cpu_interrupt_rate":            {"gauge", []string{"cpu"}},
		"irqshift_busiest_cpu_rate_share":        {"gauge", nil},
		"irqshift_busiest_cpu_rate_share_best":   {"gauge", nil},
		"irqshift_movable_irqs_on_offline_cpus":  {"gauge", nil},
		"irqshift_rule_irqs":                     {"gauge", []string{"rule"}},
		"irqshift_rules_load_failures_total":     {"counter", nil},
		"irqshift_build_info":                    {"gauge", []string{"goversion", "version"}},
		"irqshift_last_settle_timestamp_seconds": {"gauge", nil},
	}
	if len(got) != len(want) {
		t.Errorf("MetricFamilies gives %d families, want %d: %v", len(got), len(want), got)
	}
	if !slices.IsSortedFunc(got, func(a, b MetricFamily) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("families not sorted by name")
	}
	for _, f := range got {
		w, ok := want[f.Name]
		if !ok {
			t.Errorf("unexpected family %s", f.Name)
			continue
		}
		if f.Type != w.typ || !slices.Equal(f.Labels, w.labels) {
			t.Errorf("%s: type %s labels %v, want %s %v", f.Name, f.Type, f.Labels, w.typ, w.labels)
		}
		if f.Help == "" {
			t.Errorf("%s has no help", f.Name)
		}
	}
}

// TestMetricFamiliesCountsEveryCollector: the families are as many as
// the collectors NewMetrics registers, counted on a registry of this test.
func TestMetricFamiliesCountsEveryCollector(t *testing.T) {
	counted := &countingRegisterer{Registerer: prometheus.NewRegistry()}
	NewMetrics(counted)
	got, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	if counted.n == 0 || len(got) != counted.n {
		t.Errorf("NewMetrics registers %d collectors, MetricFamilies gives %d", counted.n, len(got))
	}
}

func TestMetricFamilySeries(t *testing.T) {
	for _, tt := range []struct {
		f    MetricFamily
		want []string
	}{
		{MetricFamily{Name: "irqshift_reaction_seconds", Type: "histogram"},
			[]string{"irqshift_reaction_seconds_bucket", "irqshift_reaction_seconds_sum", "irqshift_reaction_seconds_count"}},
		{MetricFamily{Name: "irqshift_settles_total", Type: "counter"}, []string{"irqshift_settles_total"}},
		{MetricFamily{Name: "irqshift_banned_cpus", Type: "gauge"}, []string{"irqshift_banned_cpus"}},
	} {
		if got := tt.f.Series(); !slices.Equal(got, tt.want) {
			t.Errorf("%s.Series() = %v, want %v", tt.f.Name, got, tt.want)
		}
	}
}

// TestWriteErrorsHelpNamesEveryClass: the help of irqshift_write_errors_total lists every class
// label a write error can get (sysfs.WriteClassName), which the alert rules rely on.
func TestWriteErrorsHelpNamesEveryClass(t *testing.T) {
	families, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	help := ""
	for _, f := range families {
		if f.Name == "irqshift_write_errors_total" {
			help = f.Help
		}
	}
	if help == "" {
		t.Fatal("no irqshift_write_errors_total")
	}
	for _, e := range []error{sysfs.ErrUnmovable, sysfs.ErrStaleMask, sysfs.ErrNoSpace, sysfs.ErrGone, sysfs.ErrTransient, sysfs.ErrPermission, errors.New("anything else")} {
		if name := string(sysfs.WriteClassName(e)); !strings.Contains(help, name+",") && !strings.Contains(help, name+")") {
			t.Errorf("help %q does not name the class %q", help, name)
		}
	}
}
