package rules

import (
	"bytes"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// roundTrip checks that Format writes rules that Parse reads back the
// same, but for Line: Format lays the file out anew.
func roundTrip(t *testing.T, rules []Rule) {
	t.Helper()
	text := Format(rules)
	back, err := Parse("f.toml", text)
	if err != nil {
		t.Fatalf("Format wrote what Parse refuses: %v\n%s", err, text)
	}
	if len(back) != len(rules) {
		t.Fatalf("%d rules back from %d:\n%s", len(back), len(rules), text)
	}
	for i := range rules {
		want := rules[i]
		want.File, want.Line = "f.toml", back[i].Line
		if !sameRule(back[i], want) {
			t.Errorf("rule %d:\n back %s\n want %s\n%s", i, describe(back[i]), describe(want), text)
		}
	}
	if again := Format(back); !bytes.Equal(again, text) {
		t.Errorf("Format is not stable:\n%s\nthen\n%s", text, again)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	rules, err := Parse("f.toml", []byte(exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rules)
	roundTrip(t, []Rule{
		{Name: "all", Device: "0000:0[0-3]:00.*", Driver: "nvme", Actions: "nvme?q*", Chip: "PCI-MSI*", CPUs: cpuset.New(0, 2, 4, 63, 64), HasCPUs: true, Exclusive: true, Node: Node{Kind: NodeNumber, Number: 3}},
		{Name: "local", Device: "d", Node: Node{Kind: NodeLocal}},
		{Name: "node0", Device: "d", Node: Node{Kind: NodeNumber}},
		{Name: "quotes", Actions: `say "hi"`, Device: `it's`, CPUs: cpuset.New(1), HasCPUs: true},
		{Name: "escapes", Actions: `a\*b`, Device: `back\\slash`, Driver: `it's\?`, CPUs: cpuset.New(1), HasCPUs: true},
		{Name: "controls", Actions: "tab\there\x1b\\[0m\x7f\r\n", Device: "é☃", Ignore: true},
	})
	if out := Format(nil); len(out) != 0 {
		t.Errorf("Format(nil) = %q", out)
	}
}

func TestFormatLayout(t *testing.T) {
	got := string(Format([]Rule{
		{Name: "a", Device: "0000:01:00.*", CPUs: cpuset.New(8, 9, 10), HasCPUs: true, Exclusive: true, File: "x", Line: 9},
		{Name: "b", Actions: `mlx5\*`, Node: Node{Kind: NodeIgnore}},
	}))
	want := `[[rule]]
name = "a"
device = "0000:01:00.*"
cpus = "8-10"
exclusive = true

[[rule]]
name = "b"
actions = 'mlx5\*'
node = "ignore"
`
	if got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatInvalidUTF8(t *testing.T) {
	// TOML cannot hold the byte; the rule must still parse.
	text := Format([]Rule{{Name: "x", Device: "a\xffb", CPUs: cpuset.New(1), HasCPUs: true}})
	rules, err := Parse("f.toml", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if rules[0].Device != "a\uFFFDb" {
		t.Errorf("device %q", rules[0].Device)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(exampleFile)
	f.Add("")
	f.Add("# only comments\n")
	f.Add("rule = [ { name = \"a\", device = \"d\", cpus = \"1\" } ]\n")
	f.Add("[[rule]]\nname = \"r\"\ndevice = 'a\\*'\nactions = \"x\\u001b\"\nnode = 7\n")
	f.Add("[[rule]]\nname = \"r\"\ndevice = \"d\"\ncpus = \"0-7:2/4\"\nexclusive = true\n")
	f.Add("[[rule]]\nname = \"r\"\nchip = \"GICv3\"\nactions = \"fpga*\"\nignore = true\n")
	f.Add("[rule]\nname = \"r\"\n")
	f.Add("[[rule]]\nname = \"r\"\ndevice = \"d\"\ncpus = \"1\"\n[rule.sub]\nx = 1\n[[rule.arr]]\n")
	f.Add(pinsHeader + "[[rule]]\nname = \"pin-0000:01:00.0-q\"\ndevice = \"0000:01:00.0\"\nactions = \"q\"\ncpus = \"3\"\n")
	f.Fuzz(func(t *testing.T, data string) {
		rules, err := Parse("f.toml", []byte(data))
		if err != nil {
			if rules != nil {
				t.Fatalf("rules with an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "f.toml:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, r := range rules {
			if checkName(r.Name) != nil || names[r.Name] {
				t.Fatalf("bad or repeated name %q", r.Name)
			}
			names[r.Name] = true
		}
		roundTrip(t, rules)
	})
}
