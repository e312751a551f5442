package daemon

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// helpList is the list of values a help text gives in parentheses:
// "by reason (a, b, c)." gives [a b c].
var helpList = regexp.MustCompile(`\(([^()]*)\)`)

// TestMetricHelpNamesExactlyItsList: the help text of every metric whose
// label takes a fixed set of values lists exactly that set, in its order,
// and the set is its constants' list: the moves and the settles' reasons
// (AllSettleReasons), the resyncs' (AllResyncReasons), the write error
// classes (sysfs.WriteErrorClasses) and the ban sources
// (affinity.BanSources). irqshift_irq_moves_total's help once listed
// restore-pin, never emitted, and missed bans.
func TestMetricHelpNamesExactlyItsList(t *testing.T) {
	families, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]string{
		"irqshift_hotplug_events_total": {"action": {string(hotplug.Online), string(hotplug.Offline)}},
		"irqshift_irq_moves_total":      {"reason": asStrings(AllSettleReasons)},
		"irqshift_write_errors_total":   {"class": asStrings(sysfs.WriteErrorClasses)},
		"irqshift_unmovable_irqs":       {"class": asStrings(unmovableClasses)},
		"irqshift_resyncs_total":        {"reason": asStrings(AllResyncReasons)},
		"irqshift_banned_cpus":          {"source": asStrings(affinity.BanSources)},
	}
	seen := 0
	for _, f := range families {
		w := want[f.Name]
		if len(f.Values) != len(w) {
			t.Errorf("%s: values %v, want %v", f.Name, f.Values, w)
		}
		for label, values := range w {
			seen++
			if !slices.Equal(f.Values[label], values) {
				t.Errorf("%s{%s}: values %v, want %v", f.Name, label, f.Values[label], values)
			}
			m := helpList.FindStringSubmatch(f.Help)
			if m == nil {
				t.Errorf("%s: help %q lists no values", f.Name, f.Help)
				continue
			}
			if got := strings.Split(m[1], ", "); !slices.Equal(got, values) {
				t.Errorf("%s: help lists %v, want exactly %v: %q", f.Name, got, values, f.Help)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d families with listed values, want %d", seen, len(want))
	}
}

// TestVocabulariesAreSets: each list names each value once, none empty.
func TestVocabulariesAreSets(t *testing.T) {
	for name, list := range map[string][]string{
		"AllSettleReasons":        asStrings(AllSettleReasons),
		"AllResyncReasons":        asStrings(AllResyncReasons),
		"sysfs.WriteErrorClasses": asStrings(sysfs.WriteErrorClasses),
		"affinity.BanSources":     asStrings(affinity.BanSources),
	} {
		if len(list) == 0 {
			t.Errorf("%s is empty", name)
		}
		for i, v := range list {
			if v == "" || slices.Contains(list[:i], v) {
				t.Errorf("%s %v: %q empty or twice", name, list, v)
			}
		}
	}
}

// TestResyncReasonsCoverHotplug: every Reason constant of package hotplug
// (the reasons of its resync events, read from its source) is a resync
// reason, and the only other one is SIGHUP: a reason added to hotplug
// must be added to AllResyncReasons.
func TestResyncReasonsCoverHotplug(t *testing.T) {
	path := filepath.Join("..", "hotplug", "uevent.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fromHotplug []ResyncReason
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: %s is not a string literal", path, name.Name)
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				fromHotplug = append(fromHotplug, ResyncReason(v))
			}
		}
	}
	if len(fromHotplug) == 0 {
		t.Fatalf("%s: found no Reason constant", path)
	}
	for _, r := range fromHotplug {
		if !slices.Contains(AllResyncReasons, r) {
			t.Errorf("hotplug's resync reason %q is not in AllResyncReasons %v", r, AllResyncReasons)
		}
	}
	for _, r := range AllResyncReasons {
		if !slices.Contains(fromHotplug, r) && r != ResyncSIGHUP {
			t.Errorf("AllResyncReasons lists %q, which neither hotplug nor a SIGHUP gives", r)
		}
	}
}

// TestEmittedReasonsAreListed runs the daemon on the simulator through
// every kind of settle: start, a CPU offline and online (and their
// rechecks), resyncs of every reason, a SIGHUP, a change of the state file
// by a command, a ban file change and the periodic check. Every settle's
// reason and every label value the metrics then hold must be a constant
// of its list, and every listed settle and resync reason must have been
// seen: the help texts, built from the lists, name exactly what the
// daemon emits.
func TestEmittedReasonsAreListed(t *testing.T) {
	var mu sync.Mutex
	reasons := map[SettleReason]bool{}
	record := func(d *Daemon) {
		observe := d.OnSettle
		d.OnSettle = func(s Settle) {
			mu.Lock()
			reasons[s.Reason] = true
			mu.Unlock()
			observe(s)
		}
	}

	statePath := filepath.Join(t.TempDir(), "state.json")
	banPath := filepath.Join(t.TempDir(), "irqbalance")
	rulesDir := t.TempDir()
	reload := make(chan struct{})
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	h := startOn(t, sim, statePath, func(d *Daemon) {
		record(d)
		d.Reload = reload
		d.Bans = &Bans{FS: sim.FS(), Files: []string{banPath}}
		d.RulesDir = rulesDir
		d.ForeignWriters = DefaultForeignWriters
	})
	for _, step := range []struct {
		online bool
		action hotplug.Action
	}{{false, hotplug.Offline}, {true, hotplug.Online}} {
		if err := sim.SetCPUOnline(1, step.online); err != nil {
			t.Fatal(err)
		}
		h.src.push(cpuEvent(step.action, 1))
		h.nextReason(SettleReason(step.action))
	}
	for _, r := range []string{hotplug.ReasonStart, hotplug.ReasonENOBUFS, hotplug.ReasonSeqnumGap, hotplug.ReasonPeriodic} {
		h.src.push(hotplug.Event{Resync: true, Reason: r, CPU: -1})
		h.nextReason(SettleResync)
	}
	reload <- struct{}{}
	h.nextReason(SettleReload)
	if _, err := ops.Drain(context.Background(), cliEnv(t, sim, statePath), ops.DrainRequest{CPUs: []int{3}}); err != nil {
		t.Fatal(err)
	}
	h.nextReason(SettleState)
	writeRenamed(t, banPath, "IRQBALANCE_BANNED_CPULIST=2\n")
	h.nextReason(SettleBans)
	writeRenamed(t, filepath.Join(rulesDir, "10-rng.toml"), "[[rule]]\nname = \"rng\"\nactions = \"virtio*\"\ncpus = \"3\"\n")
	h.nextReason(SettleRules)
	h.src.push(hotplug.Event{Action: hotplug.Bound, CPU: -1, Device: "/devices/pci0000:00/0000:00:02.0"})
	h.nextReason(SettleIRQs)
	proc := startOneshot(t, sim, "4243")
	writeRenamed(t, banPath, "IRQBALANCE_BANNED_CPULIST=1\n")
	h.nextReason(SettleBans)
	proc.exit()
	h.nextReason(SettleBalancer)
	h.stop()

	// The periodic check, on a daemon of its own: its ticks would
	// interleave with the settles above.
	checked := startOn(t, sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612)), "", func(d *Daemon) {
		record(d)
		d.CheckInterval = 10 * time.Millisecond
	})
	checked.nextReason(SettleCheck)
	checked.stop()

	mu.Lock()
	defer mu.Unlock()
	for r := range reasons {
		if !slices.Contains(AllSettleReasons, r) {
			t.Errorf("the daemon settled for %q, which is not in AllSettleReasons %v", r, AllSettleReasons)
		}
	}
	for _, r := range AllSettleReasons {
		if !reasons[r] {
			t.Errorf("AllSettleReasons lists %q, but no settle had it", r)
		}
	}

	families, err := MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string][]string{} // family → label → values
	for _, reg := range []*prometheus.Registry{h.reg, checked.reg} {
		gathered, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range gathered {
			for _, metric := range mf.GetMetric() {
				for _, pair := range metric.GetLabel() {
					if seen[mf.GetName()] == nil {
						seen[mf.GetName()] = map[string][]string{}
					}
					if !slices.Contains(seen[mf.GetName()][pair.GetName()], pair.GetValue()) {
						seen[mf.GetName()][pair.GetName()] = append(seen[mf.GetName()][pair.GetName()], pair.GetValue())
					}
				}
			}
		}
	}
	for _, f := range families {
		for label, values := range f.Values {
			for _, v := range seen[f.Name][label] {
				if !slices.Contains(values, v) {
					t.Errorf("%s{%s=%q}: not in its list %v", f.Name, label, v, values)
				}
			}
		}
	}
	// Moves are counted for the settles that moved something; the resyncs
	// and the ban gauges show every value of their lists.
	for _, tt := range []struct {
		family, label string
		all           []string
	}{
		{"irqshift_irq_moves_total", "reason", nil},
		{"irqshift_resyncs_total", "reason", asStrings(AllResyncReasons)},
		{"irqshift_banned_cpus", "source", asStrings(affinity.BanSources)},
	} {
		got := seen[tt.family][tt.label]
		if len(got) == 0 {
			t.Errorf("%s: no %s label emitted", tt.family, tt.label)
		}
		for _, v := range tt.all {
			if !slices.Contains(got, v) {
				t.Errorf("%s{%s}: %q is listed but was not emitted (emitted %v)", tt.family, tt.label, v, got)
			}
		}
	}
}
