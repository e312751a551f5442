package daemon

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// MetricFamily describes one metric the daemon exports with
// --metrics-address, as a scrape shows it.
type MetricFamily struct {
	// Name is the family's name: irqshift_reaction_seconds.
	Name string
	// Type is "counter", "gauge" or "histogram".
	Type string
	// Help is its help text.
	Help string
	// Labels are its variable labels, sorted.
	Labels []string
	// Values are, for each label that takes a fixed set of values, those
	// values (in the order of their list: affinity.BanSources,
	// sysfs.WriteErrorClasses, AllSettleReasons, AllResyncReasons, …).
	// A label that takes any value (cpu) has none.
	Values map[string][]string
}

// Series returns the names of the series the family exposes: its name, or
// for a histogram name_bucket, name_sum and name_count.
func (f MetricFamily) Series() []string {
	if f.Type == "histogram" {
		return []string{f.Name + "_bucket", f.Name + "_sum", f.Name + "_count"}
	}
	return []string{f.Name}
}

// MetricFamilies returns the metrics NewMetrics registers, sorted by name,
// for tools that check what refers to them (the Prometheus alert rules in
// deploy/ and the Grafana dashboard there). It gathers them from a registry
// of their own, after recording a sample for each value of its labels'
// lists through the methods the daemon records with. NewMetrics already
// gives every vector of fixed label values a child for each; the samples
// show the observedFamilies (a vector with no child shows no family) and
// that the methods emit no value outside the lists. It fails if a
// registered collector shows no family, so a metric added to NewMetrics
// whose series appear only once recorded must get a sample here, and if a
// label's values are not those of its list.
func MetricFamilies() ([]MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	counted := &countingRegisterer{Registerer: reg}
	m := NewMetrics(counted)

	for _, action := range hotplugActions {
		m.event(string(action))
	}
	for _, reason := range AllResyncReasons {
		m.resync(reason)
	}
	cpu0, err := sysfs.ParseCPUList("0")
	if err != nil {
		return nil, err
	}
	results := []affinity.Result{{IRQ: 1, Status: affinity.StatusMoved}}
	for _, class := range sysfs.WriteErrorClasses {
		results = append(results, affinity.Result{IRQ: 2, Status: affinity.StatusFailed, ErrorClass: class})
	}
	for _, reason := range AllSettleReasons {
		m.settled(reason, results, 0.001, true)
	}
	m.observeState(&affinity.State{Snapshot: &sysfs.Snapshot{CPUs: sysfs.CPUInfo{Online: cpu0}}}, []string{"example"})
	m.rulesFailed()
	m.Verified(1, 1)
	m.observeBans(affinity.BannedCPUs{}, sysfs.CPUInfo{Online: cpu0})

	gathered, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if len(gathered) != counted.n {
		return nil, fmt.Errorf("metrics: NewMetrics registers %d collectors but %d show a family: give the new one a sample in MetricFamilies", counted.n, len(gathered))
	}
	vocabularies := labelValues()
	out := make([]MetricFamily, 0, len(gathered))
	for _, mf := range gathered {
		f := MetricFamily{Name: mf.GetName(), Type: strings.ToLower(mf.GetType().String()), Help: mf.GetHelp(), Values: vocabularies[mf.GetName()]}
		seen := map[string][]string{}
		for _, metric := range mf.GetMetric() {
			for _, pair := range metric.GetLabel() {
				if !slices.Contains(f.Labels, pair.GetName()) {
					f.Labels = append(f.Labels, pair.GetName())
				}
				if !slices.Contains(seen[pair.GetName()], pair.GetValue()) {
					seen[pair.GetName()] = append(seen[pair.GetName()], pair.GetValue())
				}
			}
		}
		slices.Sort(f.Labels)
		for label, values := range f.Values {
			got, want := slices.Sorted(slices.Values(seen[label])), slices.Sorted(slices.Values(values))
			if !slices.Equal(got, want) {
				return nil, fmt.Errorf("metrics: %s{%s} shows %v, its list is %v", f.Name, label, got, want)
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b MetricFamily) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// countingRegisterer counts the collectors registered through it.
type countingRegisterer struct {
	prometheus.Registerer
	n int
}

func (r *countingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.n++
	return nil
}

func (r *countingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
