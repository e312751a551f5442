package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// exampleFile is the format's example, as doc.go shows it.
const exampleFile = `# the NIC's queues on node-local CPUs 8-15
[[rule]]
name = "nic-queues"
device = "0000:01:00.*"        # glob on the device name
actions = "mlx5_comp*"         # glob on ANY of the IRQ's action names
cpus = "8-15"                  # a cpulist string
exclusive = true               # no IRQ this rule does not match is placed on its CPUs

[[rule]]
name = "rng"
driver = "virtio_rng"
cpus = "3"

[[rule]]
name = "leave-fpga"
chip = "GICv3"
actions = "fpga*"
ignore = true

[[rule]]
name = "nvme-any-node"
driver = "nvme"
node = "ignore"
`

// sameRule compares two rules field by field: cpuset.Set must be compared
// with Equal, not ==.
func sameRule(a, b Rule) bool {
	return a.Name == b.Name && a.File == b.File && a.Line == b.Line &&
		a.Device == b.Device && a.Driver == b.Driver && a.Actions == b.Actions && a.Chip == b.Chip &&
		a.CPUs.Equal(b.CPUs) && a.HasCPUs == b.HasCPUs && a.Exclusive == b.Exclusive &&
		a.Ignore == b.Ignore && a.Node == b.Node
}

func describe(r Rule) string {
	return fmt.Sprintf("%+v cpus=%q", r, r.CPUs.String())
}

func checkRules(t *testing.T, got, want []Rule) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rules, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if !sameRule(got[i], want[i]) {
			t.Errorf("rule %d:\n got %s\nwant %s", i, describe(got[i]), describe(want[i]))
		}
	}
}

func TestParseExample(t *testing.T) {
	got, err := Parse("10-x.toml", []byte(exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	checkRules(t, got, []Rule{
		{Name: "nic-queues", File: "10-x.toml", Line: 2, Device: "0000:01:00.*", Actions: "mlx5_comp*",
			CPUs: cpuset.New(8, 9, 10, 11, 12, 13, 14, 15), HasCPUs: true, Exclusive: true},
		{Name: "rng", File: "10-x.toml", Line: 9, Driver: "virtio_rng", CPUs: cpuset.New(3), HasCPUs: true},
		{Name: "leave-fpga", File: "10-x.toml", Line: 14, Chip: "GICv3", Actions: "fpga*", Ignore: true},
		{Name: "nvme-any-node", File: "10-x.toml", Line: 20, Driver: "nvme", Node: Node{Kind: NodeIgnore}},
	})
}

func TestParseNoRules(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n\n   # another\n", "\n"} {
		rules, err := Parse("f.toml", []byte(data))
		if err != nil || len(rules) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no rules, no error", data, rules, err)
		}
	}
}

func TestParseNodeForms(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  Node
	}{
		{`"local"`, Node{Kind: NodeLocal}},
		{`"ignore"`, Node{Kind: NodeIgnore}},
		{`0`, Node{Kind: NodeNumber, Number: 0}},
		{`1`, Node{Kind: NodeNumber, Number: 1}},
		{`4095`, Node{Kind: NodeNumber, Number: 4095}},
		{`0x10`, Node{Kind: NodeNumber, Number: 16}},
	} {
		data := "[[rule]]\nname = \"n\"\ndevice = \"d\"\nnode = " + tc.value + "\n"
		rules, err := Parse("f.toml", []byte(data))
		if err != nil {
			t.Errorf("node = %s: %v", tc.value, err)
			continue
		}
		if got := rules[0].Node; got != tc.want {
			t.Errorf("node = %s: got %+v, want %+v", tc.value, got, tc.want)
		}
	}
	// No node key: the default, which is not "set" but is local.
	rules, err := Parse("f.toml", []byte("[[rule]]\nname = \"n\"\ndevice = \"d\"\ncpus = \"1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := rules[0].Node; n.IsSet() || !n.IsLocal() || n.IsIgnore() {
		t.Errorf("default node %+v: want unset and local", n)
	}
	if n, ok := (Node{Kind: NodeNumber, Number: 3}).Fixed(); !ok || n != 3 {
		t.Errorf("Fixed() = %d, %v; want 3, true", n, ok)
	}
	if _, ok := (Node{Kind: NodeLocal}).Fixed(); ok {
		t.Error("a local node is Fixed")
	}
}

func TestParseInlineArray(t *testing.T) {
	// Valid TOML for the same data as [[rule]] tables: it must read the
	// same, and errors must still find their line.
	data := "rule = [\n  { name = \"a\", device = \"d\", cpus = \"1\" },\n  { name = \"b\", device = \"e\",\n    cpus = \"x\" },\n]\n"
	_, err := Parse("f.toml", []byte(data))
	wantError(t, err, `f.toml:4: rule "b": cpus "x": bad CPU number "x"`)

	rules, err := Parse("f.toml", []byte(strings.Replace(data, `"x"`, `"2"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	checkRules(t, rules, []Rule{
		{Name: "a", File: "f.toml", Line: 2, Device: "d", CPUs: cpuset.New(1), HasCPUs: true},
		{Name: "b", File: "f.toml", Line: 3, Device: "e", CPUs: cpuset.New(2), HasCPUs: true},
	})
}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q", want)
	}
	if !errors.Is(err, ErrRules) {
		t.Errorf("error %q does not wrap ErrRules", err)
	}
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n %q\nwant it to start with\n %q", err, want)
	}
}

func TestParseErrors(t *testing.T) {
	// good is a rule that parses; each case changes or adds a line.
	const head = "# rules\n[[rule]]\nname = \"r\"\n" // name on line 3
	for _, tc := range []struct {
		name, data, want string
	}{
		// TOML syntax: the line of the error.
		{"syntax", head + "device = \"d\"\ncpus = \"1\n", `f.toml:5: invalid TOML: `},
		{"syntax no value", head + "device =\ncpus = \"1\"\n", `f.toml:4: invalid TOML: `},
		{"duplicate key", head + "device = \"d\"\ncpus = \"1\"\ncpus = \"2\"\n", `f.toml:6: invalid TOML: key cpus is already defined`},

		// Keys and tables that do not exist.
		{"unknown key", head + "device = \"d\"\ncpus = \"1\"\ncpu = \"2\"\n", `f.toml:6: rule "r": unknown key "cpu"`},
		{"unknown dotted key", head + "device = \"d\"\ncpus = \"1\"\nx.y = 1\n", `f.toml:6: rule "r": unknown key "x"`},
		{"unknown subtable", head + "device = \"d\"\ncpus = \"1\"\n[rule.extra]\nk = 1\n", `f.toml:6: rule "r": unknown key "extra"`},
		{"unknown top key", "top = 1\n" + head + "device = \"d\"\ncpus = \"1\"\n", `f.toml:1: unknown key or table "top"`},
		{"unknown top table", head + "device = \"d\"\ncpus = \"1\"\n\n[defaults]\ncpus = \"1\"\n", `f.toml:7: unknown key or table "defaults"`},
		{"rule not an array", "[rule]\nname = \"r\"\n", `f.toml:1: rule must be an array of tables, written [[rule]], not a table`},
		{"rule a string", "rule = \"x\"\n", `f.toml:1: rule must be an array of tables, written [[rule]], not a string`},
		{"rule array of ints", "rule = [1]\n", `f.toml:1: rule #1 must be a table, not an integer`},
		{"rule array mixed", "rule = [\n  { name = \"a\", device = \"d\", cpus = \"1\" },\n  \"x\",\n  { name = \"b\", device = \"d\",\n    cpus = \"\" },\n]\n", `f.toml:1: rule #2 must be a table, not a string`},

		// name.
		{"missing name", "\n[[rule]]\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:2: rule #1: name is missing`},
		{"empty name", "[[rule]]\nname = \"\"\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:2: rule #1: name "": a name has 1 to 64 characters`},
		{"long name", "[[rule]]\nname = \"" + strings.Repeat("a", 65) + "\"\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:2: rule #1: name "aaaa`},
		{"name with space", "[[rule]]\nname = \"a b\"\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:2: rule #1: name "a b": " " is not allowed`},
		{"name not a string", "[[rule]]\nname = 7\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:2: rule #1: name must be a string such as "nic-queues", not an integer`},
		{"second rule names itself #2", head + "device = \"d\"\ncpus = \"1\"\n[[rule]]\ndevice = \"d\"\ncpus = \"1\"\n", `f.toml:6: rule #2: name is missing`},
		{"duplicate name", head + "device = \"d\"\ncpus = \"1\"\n\n[[rule]]\nname = \"r\"\ndevice = \"e\"\ncpus = \"2\"\n", `f.toml:8: rule "r": name already used by the rule at f.toml:2`},

		// Match keys.
		{"no device or actions", head + "chip = \"GICv3\"\ncpus = \"1\"\n", `f.toml:2: rule "r": give device, driver or actions`},
		{"bad glob", head + "device = \"0000:01:00.[\"\ncpus = \"1\"\n", `f.toml:4: rule "r": device "0000:01:00.[": syntax error in pattern`},
		{"bad glob actions", head + "device = \"d\"\nactions = \"x\\\\\"\ncpus = \"1\"\n", `f.toml:5: rule "r": actions "x\\": syntax error in pattern`},
		{"bad glob chip", head + "device = \"d\"\nchip = \"[]\"\ncpus = \"1\"\n", `f.toml:5: rule "r": chip "[]": syntax error in pattern`},
		{"empty glob", head + "driver = \"\"\ncpus = \"1\"\n", `f.toml:4: rule "r": driver is empty`},
		{"glob not a string", head + "device = 1\ncpus = \"1\"\n", `f.toml:4: rule "r": device must be a glob such as "0000:01:00.*", not an integer`},
		{"glob an array", head + "device = [\"a\", \"b\"]\ncpus = \"1\"\n", `f.toml:4: rule "r": device must be a glob such as "0000:01:00.*", not an array`},

		// cpus.
		{"bad cpulist", head + "device = \"d\"\ncpus = \"8-x\"\n", `f.toml:5: rule "r": cpus "8-x": bad CPU number "x"`},
		{"backwards range", head + "device = \"d\"\ncpus = \"9-8\"\n", `f.toml:5: rule "r": cpus "9-8": range "9-8" ends before it starts`},
		{"empty cpus", head + "device = \"d\"\ncpus = \"\"\n", `f.toml:5: rule "r": cpus is empty`},
		{"blank cpus", head + "device = \"d\"\ncpus = \"  \"\n", `f.toml:5: rule "r": cpus is empty`},
		{"cpus an integer", head + "device = \"d\"\ncpus = 3\n", `f.toml:5: rule "r": cpus must be a cpulist such as "8-15", not an integer`},
		{"cpus an array", head + "device = \"d\"\ncpus = [3]\n", `f.toml:5: rule "r": cpus must be a cpulist such as "8-15", not an array`},

		// exclusive and ignore.
		{"exclusive a string", head + "device = \"d\"\ncpus = \"1\"\nexclusive = \"yes\"\n", `f.toml:6: rule "r": exclusive must be true or false, not a string`},
		{"exclusive without cpus", head + "device = \"d\"\nnode = 1\nexclusive = true\n", `f.toml:6: rule "r": exclusive needs cpus`},
		{"ignore an integer", head + "device = \"d\"\nignore = 1\n", `f.toml:5: rule "r": ignore must be true or false, not an integer`},
		{"ignore with cpus", head + "device = \"d\"\ncpus = \"1\"\nignore = true\n", `f.toml:6: rule "r": ignore = true cannot be combined with cpus`},
		{"ignore with exclusive and cpus", head + "device = \"d\"\ncpus = \"1\"\nexclusive = true\nignore = true\n", `f.toml:7: rule "r": ignore = true cannot be combined with cpus or exclusive:`},
		{"ignore with all three", head + "device = \"d\"\ncpus = \"1\"\nexclusive = true\nnode = 0\nignore = true\n", `f.toml:8: rule "r": ignore = true cannot be combined with cpus, exclusive or node:`},
		{"ignore with node", head + "device = \"d\"\nignore = true\nnode = \"local\"\n", `f.toml:5: rule "r": ignore = true cannot be combined with node`},

		// node.
		{"node a numeric string", head + "device = \"d\"\nnode = \"1\"\n", `f.toml:5: rule "r": node "1": write a node number without quotes: node = 1`},
		{"node a word", head + "device = \"d\"\nnode = \"near\"\n", `f.toml:5: rule "r": node "near": want "local", "ignore" or a node number`},
		{"node negative", head + "device = \"d\"\nnode = -1\n", `f.toml:5: rule "r": node -1: a node number is from 0 to 4095`},
		{"node too large", head + "device = \"d\"\nnode = 4096\n", `f.toml:5: rule "r": node 4096: a node number is from 0 to 4095`},
		{"node a float", head + "device = \"d\"\nnode = 1.0\n", `f.toml:5: rule "r": node must be "local", "ignore" or a node number, not a float`},
		{"node a boolean", head + "device = \"d\"\nnode = true\n", `f.toml:5: rule "r": node must be "local", "ignore" or a node number, not a boolean`},

		// No effect.
		{"no effect", head + "device = \"d\"\n", `f.toml:2: rule "r" has no effect: give cpus, node or ignore`},
		{"no effect ignore false", head + "device = \"d\"\nignore = false\n", `f.toml:2: rule "r" has no effect: give cpus, node or ignore`},

		// Of several mistakes, the first in the file.
		{"first error wins", head + "device = \"d\"\ncpus = \"x\"\n[[rule]]\nname = \"s\"\nbogus = 1\n", `f.toml:5: rule "r": cpus "x"`},
		{"error in later rule", head + "device = \"d\"\ncpus = \"1\"\n\n[[rule]]\nname = \"s\"\ndevice = \"e\"\ncpus = \"1\"\nnode = \"far\"\n", `f.toml:11: rule "s": node "far"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Parse("f.toml", []byte(tc.data))
			if rules != nil {
				t.Errorf("rules %v returned with an error", rules)
			}
			wantError(t, err, tc.want)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("# " + strings.Repeat("x", MaxFileSize) + "\n")
	_, err := Parse("big.toml", data)
	wantError(t, err, "big.toml: is larger than 1048576 bytes")
}

func TestParseQuotesBadInput(t *testing.T) {
	// A name or value echoed in a message is quoted: no terminal escape
	// reaches the operator's screen from a rules file.
	_, err := Parse("f.toml", []byte("[[rule]]\nname = \"a\\u001b[31m\"\ndevice = \"d\"\ncpus = \"1\"\n"))
	wantError(t, err, `f.toml:2: rule #1: name "a\x1b[31m"`)
}
