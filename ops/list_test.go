package ops

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

func TestListFilters(t *testing.T) {
	r := vm4(t)
	list := func(f ListFilter) (*ListReport, error) {
		return List(context.Background(), r.env, ListRequest{Filter: f})
	}
	all, err := list(ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Shown) != len(all.State.IRQs) || len(all.Shown) == 0 {
		t.Fatalf("no filter shows %d of %d IRQs", len(all.Shown), len(all.State.IRQs))
	}
	want := r.perCPU()
	for cpu, n := range want {
		if all.MovablePerCPU[cpu] != n {
			t.Errorf("movable per CPU %v, the simulator has %v", all.MovablePerCPU, want)
			break
		}
	}

	cpu2 := sysfs.NewCPUSet(2)
	node0 := 0
	for _, tc := range []struct {
		name   string
		filter ListFilter
		keep   func(affinity.IRQ) bool
	}{
		{"IRQ numbers", ListFilter{IRQs: []int{13}}, func(irq affinity.IRQ) bool { return irq.IRQ == 13 }},
		{"CPU", ListFilter{CPUs: cpu2}, func(irq affinity.IRQ) bool { return irq.Where().Intersects(cpu2) }},
		{"class", ListFilter{Classes: []affinity.Class{affinity.ClassMovable}}, affinity.IRQ.Movable},
		{"name", ListFilter{Name: "uart*"}, func(irq affinity.IRQ) bool {
			return len(irq.Actions) > 0 && strings.HasPrefix(irq.Actions[0], "uart")
		}},
		{"node", ListFilter{Node: &node0}, func(affinity.IRQ) bool { return true }},
		{"CPU and class", ListFilter{CPUs: cpu2, Classes: []affinity.Class{affinity.ClassManaged}}, func(irq affinity.IRQ) bool {
			return irq.Where().Intersects(cpu2) && irq.Class == affinity.ClassManaged
		}},
	} {
		report, err := list(tc.filter)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var wantIRQs []int
		for _, irq := range all.State.IRQs {
			if tc.keep(irq) {
				wantIRQs = append(wantIRQs, irq.IRQ)
			}
		}
		var got []int
		for _, irq := range report.Shown {
			got = append(got, irq.IRQ)
		}
		if len(wantIRQs) == 0 || !slices.Equal(got, wantIRQs) {
			t.Errorf("%s: shows IRQs %v, want %v", tc.name, got, wantIRQs)
		}
		if len(report.MovablePerCPU) != len(all.MovablePerCPU) {
			t.Errorf("%s: the per-CPU counts cover %d CPUs, want all %d online", tc.name, len(report.MovablePerCPU), len(all.MovablePerCPU))
		}
	}

	node5 := 5
	for _, tc := range []struct {
		filter ListFilter
		says   string
	}{
		{ListFilter{IRQs: []int{13, 999, 998}}, "no IRQs 999, 998 here"},
		{ListFilter{CPUs: sysfs.NewCPUSet(9)}, "CPU 9 does not exist here (CPUs 0-3)"},
		{ListFilter{Node: &node5}, "node 5 has no CPU here"},
		{ListFilter{Classes: []affinity.Class{"moveable"}}, `"moveable" is not a class; the classes are per-cpu,`},
		{ListFilter{Name: "[nvme"}, "not a shell pattern"},
	} {
		_, err := list(tc.filter)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("filter %+v: error %v, want a bad request saying %q", tc.filter, err, tc.says)
		}
	}
}
