// Package quote quotes untrusted text for messages, within a bound:
// Quote and Bytes cite a bad line, Token a bad token of a line that the
// message cites too, and Printable makes a name from the kernel safe to
// print in a table.
//
// It imports nothing of irqshift's, so that every layer can use it: the
// kernel file readers (sysfs, hotplug), the parsers of other leaf
// packages (cpuset, envfile), the core (affinity) and the command line.
package quote

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxQuote bounds what Quote writes, quotes included, before the "…(N
// bytes)" note: error messages cite a bad line, never all of it. A kernel
// file has no line length limit (a 256-CPU /proc/interrupts row is 3 kB),
// and a fixture or a broken kernel can hand us 10 MB on one line.
const maxQuote = 200

// maxQuoteToken bounds a token quoted inside a message that already
// quotes its line with Quote, so that the two together stay under 400
// bytes.
const maxQuoteToken = 48

// Quote returns s as a Go string literal (%q), cut to at most 200 bytes of
// quoted text: a longer s is cut at a character boundary and followed by
// "…(N bytes)", N being the length of all of s. Every parse error that
// echoes its input goes through it (or Bytes, or Token).
func Quote(s string) string {
	return bounded(s, maxQuote)
}

// Bytes is Quote for a byte slice: a 10 MB line is not copied into a
// string to quote 200 bytes of it.
func Bytes(b []byte) string {
	return bounded(b, maxQuote)
}

// Token is Quote cut to 48 bytes of quoted text: for a token of a line
// that the same message quotes with Quote or Bytes, so that the two
// together stay under 400 bytes.
func Token[T string | []byte](s T) string {
	return bounded(s, maxQuoteToken)
}

// bounded is Quote with the limit limit (at least 2, the quotes). It takes
// bytes too, so that a 10 MB line is not copied into a string to quote 200
// bytes of it.
func bounded[T string | []byte](s T, limit int) string {
	if len(s) <= limit {
		if q := strconv.Quote(string(s)); len(q) <= limit {
			return q
		}
	}
	n := min(len(s), limit)
	// Do not split a UTF-8 sequence; look back at most UTFMax-1 bytes so
	// that a run of stray continuation bytes cannot empty the prefix.
	for back := 0; back < utf8.UTFMax-1 && n > 0 && n < len(s) && !utf8.RuneStart(s[n]); back++ {
		n--
	}
	prefix := string(s[:n])
	q := strconv.Quote(prefix)
	for len(q) > limit && len(prefix) > 0 {
		// Escapes (\x00, \u2028) made the literal longer than the
		// prefix: drop characters until it fits (at most limit rounds
		// of at most limit bytes, and only on an error path).
		_, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		q = strconv.Quote(prefix)
	}
	return q + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Printable returns s with every character a terminal would act on (ESC
// and the other control characters, tabs, invalid UTF-8) written as a Go
// escape (\x1b, \t, \xff), and the rest as it is. Names the kernel prints
// (actions, chips) come from drivers and device names, so a table that
// shows them must not let them move the cursor or recolour the screen.
func Printable(s string) string {
	clean := true
	for i, r := range s {
		if !unicode.IsPrint(r) || (r == utf8.RuneError && isInvalidAt(s, i)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// isInvalidAt reports whether the RuneError at s[i] is an invalid byte
// rather than an encoded U+FFFD.
func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}
