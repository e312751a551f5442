package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// rulesDescription is `irqshift rules --help` and the rules section of
// the man page: the format, with the examples an operator starts from.
const rulesDescription = `Device rules say where a device's IRQs go, whatever numbers they get.
They are TOML files, *.toml in the rules directory (--rules; default
/etc/irqshift/rules.d), read in name order; each holds [[rule]] tables.

   # the NIC's queues on its node's CPUs, and nothing else there
   [[rule]]
   name = "nic-queues"
   device = "0000:01:00.*"    # glob on the PCI address
   actions = "mlx5_comp*"     # glob on an action name
   cpus = "8-15"
   exclusive = true

   # the RNG with a CPU to itself
   [[rule]]
   name = "rng"
   driver = "virtio_rng"
   cpus = "3"
   exclusive = true

   # a device irqshift must never touch
   [[rule]]
   name = "fpga"
   actions = "fpga-dma*"
   ignore = true

A rule needs device, driver or actions (every key given must match) and
an effect: cpus (spread round-robin over those online and allowed;
when none is, they spill and come back), ignore, or node ("local",
"ignore", a number). The first matching rule wins; a pin wins over rules;
bans and drains win over everything. "irqshift pin --persist IRQ CPUS"
keeps a pin as a rule in 00-pins.toml. A file with a mistake fails every
command (exit 1, naming file and line); the daemon keeps its last good
rules.`

// manSection renders text as a man page section kept as written (.nf):
// a line starting with a control character is escaped, as are
// backslashes.
func manSection(title, text string) string {
	var b strings.Builder
	b.WriteString(".SH " + title + "\n.nf\n")
	for _, line := range strings.Split(text, "\n") {
		line = strings.ReplaceAll(line, `\`, `\e`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(".fi\n")
	return b.String()
}

// rulesJSON is one rule of `rules --json`.
type rulesJSON struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Device, Driver, Actions and Chip are the rule's globs, "" for a key
	// it does not give.
	Device  string `json:"device"`
	Driver  string `json:"driver"`
	Actions string `json:"actions"`
	Chip    string `json:"chip"`
	// CPUs is null when the rule gives none.
	CPUs      *sysfs.CPUSet `json:"cpus"`
	Exclusive bool          `json:"exclusive"`
	Ignore    bool          `json:"ignore"`
	// Node is "local", "ignore", a node number as a string, or "" when the
	// rule does not say.
	Node string `json:"node"`
	// IRQs are the IRQs the rule places now, OnCPUs where they are
	// delivered now.
	IRQs   []int        `json:"irqs"`
	OnCPUs sysfs.CPUSet `json:"on_cpus"`
}

type ruleProblemJSON struct {
	Rule string `json:"rule"`
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
}

// rulesDoc is `rules --json`.
type rulesDoc struct {
	Dir      string            `json:"dir"`
	Rules    []rulesJSON       `json:"rules"`
	Problems []ruleProblemJSON `json:"problems"`
}

func rulesDocOf(report *ops.RulesReport) rulesDoc {
	doc := rulesDoc{Dir: report.Dir, Rules: []rulesJSON{}, Problems: []ruleProblemJSON{}}
	for _, rs := range report.Rules {
		r := rs.Rule
		j := rulesJSON{Name: r.Name, File: r.File, Line: r.Line, Device: r.Device, Driver: r.Driver, Actions: r.Actions,
			Chip: r.Chip, Exclusive: r.Exclusive, Ignore: r.Ignore, IRQs: rs.IRQs, OnCPUs: rs.CPUs}
		if r.HasCPUs {
			cpus := r.CPUs
			j.CPUs = &cpus
		}
		if r.Node.IsSet() {
			j.Node = r.Node.String()
		}
		doc.Rules = append(doc.Rules, j)
	}
	for _, p := range report.Problems {
		doc.Problems = append(doc.Problems, ruleProblemJSON{Rule: p.Rule, File: p.File, Line: p.Line, Text: p.Text})
	}
	return doc
}

// cmdRules lists the device rules with what they match now, and their
// problems.
func cmdRules(c *cli.Context, o *options) error {
	report, err := ops.Rules(c.Context, o.env, ops.RulesRequest{})
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(o.stdout, rulesDocOf(report))
	}
	if report.Dir == "" {
		fmt.Fprintln(o.stdout, "no rules directory (--rules DIR, or IRQSHIFT_RULES)")
		return nil
	}
	if len(report.Rules) == 0 {
		fmt.Fprintf(o.stdout, "no rules in %s\n", report.Dir)
	} else {
		w := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "RULE\tWHERE\tEFFECT\tIRQS\tON CPUS")
		for _, rs := range report.Rules {
			fmt.Fprintf(w, "%s\t%s:%d\t%s\t%s\t%s\n", rs.Rule.Name, shortRulesPath(report.Dir, rs.Rule.File), rs.Rule.Line,
				ruleEffect(rs.Rule), irqList(rs.IRQs), dashIfEmpty(rs.CPUs.String()))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	for _, p := range report.Problems {
		fmt.Fprintf(o.stdout, "problem: %s\n", p)
	}
	return nil
}

// ruleEffect says in a few words what a rule does.
func ruleEffect(r rules.Rule) string {
	var parts []string
	switch {
	case r.Ignore:
		parts = append(parts, "ignore")
	case r.HasCPUs:
		parts = append(parts, "cpus "+r.CPUs.String())
	}
	if r.Exclusive {
		parts = append(parts, "exclusive")
	}
	if r.Node.IsSet() {
		parts = append(parts, "node "+r.Node.String())
	}
	return strings.Join(parts, ", ")
}

func shortRulesPath(dir, file string) string {
	if rest, ok := strings.CutPrefix(file, strings.TrimSuffix(dir, "/")+"/"); ok {
		return rest
	}
	return file
}

func irqList(irqs []int) string {
	if len(irqs) == 0 {
		return "-"
	}
	parts := make([]string, len(irqs))
	for i, n := range irqs {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ",")
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
