package ops

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// ListFilter chooses the IRQs list shows; an IRQ is shown when it passes
// every part that is set.
type ListFilter struct {
	// IRQs are IRQ numbers; each must exist.
	IRQs []int
	// CPUs keeps the IRQs that fire on (are effective on) one of them;
	// each must be a possible CPU.
	CPUs sysfs.CPUSet
	// Node keeps the IRQs whose device is on that NUMA node, or, for an
	// IRQ of no known node, that fire on one of its CPUs; -1 or a nil
	// pointer keeps all.
	Node *int
	// Classes keeps the IRQs of these classes (affinity.Class names).
	Classes []affinity.Class
	// Pinned keeps the IRQs with a pin.
	Pinned bool
	// Name keeps the IRQs of which an action, the device or the driver
	// matches this shell pattern (path.Match: "nvme*", "virtio?-input*").
	Name string
}

// AllClasses lists the classes a filter may name, in Classify's order.
var AllClasses = []affinity.Class{affinity.ClassPerCPU, affinity.ClassNoAction, affinity.ClassManaged,
	affinity.ClassBanned, affinity.ClassIgnored, affinity.ClassMovable}

// apply returns the IRQs of st f keeps, refusing a filter that names what
// does not exist: an IRQ number, a CPU, a node, a class, a bad pattern.
func (f ListFilter) apply(st *affinity.State, pins affinity.Pins) ([]affinity.IRQ, error) {
	cpus := st.Snapshot.CPUs
	if !f.CPUs.IsEmpty() && !f.CPUs.IsSubsetOf(cpus.Possible) {
		return nil, badRequest("list --cpu: %s %s not exist here (CPUs %s)", affinity.CPUNoun(f.CPUs.Difference(cpus.Possible)),
			doVerb(f.CPUs.Difference(cpus.Possible)), cpus.Possible)
	}
	var nodeCPUs sysfs.CPUSet
	if f.Node != nil && *f.Node >= 0 {
		nodes := affinity.NodeCPUs(cpus)
		var ok bool
		if nodeCPUs, ok = nodes[*f.Node]; !ok {
			return nil, badRequest("list --node: node %d has no CPU here (nodes %s)", *f.Node, nodeList(nodes))
		}
	}
	for _, c := range f.Classes {
		if !slices.Contains(AllClasses, c) {
			return nil, badRequest("list --class: %q is not a class; the classes are %s", c, classList())
		}
	}
	if f.Name != "" {
		if _, err := path.Match(f.Name, ""); err != nil {
			return nil, badRequest("list --name: %q is not a shell pattern: %v", f.Name, err)
		}
	}
	if len(f.IRQs) > 0 {
		var missing []string
		for _, n := range f.IRQs {
			if !slices.ContainsFunc(st.IRQs, func(irq affinity.IRQ) bool { return irq.IRQ == n }) {
				missing = append(missing, strconv.Itoa(n))
			}
		}
		if len(missing) > 0 {
			noun := "IRQ"
			if len(missing) > 1 {
				noun = "IRQs"
			}
			return nil, badRequest("list: no %s %s here (irqshift list shows them all)", noun, strings.Join(missing, ", "))
		}
	}
	shown := make([]affinity.IRQ, 0, len(st.IRQs))
	for _, irq := range st.IRQs {
		switch {
		case len(f.IRQs) > 0 && !slices.Contains(f.IRQs, irq.IRQ):
		case !f.CPUs.IsEmpty() && !irq.Where().Intersects(f.CPUs):
		case !nodeCPUs.IsEmpty() && !(irq.Node == *f.Node || irq.Node < 0 && irq.Where().Intersects(nodeCPUs)):
		case len(f.Classes) > 0 && !slices.Contains(f.Classes, irq.Class):
		case f.Pinned && !hasPin(pins, irq):
		case f.Name != "" && !nameMatches(f.Name, irq):
		default:
			shown = append(shown, irq)
		}
	}
	return shown, nil
}

func hasPin(pins affinity.Pins, irq affinity.IRQ) bool {
	_, ok := pins[affinity.Key(irq)]
	return ok
}

// nameMatches tells whether pattern matches an action of irq, its device
// or its driver.
func nameMatches(pattern string, irq affinity.IRQ) bool {
	for _, name := range append([]string{irq.Device, irq.Driver}, irq.Actions...) {
		if ok, _ := path.Match(pattern, name); ok && name != "" {
			return true
		}
	}
	return false
}

func classList() string {
	names := make([]string, len(AllClasses))
	for i, c := range AllClasses {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

func nodeList(nodes map[int]sysfs.CPUSet) string {
	var ids []int
	for n := range nodes {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, n := range ids {
		parts[i] = fmt.Sprintf("%d: CPUs %s", n, nodes[n])
	}
	return strings.Join(parts, "; ")
}

func doVerb(s sysfs.CPUSet) string {
	if s.Len() == 1 {
		return "does"
	}
	return "do"
}
