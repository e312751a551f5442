package rules

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Format renders rules as TOML [[rule]] tables, a blank line between two,
// with only the keys each rule gives (File and Line are where a rule was
// read, not part of it). What Parse returned, Format writes so that Parse
// reads back the same rules. Strings that are not valid UTF-8, which TOML
// cannot hold and Parse never returns, have each bad byte written as
// U+FFFD.
func Format(rules []Rule) []byte {
	var b bytes.Buffer
	for i, r := range rules {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("[[rule]]\n")
		writeString(&b, "name", r.Name)
		writeString(&b, "device", r.Device)
		writeString(&b, "driver", r.Driver)
		writeString(&b, "actions", r.Actions)
		writeString(&b, "chip", r.Chip)
		if r.HasCPUs {
			writeString(&b, "cpus", r.CPUs.String())
		}
		if r.Exclusive {
			b.WriteString("exclusive = true\n")
		}
		if r.Ignore {
			b.WriteString("ignore = true\n")
		}
		switch r.Node.Kind {
		case NodeLocal, NodeIgnore:
			writeString(&b, "node", r.Node.String())
		case NodeNumber:
			fmt.Fprintf(&b, "node = %d\n", r.Node.Number)
		}
	}
	return b.Bytes()
}

// writeString writes key = value, leaving out an empty value: Parse
// refuses empty strings, and a key left out means "any".
func writeString(b *bytes.Buffer, key, value string) {
	if value == "" {
		return
	}
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(tomlString(value))
	b.WriteByte('\n')
}

// tomlString quotes s for TOML. A glob with a backslash (an escaped '*'
// in a pin's device or action name) reads better as a literal string,
// 'mlx5\*', than as "mlx5\\*"; a literal string cannot hold a quote or a
// control character, so those take a basic string with escapes.
func tomlString(s string) string {
	if strings.Contains(s, `\`) && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r == '\'' || isControl(r)
	}) {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\uFFFD`)
		default:
			b.WriteString(s[i : i+size])
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isControl reports the characters TOML does not allow raw in a string.
// Tab is allowed in both kinds of string, but an escaped tab is visible.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}
