package daemon

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/sysfs"
)

// hotplugActions are the actions irqshift_hotplug_events_total counts.
var hotplugActions = []hotplug.Action{hotplug.Online, hotplug.Offline}

// unmovableClasses are the classes irqshift_unmovable_irqs counts: every
// class but movable.
var unmovableClasses = []affinity.Class{affinity.ClassPerCPU, affinity.ClassNoAction, affinity.ClassManaged, affinity.ClassBanned, affinity.ClassIgnored}

// labelValues are, for each metric whose labels take a fixed set of
// values, those values by label: the lists the help texts are built from
// and MetricFamily.Values reports.
func labelValues() map[string]map[string][]string {
	return map[string]map[string][]string{
		"irqshift_hotplug_events_total": {"action": asStrings(hotplugActions)},
		"irqshift_irq_moves_total":      {"reason": asStrings(AllSettleReasons)},
		"irqshift_write_errors_total":   {"class": asStrings(sysfs.WriteErrorClasses)},
		"irqshift_unmovable_irqs":       {"class": asStrings(unmovableClasses)},
		"irqshift_resyncs_total":        {"reason": asStrings(AllResyncReasons)},
		"irqshift_banned_cpus":          {"source": asStrings(affinity.BanSources)},
	}
}

// observedFamilies are the families whose label values are known only
// once a state is observed (observeState): the per-CPU gauges (their cpu
// is each online CPU) and the per-rule one (its rule is each rule in
// force). They show no series until the first settle; every other family
// shows from NewMetrics on, each vector with a child at 0 for every value
// of its labelValues.
var observedFamilies = []string{"irqshift_movable_irqs", "irqshift_cpu_interrupt_rate", "irqshift_rule_irqs"}

// unknownVersion is irqshift_build_info's version until SetVersion names
// one, and for an empty one: an empty label value would drop the label.
const unknownVersion = "unknown"

// Metrics are the daemon's Prometheus metrics. A nil *Metrics records
// nothing, so tests and --metrics-address off need no registry.
type Metrics struct {
	events        *prometheus.CounterVec
	moves         *prometheus.CounterVec
	writeErrors   *prometheus.CounterVec
	reaction      prometheus.Histogram
	movablePerCPU *prometheus.GaugeVec
	unmovable     *prometheus.GaugeVec
	resyncs       *prometheus.CounterVec
	settles       prometheus.Counter
	verifiedMoves prometheus.Counter
	misroutedIRQs prometheus.Counter
	bannedCPUs    *prometheus.GaugeVec
	cpuRate       *prometheus.GaugeVec
	busiestShare  prometheus.Gauge
	bestShare     prometheus.Gauge
	onOffline     prometheus.Gauge
	ruleIRQs      *prometheus.GaugeVec
	rulesFailures prometheus.Counter
	buildInfo     *prometheus.GaugeVec
	lastSettle    prometheus.Gauge
	// now is the clock of lastSettle; tests replace it.
	now func() time.Time
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irqshift_hotplug_events_total",
			Help: "CPU hotplug uevents received, by action (" + listed(hotplugActions) + ").",
		}, []string{"action"}),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irqshift_irq_moves_total",
			Help: "IRQ affinity writes that moved an IRQ, by reason (" + listed(AllSettleReasons) + ").",
		}, []string{"reason"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irqshift_write_errors_total",
			Help: "Failed or refused writes of smp_affinity_list, by errno class (" + listed(sysfs.WriteErrorClasses) + ").",
		}, []string{"class"}),
		reaction: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "irqshift_reaction_seconds",
			Help:    "Time from receiving a hotplug uevent (or seeing a ban source change) to the last affinity write of the settle it caused.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
		}),
		movablePerCPU: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irqshift_movable_irqs",
			Help: "Movable IRQs whose effective affinity is on each CPU, after the last settle.",
		}, []string{"cpu"}),
		unmovable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irqshift_unmovable_irqs",
			Help: "IRQs irqshift does not move, by class (" + listed(unmovableClasses) + ").",
		}, []string{"class"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irqshift_resyncs_total",
			Help: "Full re-reads of the CPU state, by reason (" + listed(AllResyncReasons) + ").",
		}, []string{"reason"}),
		settles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irqshift_settles_total",
			Help: "Snapshot, plan and apply cycles.",
		}),
		verifiedMoves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irqshift_verified_moves_total",
			Help: "Moved IRQs that eBPF saw firing on their new CPU.",
		}),
		misroutedIRQs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irqshift_misrouted_irqs_total",
			Help: "Moved IRQs that eBPF saw firing outside their new effective affinity.",
		}),
		bannedCPUs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "irqshift_banned_cpus",
			Help: "CPUs no IRQ may go to, by source (" + listed(affinity.BanSources) + "); a CPU banned by two sources counts in both.",
		}, []string{"source"}),
	}
	m.cpuRate = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "irqshift_cpu_interrupt_rate",
		Help: "Interrupts per second of the movable IRQs delivered to each online CPU, at the rates the planner last measured.",
	}, []string{"cpu"})
	m.busiestShare = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "irqshift_busiest_cpu_rate_share",
		Help: "The busiest CPU's share (0-1) of the movable IRQs' interrupt rate; 0 while no rate is measured.",
	})
	m.bestShare = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "irqshift_busiest_cpu_rate_share_best",
		Help: "The lowest busiest-CPU share any placement could reach: the busiest IRQ's share of the rate, or one over the allowed CPUs if that is more; 0 while no rate is measured.",
	})
	m.onOffline = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "irqshift_movable_irqs_on_offline_cpus",
		Help: "Movable IRQs delivered to a CPU that is offline (effective affinity, or a mask with no online CPU): 0 unless something went wrong.",
	})
	m.ruleIRQs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "irqshift_rule_irqs",
		Help: "IRQs each device rule matches now (the first matching rule counts an IRQ), after the last settle; every rule in force has a series, 0 when it matches nothing.",
	}, []string{"rule"})
	m.rulesFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "irqshift_rules_load_failures_total",
		Help: "Changes of the rules directory that did not load (a file with a mistake): the last good rules stayed in force.",
	})
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "irqshift_build_info",
		Help: "Always 1, labelled with the version irqshift was built as and the Go version that built it.",
	}, []string{"version", "goversion"})
	m.lastSettle = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "irqshift_last_settle_timestamp_seconds",
		Help: "Unix time at which the last settle completed; 0 before the first. time() minus it is how long the daemon has not settled.",
	})
	m.now = time.Now
	m.SetVersion(unknownVersion)
	m.zeroChildren()
	reg.MustRegister(m.events, m.moves, m.writeErrors, m.reaction, m.movablePerCPU, m.unmovable,
		m.resyncs, m.settles, m.verifiedMoves, m.misroutedIRQs, m.bannedCPUs,
		m.cpuRate, m.busiestShare, m.bestShare, m.onOffline, m.ruleIRQs, m.rulesFailures,
		m.buildInfo, m.lastSettle)
	return m
}

// zeroChildren gives every vector whose labels take a fixed set of values
// (labelValues) a child for each value, at 0, so that its family shows
// from the start: a counter's rate needs the 0 before the first event,
// and an alert or dashboard sees "none yet" rather than "no such metric".
func (m *Metrics) zeroChildren() {
	vectors := map[string]*prometheus.MetricVec{
		"irqshift_hotplug_events_total": m.events.MetricVec,
		"irqshift_irq_moves_total":      m.moves.MetricVec,
		"irqshift_write_errors_total":   m.writeErrors.MetricVec,
		"irqshift_unmovable_irqs":       m.unmovable.MetricVec,
		"irqshift_resyncs_total":        m.resyncs.MetricVec,
		"irqshift_banned_cpus":          m.bannedCPUs.MetricVec,
	}
	for name, labels := range labelValues() {
		vec, ok := vectors[name]
		if !ok {
			panic("metrics: no vector for " + name + " of labelValues")
		}
		for label, values := range labels {
			for _, v := range values {
				// A vector of one label: its child for this value.
				if _, err := vec.GetMetricWith(prometheus.Labels{label: v}); err != nil {
					panic("metrics: " + name + ": " + err.Error())
				}
			}
		}
	}
}

// SetVersion sets the version label of irqshift_build_info: the version
// the binary was built as (main's version, set with -ldflags), "unknown"
// for "". Its goversion label is the Go release that built it.
func (m *Metrics) SetVersion(version string) {
	if m == nil {
		return
	}
	if version == "" {
		version = unknownVersion
	}
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
}

func (m *Metrics) event(action string) {
	if m != nil {
		m.events.WithLabelValues(action).Inc()
	}
}

func (m *Metrics) resync(reason ResyncReason) {
	if m != nil {
		m.resyncs.WithLabelValues(string(reason)).Inc()
	}
}

func (m *Metrics) settled(reason SettleReason, results []affinity.Result, reactionSeconds float64, hasReaction bool) {
	if m == nil {
		return
	}
	m.settles.Inc()
	for _, r := range results {
		switch r.Status {
		case affinity.StatusMoved, affinity.StatusPending:
			m.moves.WithLabelValues(string(reason)).Inc()
		}
		if r.ErrorClass != "" {
			m.writeErrors.WithLabelValues(string(r.ErrorClass)).Inc()
		}
	}
	if hasReaction {
		m.reaction.Observe(reactionSeconds)
	}
	m.lastSettle.Set(float64(m.now().UnixNano()) / 1e9)
}

// rulesFailed counts a rules directory that did not load.
func (m *Metrics) rulesFailed() {
	if m != nil {
		m.rulesFailures.Inc()
	}
}

// observeState sets the per-CPU, per-class and per-rule gauges from a
// state; ruleNames are the rules in force, each shown even when it
// matches nothing.
func (m *Metrics) observeState(st *affinity.State, ruleNames []string) {
	if m == nil {
		return
	}
	m.movablePerCPU.Reset()
	for _, cpu := range st.Snapshot.CPUs.Online.CPUs() {
		m.movablePerCPU.WithLabelValues(itoa(cpu)).Set(0)
	}
	m.unmovable.Reset()
	for _, class := range unmovableClasses {
		m.unmovable.WithLabelValues(string(class)).Set(0)
	}
	for _, irq := range st.IRQs {
		if !irq.Movable() {
			m.unmovable.WithLabelValues(string(irq.Class)).Inc()
			continue
		}
		for _, cpu := range irq.Where().CPUs() {
			m.movablePerCPU.WithLabelValues(itoa(cpu)).Inc()
		}
	}
	load := affinity.MeasureLoad(st)
	m.cpuRate.Reset()
	for _, cpu := range st.Snapshot.CPUs.Online.CPUs() {
		m.cpuRate.WithLabelValues(itoa(cpu)).Set(load.PerCPU[cpu])
	}
	m.ruleIRQs.Reset()
	for _, name := range ruleNames {
		m.ruleIRQs.WithLabelValues(name).Set(0)
	}
	for _, irq := range st.IRQs {
		if irq.Rule != "" {
			m.ruleIRQs.WithLabelValues(irq.Rule).Inc()
		}
	}
	m.busiestShare.Set(load.BusiestShare())
	m.bestShare.Set(load.BestShare(st.Allowed.Len()))
	m.onOffline.Set(float64(load.OnOffline))
}

// Verified counts moves that eBPF confirmed, and misrouted IRQs.
func (m *Metrics) Verified(ok, misrouted int) {
	if m == nil {
		return
	}
	m.verifiedMoves.Add(float64(ok))
	m.misroutedIRQs.Add(float64(misrouted))
}

// observeBans sets the banned CPU gauges.
func (m *Metrics) observeBans(banned affinity.BannedCPUs, cpus sysfs.CPUInfo) {
	if m == nil {
		return
	}
	sources := banned.Sources(cpus)
	for _, source := range affinity.BanSources {
		m.bannedCPUs.WithLabelValues(string(source)).Set(float64(sources[source].Len()))
	}
}
