package deploy

// The Grafana dashboard against irqshift: a dashboard Grafana can import, on a Prometheus data
// source chosen by its ${datasource} variable, whose every query names series, labels and label
// values the daemon registers.

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/daemon"
)

const dashboardPath = "grafana/irqshift.json"

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []dashboardVariable `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	GridPos    gridPos          `json:"gridPos"`
	Panels     []dashboardPanel `json:"panels"` // a collapsed row's
	Targets    []struct {
		RefID        string         `json:"refId"`
		Expr         string         `json:"expr"`
		LegendFormat string         `json:"legendFormat"`
		Datasource   *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// panelTypes are the panel types the dashboard may use: Grafana's own.
var panelTypes = []string{"timeseries", "stat", "table", "bargauge", "gauge", "text"}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels returns the panels, with those of collapsed rows.
func (d dashboard) allPanels() []dashboardPanel {
	var out []dashboardPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// TestGrafanaDashboard: the file is a dashboard Grafana imports: a title, a uid Grafana accepts,
// a schema version, a data source variable of type prometheus, and panels with unique ids,
// known types and places on the 24-column grid that do not overlap; every panel but a row
// queries the ${datasource} variable, with at least one target, each with a refId of its own and
// an expression. The panels cover what the operator needs: movable IRQs and interrupt rates per
// CPU, the reaction time's p50, p90 and p99, moves by settle reason, misrouted IRQs, bans by
// source, the build info and the time since the last settle.
func TestGrafanaDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.Title == "" {
		t.Error("no title")
	}
	if !regexp.MustCompile(`^[a-zA-Z0-9_-]{1,40}$`).MatchString(d.UID) {
		t.Errorf("uid %q: Grafana takes 1-40 letters, digits, - and _", d.UID)
	}
	if d.SchemaVersion == 0 {
		t.Error("no schemaVersion")
	}
	var hasDatasource bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" {
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil || v.Type != "datasource" || q != "prometheus" {
				t.Errorf("variable datasource: type %q query %s, want a datasource variable of prometheus", v.Type, v.Query)
			}
			hasDatasource = true
		} else if v.Type == "query" {
			checkDatasource(t, "variable "+v.Name, v.Datasource)
		}
	}
	if !hasDatasource {
		t.Error("no datasource variable: the dashboard would be bound to one Prometheus")
	}

	ids := map[int]bool{}
	var placed []dashboardPanel
	exprs := map[string]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d is 0 or taken", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for _, q := range placed {
			if g.X < q.GridPos.X+q.GridPos.W && q.GridPos.X < g.X+g.W && g.Y < q.GridPos.Y+q.GridPos.H && q.GridPos.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if !slices.Contains(panelTypes, p.Type) {
			t.Errorf("panel %q: type %q, not one of %v", p.Title, p.Type, panelTypes)
		}
		checkDatasource(t, "panel "+p.Title, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or twice", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q, target %s: no expr", p.Title, tg.RefID)
			}
			checkDatasource(t, fmt.Sprintf("panel %q, target %s", p.Title, tg.RefID), tg.Datasource)
			exprs[tg.Expr] = true
		}
	}

	// What the operator needs, each in some query.
	used := func(re string) bool {
		for e := range exprs {
			if regexp.MustCompile(re).MatchString(e) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{
		`^irqshift_movable_irqs\{`,
		`^irqshift_cpu_interrupt_rate\{`,
		`histogram_quantile\(0\.5\b.*irqshift_reaction_seconds_bucket`,
		`histogram_quantile\(0\.9\b.*irqshift_reaction_seconds_bucket`,
		`histogram_quantile\(0\.99\b.*irqshift_reaction_seconds_bucket`,
		`by \(reason\) \(rate\(irqshift_irq_moves_total\{`,
		`irqshift_misrouted_irqs_total\{`,
		`irqshift_banned_cpus\{`,
		`irqshift_build_info\{`,
		`time\(\) - irqshift_last_settle_timestamp_seconds\{`,
	} {
		if !used(want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

func checkDatasource(t *testing.T, what string, ds *datasourceRef) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: datasource %+v, want {prometheus ${datasource}}", what, ds)
	}
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	rangeOrAt  = regexp.MustCompile(`\[[^\]]*\]`)
	clauseArgs = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	callName   = regexp.MustCompile(`\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(`)
	identifier = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*\b`)
	legendRef  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	labelVals  = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
)

// promKeywords are the words of PromQL that are no series.
var promKeywords = []string{"and", "or", "unless", "bool", "offset"}

// TestGrafanaQueries: every query of the dashboard (panel targets and the variables'
// label_values) names only series the daemon registers (MetricFamily.Series(), found with the
// alert tests' metricName), each selected with the dashboard's $job and $instance matchers, so
// that no bare or misspelt series name slips through; every label of a matcher is the family's
// own or a target's, with values of its list (checkSelectors, as for the alerts); every label of
// a by (...) is a target label, le for a histogram's buckets, or a label of each family the
// query names; every {{label}} of a legend is one the query's result keeps.
func TestGrafanaQueries(t *testing.T) {
	d := readDashboard(t)
	series, jobs := daemonSeries(t)

	n := 0
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			n++
			what := fmt.Sprintf("panel %q, target %s", p.Title, tg.RefID)
			out := checkQuery(t, what, tg.Expr, series, jobs, []string{"job", "instance"})
			for _, ref := range legendRef.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !slices.Contains(out, ref[1]) {
					t.Errorf("%s: legend {{%s}}, which %q does not keep (it keeps %v)", what, ref[1], tg.Expr, out)
				}
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Errorf("variable %s: query %s", v.Name, v.Query)
				continue
			}
		}
		m := labelVals.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is no label_values(series, label)", v.Name, q.Query)
			continue
		}
		n++
		what := "variable " + v.Name
		// Each variable is filtered by those before it (instance by job).
		out := checkQuery(t, what, m[1], series, jobs, variableMatchers(d, v.Name))
		if !slices.Contains(out, m[2]) {
			t.Errorf("%s: label_values of %s, which %q does not have", what, m[2], m[1])
		}
	}
	if n == 0 {
		t.Fatal("no queries")
	}
}

// variableMatchers are the matchers a variable's own query must have: those of the variables
// defined before it.
func variableMatchers(d dashboard, name string) []string {
	var out []string
	for _, v := range d.Templating.List {
		if v.Name == name {
			break
		}
		if v.Type == "query" {
			out = append(out, v.Name)
		}
	}
	return out
}

// checkQuery checks one PromQL expression of the dashboard and returns the labels its result
// keeps. Every series must be selected with a matcher label=~"$label" for each of vars (the
// dashboard's variables that apply to it); with no vars it may be a bare name.
func checkQuery(t *testing.T, what, expr string, series map[string]daemon.MetricFamily, jobs map[string]bool, vars []string) []string {
	t.Helper()
	var named []daemon.MetricFamily
	bucket := false
	for _, name := range metricName.FindAllString(expr, -1) {
		f, ok := series[name]
		if !ok {
			t.Errorf("%s: %s is no series the daemon exports (%s)", what, name, seriesNames(series))
			continue
		}
		named = append(named, f)
		bucket = bucket || name == f.Name+"_bucket"
	}
	if len(named) == 0 {
		t.Errorf("%s: %q names no irqshift series", what, expr)
	}
	checkSelectors(t, what, expr, series, jobs)

	// Every series is a selector with the variables' matchers.
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		for _, v := range vars {
			if !regexp.MustCompile(`(^|,)\s*` + v + `\s*=~\s*"\$` + v + `"\s*(,|$)`).MatchString(sel[2]) {
				t.Errorf("%s: %s{%s} does not match %s=~\"$%s\": the dashboard's variables would not apply", what, sel[1], sel[2], v, v)
			}
		}
	}
	rest := promString.ReplaceAllString(expr, `""`)
	rest = selector.ReplaceAllString(rest, " ")
	rest = rangeOrAt.ReplaceAllString(rest, " ")
	rest = clauseArgs.ReplaceAllString(rest, " ")
	rest = callName.ReplaceAllString(rest, "(")
	for _, word := range identifier.FindAllString(rest, -1) {
		if _, ok := series[word]; ok && len(vars) == 0 {
			continue // checked above
		}
		if !slices.Contains(promKeywords, word) {
			t.Errorf("%s: %q is a series without the variables' matchers, or not a series at all: select it as name{job=~\"$job\", instance=~\"$instance\"}", what, word)
		}
	}

	// The labels of by (...), and those the result keeps.
	out := slices.Clone(targetLabels)
	for _, f := range named {
		out = append(out, f.Labels...)
	}
	if by := byClause.FindAllStringSubmatch(expr, -1); by != nil {
		out = nil
		for _, b := range by {
			for l := range strings.SplitSeq(b[1], ",") {
				l = strings.TrimSpace(l)
				ok := slices.Contains(targetLabels, l) || (l == "le" && bucket)
				if !ok && len(named) > 0 {
					ok = true
					for _, f := range named {
						ok = ok && slices.Contains(f.Labels, l)
					}
				}
				if !ok {
					t.Errorf("%s: by (%s): %s is no label of %v, nor a target's", what, b[1], l, familyNames(named))
				}
				out = append(out, l)
			}
		}
	}
	return out
}

func familyNames(fs []daemon.MetricFamily) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}
