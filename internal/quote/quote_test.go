package quote

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// tenMB is the length of the bad lines below: far more than a message
// should ever echo.
const tenMB = 10 << 20

func TestQuote(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"short", "0-3\n", `"0-3\n"`},
		{"exactly fits", strings.Repeat("a", 198), strconv.Quote(strings.Repeat("a", 198))},
		{"one byte too long", strings.Repeat("a", 199), `"` + strings.Repeat("a", 198) + `"…(199 bytes)`},
		{"ten MB", strings.Repeat("x", tenMB), `"` + strings.Repeat("x", 198) + `"…(10485760 bytes)`},
	} {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("%s: Quote = %.300q, want %.300q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"NULs", strings.Repeat("\x00", tenMB)},
		{"invalid UTF-8", strings.Repeat("\xff", 1000)},
		{"continuation bytes", "a" + strings.Repeat("\x80", 1000)},
		{"two-byte runes", strings.Repeat("é", 1000)},
		{"line separators", strings.Repeat("\u2028", 1000)},
		{"short with escapes", strings.Repeat("\x01", 60)},
	} {
		got := Quote(tt.in)
		lit, note, cut := strings.Cut(got, "…(")
		if !cut || note != strconv.Itoa(len(tt.in))+" bytes)" {
			t.Errorf("%s: Quote = %.300q: no …(%d bytes) note", tt.name, got, len(tt.in))
			continue
		}
		if len(lit) > maxQuote {
			t.Errorf("%s: quoted text is %d bytes, want at most %d", tt.name, len(lit), maxQuote)
		}
		back, err := strconv.Unquote(lit)
		if err != nil || !strings.HasPrefix(tt.in, back) || back == "" {
			t.Errorf("%s: %.300q is not a quoted non-empty prefix of the input: %q, %v", tt.name, lit, back, err)
		}
		if utf8.ValidString(tt.in) && !utf8.ValidString(back) {
			t.Errorf("%s: the cut split a character: %q", tt.name, back)
		}
	}
}

// TestBytesAndToken: Bytes quotes as Quote does, and Token, of a string
// or of bytes, cuts at 48 bytes of quoted text.
func TestBytesAndToken(t *testing.T) {
	for _, in := range []string{"", "0-3\n", strings.Repeat("x", 199), strings.Repeat("\x00", 1000)} {
		if got, want := Bytes([]byte(in)), Quote(in); got != want {
			t.Errorf("Bytes(%.60q) = %.300q, want %.300q as Quote", in, got, want)
		}
	}
	long := strings.Repeat("y", tenMB)
	want := `"` + strings.Repeat("y", 46) + `"…(10485760 bytes)`
	if got := Token(long); got != want {
		t.Errorf("Token(10 MB string) = %q, want %q", got, want)
	}
	if got := Token([]byte(long)); got != want {
		t.Errorf("Token(10 MB of bytes) = %q, want %q", got, want)
	}
	if got := Token("abc"); got != `"abc"` {
		t.Errorf(`Token("abc") = %q`, got)
	}
}
