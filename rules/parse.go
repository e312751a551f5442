package rules

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/irqshift/irqshift/internal/cpuset"
	"github.com/irqshift/irqshift/internal/quote"
)

// MaxNameLen bounds a rule's name: it is shown in tables and logs.
const MaxNameLen = 64

// ruleKeys are the keys a [[rule]] table may hold, in the order Format
// writes them and messages list them.
var ruleKeys = []string{"name", "device", "driver", "actions", "chip", "cpus", "exclusive", "ignore", "node"}

// Parse reads one rules file's rules. file names it in messages and in
// each Rule's File. Names must be unique within the file; Load checks them
// across the directory.
//
// The TOML is decoded by go-toml, which checks the syntax and the TOML
// rules (duplicate keys, tables defined twice); its parser is run a second
// time for what the decoded values lack: the line of each [[rule]] and of
// each key, so that a semantic error points at its line too. Of several
// mistakes the one on the earliest line is reported.
func Parse(file string, data []byte) ([]Rule, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Text: fmt.Sprintf("is larger than %d bytes, the most a rules file may hold", MaxFileSize)}
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, tomlError(file, err)
	}
	p := parser{file: file, layout: locate(data)}
	rules := p.document(doc)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, p.errs[0]
	}
	return rules, nil
}

func tomlError(file string, err error) error {
	var decodeErr *toml.DecodeError
	if errors.As(err, &decodeErr) {
		line, _ := decodeErr.Position()
		return &Error{File: file, Line: line, Text: "invalid TOML: " + strings.TrimPrefix(decodeErr.Error(), "toml: ")}
	}
	return &Error{File: file, Text: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
}

// keyLines are the lines of one table's keys.
type keyLines struct {
	header int
	keys   map[string]int
}

// note records the first line a key appears on: a key given twice is an
// error go-toml reports before positions are needed.
func (k *keyLines) note(key string, line int) {
	if k.keys == nil {
		k.keys = map[string]int{}
	}
	if _, ok := k.keys[key]; !ok {
		k.keys[key] = line
	}
}

// line returns the line of key, or of the table's header when the key is
// not there (a missing name) or was not located.
func (k *keyLines) line(key string) int {
	if l, ok := k.keys[key]; ok {
		return l
	}
	return k.header
}

// layout is where things are in a file: the top-level keys and tables,
// and for the i-th element of the rule array, rules[i].
type layout struct {
	top   keyLines
	rules []keyLines
}

// locate finds the lines of a document that go-toml has already decoded
// without error. Rules are [[rule]] tables, or, equally valid TOML, inline
// tables in rule = [{...}, ...]; one document cannot mix the two forms, so
// the i-th table located is the i-th element of the decoded array.
func locate(data []byte) layout {
	var p unstable.Parser
	p.Reset(data)
	l := layout{top: keyLines{header: 1}}
	const (
		inRoot  = -1
		inOther = -2 // a table that is not a rule: its keys do not matter
	)
	in := inRoot
	for p.NextExpression() {
		expr := p.Expression()
		keys, line := keyOf(&p, expr)
		if len(keys) == 0 {
			continue
		}
		switch expr.Kind {
		case unstable.KeyValue:
			switch in {
			case inOther:
			case inRoot:
				l.top.note(keys[0], line)
				if len(keys) == 1 && keys[0] == "rule" && expr.Value().Kind == unstable.Array {
					l.rules = append(l.rules, inlineRules(&p, expr.Value(), line)...)
				}
			default:
				l.rules[in].note(keys[0], line)
			}
		case unstable.Table, unstable.ArrayTable:
			in = inOther
			l.top.note(keys[0], line)
			switch {
			case keys[0] != "rule":
			case len(keys) == 1 && expr.Kind == unstable.ArrayTable:
				l.rules = append(l.rules, keyLines{header: line})
				in = len(l.rules) - 1
			case len(keys) > 1 && len(l.rules) > 0:
				// [rule.x] is a table x in the last rule: an unknown key
				// of that rule, at this line.
				l.rules[len(l.rules)-1].note(keys[1], line)
			}
		}
	}
	return l
}

// inlineRules locates the elements of rule = [...], which starts on line.
// An element that is not a table gets that line: it is an error, and
// keeps the index of the elements after it right.
func inlineRules(p *unstable.Parser, array *unstable.Node, line int) []keyLines {
	var found []keyLines
	elements := array.Children()
	for elements.Next() {
		table := elements.Node()
		if table.Kind != unstable.InlineTable {
			found = append(found, keyLines{header: line})
			continue
		}
		k := keyLines{header: p.Shape(table.Raw).Start.Line}
		pairs := table.Children()
		for pairs.Next() {
			if keys, line := keyOf(p, pairs.Node()); len(keys) > 0 {
				k.note(keys[0], line)
			}
		}
		found = append(found, k)
	}
	return found
}

// keyOf returns the parts of a key/value's, table's or array table's
// (dotted) key and the line it starts on. The key's line, not the node's:
// go-toml leaves the range of table headers empty.
func keyOf(p *unstable.Parser, n *unstable.Node) ([]string, int) {
	if n.Kind != unstable.KeyValue && n.Kind != unstable.Table && n.Kind != unstable.ArrayTable {
		return nil, 0
	}
	var parts []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

type parser struct {
	file   string
	layout layout
	errs   []*Error
	// names maps the names seen so far to the line of their rule.
	names map[string]int
}

func (p *parser) fail(line int, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Text: fmt.Sprintf(format, args...)})
}

func (p *parser) document(doc map[string]any) []Rule {
	for key := range doc {
		if key != "rule" {
			p.fail(p.layout.top.line(key), "unknown key or table %s: a rules file holds [[rule]] tables", quote.Quote(key))
		}
	}
	value, ok := doc["rule"]
	if !ok {
		return nil
	}
	where := p.layout.top.line("rule")
	array, ok := value.([]any)
	if !ok {
		p.fail(where, "rule must be an array of tables, written [[rule]], not %s", typeName(value))
		return nil
	}
	rules := make([]Rule, 0, len(array))
	for i, element := range array {
		lines := keyLines{header: where}
		if i < len(p.layout.rules) {
			lines = p.layout.rules[i]
		}
		table, ok := element.(map[string]any)
		if !ok {
			p.fail(lines.header, "rule #%d must be a table, not %s", i+1, typeName(element))
			continue
		}
		if r, ok := p.rule(table, i, lines); ok {
			rules = append(rules, r)
		}
	}
	return rules
}

// rule checks and converts one rule table; i is its index in the file,
// which names it in messages until its name is known good.
func (p *parser) rule(table map[string]any, i int, lines keyLines) (Rule, bool) {
	errsBefore := len(p.errs)
	r := Rule{File: p.file, Line: lines.header}
	label := fmt.Sprintf("rule #%d", i+1)
	if value, ok := table["name"]; ok {
		if name, ok := p.text(lines, label, "name", value, "a string such as \"nic-queues\""); ok {
			if err := checkName(name); err != nil {
				p.fail(lines.line("name"), "%s: name %s: %v", label, quote.Quote(name), err)
			} else {
				label = "rule " + strconv.Quote(name)
				r.Name = name
			}
		}
	} else {
		p.fail(lines.header, "%s: name is missing: every rule needs a unique name", label)
	}
	if r.Name != "" {
		if first, ok := p.names[r.Name]; ok {
			p.fail(lines.line("name"), "%s: name already used by the rule at %s:%d", label, p.file, first)
		} else {
			if p.names == nil {
				p.names = map[string]int{}
			}
			p.names[r.Name] = lines.header
		}
	}

	// Keys in the order they are written, so that the first mistake in the
	// file is the one reported.
	keys := make([]string, 0, len(table))
	for key := range table {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := lines.line(a) - lines.line(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, key := range keys {
		value := table[key]
		line := lines.line(key)
		switch key {
		case "name":
		case "device", "driver", "actions", "chip":
			glob, ok := p.text(lines, label, key, value, "a glob such as \"0000:01:00.*\"")
			if !ok {
				continue
			}
			switch _, err := path.Match(glob, ""); {
			case glob == "":
				p.fail(line, "%s: %s is empty: give a glob, \"*\" for any", label, key)
				continue
			case err != nil:
				p.fail(line, "%s: %s %s: %v", label, key, quote.Quote(glob), err)
				continue
			}
			switch key {
			case "device":
				r.Device = glob
			case "driver":
				r.Driver = glob
			case "actions":
				r.Actions = glob
			case "chip":
				r.Chip = glob
			}
		case "cpus":
			text, ok := p.text(lines, label, key, value, "a cpulist such as \"8-15\"")
			if !ok {
				continue
			}
			cpus, err := cpuset.ParseList(text)
			if err != nil {
				// ParseList's error quotes the text again; its cause alone
				// says what is wrong.
				if cause := errors.Unwrap(err); cause != nil {
					err = cause
				}
				p.fail(line, "%s: cpus %s: %v", label, quote.Quote(text), err)
				continue
			}
			if cpus.IsEmpty() {
				p.fail(line, "%s: cpus is empty: give at least one CPU", label)
				continue
			}
			r.CPUs, r.HasCPUs = cpus, true
		case "exclusive", "ignore":
			b, ok := value.(bool)
			if !ok {
				p.fail(line, "%s: %s must be true or false, not %s", label, key, typeName(value))
				continue
			}
			if key == "exclusive" {
				r.Exclusive = b
			} else {
				r.Ignore = b
			}
		case "node":
			if node, ok := p.node(line, label, value); ok {
				r.Node = node
			}
		default:
			p.fail(line, "%s: unknown key %s (a rule has %s)", label, quote.Quote(key), strings.Join(ruleKeys, ", "))
		}
	}

	if len(p.errs) > errsBefore {
		// Checks of the whole rule would only repeat a bad key's error.
		return Rule{}, false
	}
	switch {
	case r.Device == "" && r.Driver == "" && r.Actions == "":
		// A chip alone would catch the IRQs of every device behind one
		// interrupt controller.
		p.fail(lines.header, "%s: give device, driver or actions: they say which IRQs the rule is for", label)
	case r.Ignore && (r.HasCPUs || r.Exclusive || r.Node.IsSet()):
		var with []string
		for key, given := range map[string]bool{"cpus": r.HasCPUs, "exclusive": r.Exclusive, "node": r.Node.IsSet()} {
			if given {
				with = append(with, key)
			}
		}
		slices.Sort(with)
		p.fail(lines.line("ignore"), "%s: ignore = true cannot be combined with %s: irqshift does not touch an ignored IRQ", label, orList(with))
	case r.Exclusive && !r.HasCPUs:
		p.fail(lines.line("exclusive"), "%s: exclusive needs cpus: it keeps other IRQs off the rule's CPUs", label)
	case !r.HasCPUs && !r.Ignore && !r.Node.IsSet():
		p.fail(lines.header, "%s has no effect: give cpus, node or ignore", label)
	}
	return r, len(p.errs) == errsBefore
}

// text is a key whose value must be a string; want says what one looks
// like.
func (p *parser) text(lines keyLines, label, key string, value any, want string) (string, bool) {
	s, ok := value.(string)
	if !ok {
		p.fail(lines.line(key), "%s: %s must be %s, not %s", label, key, want, typeName(value))
	}
	return s, ok
}

func (p *parser) node(line int, label string, value any) (Node, bool) {
	switch v := value.(type) {
	case string:
		switch v {
		case "local":
			return Node{Kind: NodeLocal}, true
		case "ignore":
			return Node{Kind: NodeIgnore}, true
		}
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			p.fail(line, "%s: node %s: write a node number without quotes: node = %s", label, quote.Quote(v), strings.TrimSpace(v))
		} else {
			p.fail(line, "%s: node %s: want \"local\", \"ignore\" or a node number", label, quote.Quote(v))
		}
	case int64:
		if v < 0 || v > MaxNode {
			p.fail(line, "%s: node %d: a node number is from 0 to %d", label, v, MaxNode)
			break
		}
		return Node{Kind: NodeNumber, Number: int(v)}, true
	default:
		p.fail(line, "%s: node must be \"local\", \"ignore\" or a node number, not %s", label, typeName(value))
	}
	return Node{}, false
}

// checkName keeps names to characters that need no quoting on a command
// line, in a table or in a log, and that make up the names PinRule builds
// from device and action names.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("a name has 1 to %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("%s is not allowed: a name has letters, digits and - _ . : @", quote.Token(name[i:i+1]))
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.:@", c) >= 0
}

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case toml.LocalDate, toml.LocalTime, toml.LocalDateTime, time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}

// orList joins words as a sentence does: "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
