package daemon

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irqshift/irqshift/affinity"
)

// TestNewMetricsShowsEveryFamilyAtStart: a fresh NewMetrics, before any
// event or settle, gathers cleanly on a pedantic registry and shows every
// family of MetricFamilies but the observedFamilies (per-CPU and per-rule,
// whose label values come with the first observed state), which show none
// yet. Each vector of fixed label values has exactly one series per value
// of its list, at 0, so a rate() or an alert sees it before the first
// event; irqshift_build_info is 1 and the last settle's time 0.
func TestNewMetricsShowsEveryFamilyAtStart(t *testing.T) {
	families, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	NewMetrics(reg)
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	shown := map[string]int{} // family → index in gathered
	for i, mf := range gathered {
		shown[mf.GetName()] = i
	}
	for _, name := range observedFamilies {
		if !slices.ContainsFunc(families, func(f MetricFamily) bool { return f.Name == name }) {
			t.Errorf("observedFamilies names %s, which MetricFamilies does not report", name)
		}
	}
	for _, f := range families {
		i, ok := shown[f.Name]
		if slices.Contains(observedFamilies, f.Name) {
			if ok {
				t.Errorf("%s shows %d series before any state was observed: take it out of observedFamilies", f.Name, len(gathered[i].GetMetric()))
			}
			continue
		}
		if !ok {
			t.Errorf("%s is missing from a fresh NewMetrics' scrape", f.Name)
			continue
		}
		if len(f.Values) == 0 {
			continue
		}
		var got []string
		for _, metric := range gathered[i].GetMetric() {
			// A counter's or a gauge's: the other getter gives 0.
			if v := metric.GetCounter().GetValue() + metric.GetGauge().GetValue(); v != 0 {
				t.Errorf("%s%v = %v at start, want 0", f.Name, metric.GetLabel(), v)
			}
			for _, pair := range metric.GetLabel() {
				got = append(got, pair.GetName()+"="+pair.GetValue())
			}
		}
		var want []string
		for label, values := range f.Values {
			for _, v := range values {
				want = append(want, label+"="+v)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s shows %v at start, want one series at 0 for each of %v", f.Name, got, want)
		}
	}
	if len(gathered) != len(families)-len(observedFamilies) {
		t.Errorf("a fresh NewMetrics shows %d families, want %d (MetricFamilies' %d less the %d observed ones)",
			len(gathered), len(families)-len(observedFamilies), len(families), len(observedFamilies))
	}
	if i, ok := shown["irqshift_last_settle_timestamp_seconds"]; ok {
		if v := gathered[i].GetMetric()[0].GetGauge().GetValue(); v != 0 {
			t.Errorf("irqshift_last_settle_timestamp_seconds = %v before any settle, want 0", v)
		}
	}
	checkBuildInfo(t, reg, unknownVersion)
}

// TestBuildInfo: irqshift_build_info is a gauge with one series, at 1,
// labelled with the version SetVersion names (the caller's: main's
// version through Config.Version), "unknown" for none, and
// runtime.Version(); a second SetVersion replaces the series. A nil
// *Metrics records nothing.
func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	for _, tt := range []struct{ set, want string }{
		{"v0.12.0", "v0.12.0"},
		{"v0.12.0-3-gabcdef-dirty", "v0.12.0-3-gabcdef-dirty"},
		{"", unknownVersion},
	} {
		m.SetVersion(tt.set)
		checkBuildInfo(t, reg, tt.want)
	}
	var nilMetrics *Metrics
	nilMetrics.SetVersion("v1")
}

// checkBuildInfo checks reg's irqshift_build_info: one gauge series at 1,
// labelled version and goversion.
func checkBuildInfo(t *testing.T, reg *prometheus.Registry, version string) {
	t.Helper()
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	i := -1
	for j, mf := range gathered {
		if mf.GetName() == "irqshift_build_info" {
			i = j
		}
	}
	if i < 0 {
		t.Fatal("no irqshift_build_info")
	}
	mf := gathered[i]
	if typ := mf.GetType().String(); typ != "GAUGE" || len(mf.GetMetric()) != 1 {
		t.Fatalf("irqshift_build_info is a %s of %d series, want a gauge of 1", typ, len(mf.GetMetric()))
	}
	metric := mf.GetMetric()[0]
	labels := map[string]string{}
	for _, pair := range metric.GetLabel() {
		labels[pair.GetName()] = pair.GetValue()
	}
	if len(labels) != 2 || labels["version"] != version || labels["goversion"] != runtime.Version() {
		t.Errorf("irqshift_build_info labels %v, want version=%s goversion=%s", labels, version, runtime.Version())
	}
	if v := metric.GetGauge().GetValue(); v != 1 {
		t.Errorf("irqshift_build_info = %v, want 1", v)
	}
}

// TestLastSettleTimestamp: each settle sets
// irqshift_last_settle_timestamp_seconds to the Unix time (on the
// metrics' clock, fixed here) at which it completed, whether or not it
// moved anything or had a reaction time; a nil *Metrics records nothing.
func TestLastSettleTimestamp(t *testing.T) {
	m := NewMetrics(prometheus.NewPedanticRegistry())
	if v := testutil.ToFloat64(m.lastSettle); v != 0 {
		t.Fatalf("before any settle: %v, want 0", v)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 500_000_000, time.UTC)
	m.now = func() time.Time { return at }
	m.settled(SettleStart, []affinity.Result{{IRQ: 1, Status: affinity.StatusMoved}}, 0.002, true)
	if v, want := testutil.ToFloat64(m.lastSettle), float64(at.Unix())+0.5; v != want {
		t.Errorf("after the start settle: %v, want %v", v, want)
	}
	at = at.Add(30 * time.Second)
	m.settled(SettleCheck, nil, 0, false)
	if v, want := testutil.ToFloat64(m.lastSettle), float64(at.Unix())+0.5; v != want {
		t.Errorf("after a periodic check that moved nothing: %v, want %v", v, want)
	}
	if n := testutil.ToFloat64(m.settles); n != 2 {
		t.Errorf("irqshift_settles_total = %v, want 2", n)
	}
	var nilMetrics *Metrics
	nilMetrics.settled(SettleCheck, nil, 0, false)
}
