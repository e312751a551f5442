package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
)

// These tests hold the JSON documents to the shapes the README promises,
// decoding them without the program's own types.

var classes = []string{"per-cpu", "no-action", "managed", "banned", "ignored", "movable"}

type shape struct {
	t    *testing.T
	path string
}

func (s shape) at(key string) shape { return shape{s.t, s.path + "." + key} }

func (s shape) index(i int) shape { return shape{s.t, fmt.Sprintf("%s[%d]", s.path, i)} }

func (s shape) object(v any, keys ...string) map[string]any {
	s.t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		s.t.Errorf("%s: %T, want an object", s.path, v)
		return nil
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			s.t.Errorf("%s: no %q", s.path, k)
		}
	}
	return m
}

func (s shape) integer(v any) int {
	s.t.Helper()
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 {
		s.t.Errorf("%s: %v (%T), want a non-negative integer", s.path, v, v)
		return -1
	}
	return int(f)
}

func (s shape) str(v any) string {
	s.t.Helper()
	str, ok := v.(string)
	if !ok {
		s.t.Errorf("%s: %v (%T), want a string", s.path, v, v)
	}
	return str
}

func (s shape) array(v any) []any {
	s.t.Helper()
	a, ok := v.([]any)
	if !ok {
		s.t.Errorf("%s: %v (%T), want an array (never null)", s.path, v, v)
	}
	return a
}

func (s shape) ints(v any) []int {
	s.t.Helper()
	var out []int
	for i, e := range s.array(v) {
		out = append(out, s.index(i).integer(e))
	}
	if !slices.IsSorted(out) {
		s.t.Errorf("%s: %v is not ascending", s.path, out)
	}
	return out
}

func decode(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	return v
}

// checkListShape: {"cpus": {"online","possible","allowed": [int]}, "irqs":
// [{"irq", "chip", "hwirq": int|null, "trigger", "actions": [string],
// "counts": {"<cpu>": int}, "affinity","effective": [int], "class",
// "movable": bool, "reason"}]}.
func checkListShape(t *testing.T, data []byte) {
	t.Helper()
	root := shape{t, "$"}
	doc := root.object(decode(t, data), "cpus", "irqs")
	cpusShape := root.at("cpus")
	cpus := cpusShape.object(doc["cpus"], "online", "possible", "allowed")
	online := cpusShape.at("online").ints(cpus["online"])
	possible := cpusShape.at("possible").ints(cpus["possible"])
	allowed := cpusShape.at("allowed").ints(cpus["allowed"])
	for _, c := range online {
		if !slices.Contains(possible, c) {
			t.Errorf("online CPU %d is not possible", c)
		}
	}
	for _, c := range allowed {
		if !slices.Contains(online, c) {
			t.Errorf("allowed CPU %d is not online", c)
		}
	}
	irqs := root.at("irqs").array(doc["irqs"])
	if len(irqs) == 0 {
		t.Error("no IRQ listed")
	}
	last := -1
	for i, v := range irqs {
		s := root.at("irqs").index(i)
		irq := s.object(v, "irq", "chip", "hwirq", "trigger", "actions", "counts", "affinity", "effective", "class", "movable", "reason")
		if irq == nil {
			continue
		}
		n := s.at("irq").integer(irq["irq"])
		if n <= last {
			t.Errorf("%s: IRQ %d after %d: not ascending", s.path, n, last)
		}
		last = n
		s.at("chip").str(irq["chip"])
		if irq["hwirq"] != nil {
			s.at("hwirq").integer(irq["hwirq"])
		}
		if tr := s.at("trigger").str(irq["trigger"]); !slices.Contains([]string{"Level", "Edge", ""}, tr) {
			t.Errorf("%s.trigger = %q", s.path, tr)
		}
		for j, a := range s.at("actions").array(irq["actions"]) {
			s.at("actions").index(j).str(a)
		}
		counts := s.at("counts").object(irq["counts"])
		var countCPUs []int
		for k, c := range counts {
			cpu, err := strconv.Atoi(k)
			if err != nil {
				t.Errorf("%s.counts: key %q is not a CPU number", s.path, k)
			}
			countCPUs = append(countCPUs, cpu)
			s.at("counts").at(k).integer(c)
		}
		slices.Sort(countCPUs)
		if !slices.Equal(countCPUs, online) {
			t.Errorf("%s.counts has CPUs %v, want the online CPUs %v", s.path, countCPUs, online)
		}
		s.at("affinity").ints(irq["affinity"])
		s.at("effective").ints(irq["effective"])
		class := s.at("class").str(irq["class"])
		if !slices.Contains(classes, class) {
			t.Errorf("%s.class = %q", s.path, class)
		}
		movable, ok := irq["movable"].(bool)
		if !ok || movable != (class == "movable") {
			t.Errorf("%s.movable = %v for class %q", s.path, irq["movable"], class)
		}
		if reason := s.at("reason").str(irq["reason"]); (reason == "") != movable {
			t.Errorf("%s.reason = %q for class %q", s.path, reason, class)
		}
	}
}

// checkPlanShape: {"moves": [{"irq", "from", "to"}], "skipped": [{"irq",
// "reason"}]}, plus "results" when applied.
func checkPlanShape(t *testing.T, data []byte, applied bool) {
	t.Helper()
	root := shape{t, "$"}
	keys := []string{"moves", "skipped"}
	if applied {
		keys = append(keys, "results", "summary")
	}
	doc := root.object(decode(t, data), keys...)
	if !applied {
		if _, ok := doc["results"]; ok {
			t.Error("a dry run has results")
		}
	}
	for i, v := range root.at("moves").array(doc["moves"]) {
		s := root.at("moves").index(i)
		m := s.object(v, "irq", "from", "to", "narrow", "reason")
		if _, ok := m["narrow"].(bool); !ok {
			t.Errorf("%s.narrow = %v, want a boolean", s.path, m["narrow"])
		}
		s.at("irq").integer(m["irq"])
		s.at("from").ints(m["from"])
		if to := s.at("to").ints(m["to"]); len(to) != 1 {
			t.Errorf("%s.to = %v, want one CPU", s.path, to)
		}
	}
	for i, v := range root.at("skipped").array(doc["skipped"]) {
		s := root.at("skipped").index(i)
		m := s.object(v, "irq", "reason")
		s.at("irq").integer(m["irq"])
		if s.at("reason").str(m["reason"]) == "" {
			t.Errorf("%s: empty reason", s.path)
		}
	}
	if !applied {
		return
	}
	sum := root.at("summary").object(doc["summary"], "planned", "done", "not_done", "moved", "narrowed", "pending", "failed", "unmovable", "vanished")
	if planned, results := root.at("summary.planned").integer(sum["planned"]), len(root.at("results").array(doc["results"])); planned != results {
		t.Errorf("summary.planned %d, %d results (not_done %v)", planned, results, sum["not_done"])
	}
	statuses := []string{"moved", "narrowed", "pending", "unmovable", "vanished", "failed"}
	for i, v := range root.at("results").array(doc["results"]) {
		s := root.at("results").index(i)
		r := s.object(v, "irq", "from", "to", "effective", "status")
		s.at("irq").integer(r["irq"])
		s.at("to").ints(r["to"])
		s.at("effective").ints(r["effective"])
		if st := s.at("status").str(r["status"]); !slices.Contains(statuses, st) {
			t.Errorf("%s.status = %q", s.path, st)
		}
	}
}

func TestListJSONShape(t *testing.T) {
	for _, tree := range []string{
		"vm4-6.1", "vm4-6.12", "vm4-6.1-pinned2-cpu2-offline", "vm4-6.1-cpus13-offline", "vm4-6.12-isolated3",
		"capture/vm-gicv3-4cpu", "capture/vm-gicv3-4cpu-cpu2-offline", "capture/vm-gicv2-4cpu",
	} {
		t.Run(tree, func(t *testing.T) {
			root := copyTree(t, tree)
			res := run(t, root, nil, "list", "--json")
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			checkListShape(t, res.stdout)
		})
	}
}

func TestPlanJSONShape(t *testing.T) {
	tests := []struct {
		tree    string
		args    []string
		applied bool
	}{
		{"vm4-6.1", []string{"rebalance", "--dry-run", "--json"}, false},
		{"vm4-6.12", []string{"rebalance", "--dry-run", "--json"}, false},
		{"vm4-6.1-pinned2", []string{"drain", "2", "--dry-run", "--json"}, false},
		{"vm4-6.12", []string{"drain", "2", "--dry-run", "--json"}, false},
		{"vm4-6.1-cpus13-offline", []string{"rebalance", "--dry-run", "--json"}, false},
		{"vm4-6.1", []string{"rebalance", "--json"}, true},
		{"vm4-6.1-pinned2", []string{"drain", "2", "--json"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.tree+" "+fmt.Sprint(tc.args), func(t *testing.T) {
			root := copyTree(t, tc.tree)
			res := run(t, root, nil, tc.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			checkPlanShape(t, res.stdout, tc.applied)
		})
	}
}
