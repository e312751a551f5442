// Package cpuset is the set of CPU numbers irqshift computes with, the Go
// form of the kernel's struct cpumask, and its two text forms: the cpulist
// ("0-3,8", /proc/irq/N/smp_affinity_list, /sys/devices/system/cpu/online)
// and the hex cpumask ("ff,00000001", /proc/irq/N/smp_affinity,
// IRQBALANCE_BANNED_CPUS).
//
// It is a leaf: it imports nothing of irqshift's but internal/quote, and
// knows nothing of kernel files, so that the packages that read them
// (sysfs, hotplug) and the core (affinity) share it without importing one
// another. Its parse errors say what is wrong with the text; sysfs wraps
// them in its ErrFileParse when the text came from a kernel file.
package cpuset

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/internal/quote"
)

// MaxCPUs bounds the CPU numbers a Set accepts. Linux's NR_CPUS tops out
// at 8192 on arm64 and x86; the margin keeps a malformed file from making us
// allocate gigabytes.
const MaxCPUs = 1 << 16

// Set is a set of CPU numbers, the Go form of the kernel's struct cpumask.
// The zero value is the empty set. Set values are immutable: every method
// that changes membership returns a new set.
type Set struct {
	words []uint64
}

// New returns the set of the given CPUs. It panics on a CPU outside
// [0, MaxCPUs); it is meant for constants and tests, parsers use ParseList.
func New(cpus ...int) Set {
	var s Set
	for _, c := range cpus {
		if c < 0 || c >= MaxCPUs {
			panic(fmt.Sprintf("cpuset.New: CPU %d out of range", c))
		}
		s.set(c)
	}
	return s
}

func (s *Set) set(cpu int) {
	w := cpu / 64
	if w >= len(s.words) {
		grown := make([]uint64, w+1)
		copy(grown, s.words)
		s.words = grown
	}
	s.words[w] |= 1 << (cpu % 64)
}

// trim drops high zero words so that Equal can compare word by word.
func (s Set) trim() Set {
	n := len(s.words)
	for n > 0 && s.words[n-1] == 0 {
		n--
	}
	return Set{words: s.words[:n]}
}

// Last returns the highest CPU in the set, or -1 when it is empty.
func (s Set) Last() int {
	s = s.trim()
	if len(s.words) == 0 {
		return -1
	}
	top := len(s.words) - 1
	return top*64 + 63 - bits.LeadingZeros64(s.words[top])
}

// Contains reports whether cpu is in the set.
func (s Set) Contains(cpu int) bool {
	if cpu < 0 {
		return false
	}
	w := cpu / 64
	return w < len(s.words) && s.words[w]&(1<<(cpu%64)) != 0
}

// Len returns the number of CPUs in the set.
func (s Set) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether the set has no CPU.
func (s Set) IsEmpty() bool {
	for _, w := range s.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// CPUs returns the members in ascending order; never nil, so that it
// encodes as [] in JSON.
func (s Set) CPUs() []int {
	out := make([]int, 0, s.Len())
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// First returns the lowest CPU in the set, or -1 when it is empty.
func (s Set) First() int {
	return s.Next(-1)
}

// Next returns the lowest CPU in the set greater than cpu, or -1.
func (s Set) Next(cpu int) int {
	start := cpu + 1
	if start < 0 {
		start = 0
	}
	for w := start / 64; w < len(s.words); w++ {
		word := s.words[w]
		if w == start/64 {
			word &^= (1 << (start % 64)) - 1
		}
		if word != 0 {
			return w*64 + bits.TrailingZeros64(word)
		}
	}
	return -1
}

// With returns the set plus cpu.
func (s Set) With(cpu int) Set {
	out := Set{words: append([]uint64(nil), s.words...)}
	out.set(cpu)
	return out
}

// Without returns the set minus cpu.
func (s Set) Without(cpu int) Set {
	return s.Difference(New(cpu))
}

// Union returns the CPUs in s or o.
func (s Set) Union(o Set) Set {
	a, b := s.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	out := append([]uint64(nil), a...)
	for i, w := range b {
		out[i] |= w
	}
	return Set{words: out}.trim()
}

// Intersect returns the CPUs in both s and o.
func (s Set) Intersect(o Set) Set {
	n := min(len(s.words), len(o.words))
	out := make([]uint64, n)
	for i := range n {
		out[i] = s.words[i] & o.words[i]
	}
	return Set{words: out}.trim()
}

// Difference returns the CPUs in s and not in o.
func (s Set) Difference(o Set) Set {
	out := append([]uint64(nil), s.words...)
	for i := range min(len(out), len(o.words)) {
		out[i] &^= o.words[i]
	}
	return Set{words: out}.trim()
}

// Intersects reports whether s and o have a CPU in common.
func (s Set) Intersects(o Set) bool {
	for i := range min(len(s.words), len(o.words)) {
		if s.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Equal reports whether both sets have the same CPUs.
func (s Set) Equal(o Set) bool {
	a, b := s.trim().words, o.trim().words
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// IsSubsetOf reports whether every CPU of s is in o.
func (s Set) IsSubsetOf(o Set) bool {
	return s.Difference(o).IsEmpty()
}

// String formats the set in the kernel's cpulist syntax ("0-3,8,10-11"), as
// in /proc/irq/N/smp_affinity_list. The empty set is "".
func (s Set) String() string {
	var b strings.Builder
	cpu := s.First()
	for cpu >= 0 {
		end := cpu
		for s.Contains(end + 1) {
			end++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpu))
		if end > cpu {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(end))
		}
		cpu = s.Next(end)
	}
	return b.String()
}

// Mask formats the set in the kernel's hex bitmap syntax, as in
// /proc/irq/N/smp_affinity: 32-bit groups, most significant first, separated
// by commas ("ff,00000001"). nbits is the width to print, normally
// nr_cpu_ids; it is raised to fit the highest CPU.
func (s Set) Mask(nbits int) string {
	s = s.trim()
	if last := s.Last(); nbits <= last {
		nbits = last + 1
	}
	groups := max((nbits+31)/32, 1)
	var b strings.Builder
	for g := groups - 1; g >= 0; g-- {
		var v uint32
		if w := g / 2; w < len(s.words) {
			v = uint32(s.words[w] >> (32 * (g % 2)))
		}
		if g == groups-1 {
			// The kernel prints the top group only as wide as nbits needs.
			width := (nbits - 32*g + 3) / 4
			fmt.Fprintf(&b, "%0*x", width, v)
		} else {
			fmt.Fprintf(&b, ",%08x", v)
		}
	}
	return b.String()
}

// ParseList parses the kernel's cpulist syntax: comma-separated CPUs and
// ranges, optionally with a stride ("0-7:2/4", bitmap_parselist), surrounded
// by white space. An empty string is the empty set.
func ParseList(text string) (Set, error) {
	text = strings.TrimSpace(text)
	var s Set
	if text == "" {
		return s, nil
	}
	for part := range strings.SplitSeq(text, ",") {
		if err := s.addListPart(part); err != nil {
			return Set{}, fmt.Errorf("cpulist %s: %w", quote.Quote(text), err)
		}
	}
	return s, nil
}

func (s *Set) addListPart(part string) error {
	rangePart, stridePart, hasStride := strings.Cut(part, ":")
	lo, hi := rangePart, rangePart
	if a, b, ok := strings.Cut(rangePart, "-"); ok {
		lo, hi = a, b
	}
	first, err := parseCPU(lo)
	if err != nil {
		return err
	}
	last, err := parseCPU(hi)
	if err != nil {
		return err
	}
	if last < first {
		return fmt.Errorf("range %s ends before it starts", quote.Token(part))
	}
	used, group := 1, 1
	if hasStride {
		u, g, ok := strings.Cut(stridePart, "/")
		if !ok {
			return fmt.Errorf("stride %s is not used/group", quote.Token(stridePart))
		}
		if used, err = strconv.Atoi(u); err != nil || used < 1 {
			return fmt.Errorf("bad stride %s", quote.Token(stridePart))
		}
		if group, err = strconv.Atoi(g); err != nil || group < used {
			return fmt.Errorf("bad stride %s", quote.Token(stridePart))
		}
	}
	if !hasStride {
		s.set(last) // one allocation for the whole range, not one per word
	}
	for cpu := first; cpu <= last; cpu++ {
		if (cpu-first)%group < used {
			s.set(cpu)
		}
	}
	return nil
}

func parseCPU(text string) (int, error) {
	if text == "" || len(text) > 6 {
		return 0, fmt.Errorf("bad CPU number %s", quote.Token(text))
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 0 || text[0] == '+' {
		return 0, fmt.Errorf("bad CPU number %s", quote.Token(text))
	}
	if n >= MaxCPUs {
		return 0, fmt.Errorf("CPU %d is beyond %d", n, MaxCPUs-1)
	}
	return n, nil
}

// ParseMask parses the kernel's hex bitmap syntax ("ff,00000001",
// "0000000f"), as in /proc/irq/N/smp_affinity and the IRQBALANCE_BANNED_CPUS
// variable. Groups are 32 bits, most significant first; a leading "0x" is
// accepted for people typing it by hand.
func ParseMask(text string) (Set, error) {
	orig := text
	text = strings.TrimSpace(text)
	text = strings.TrimPrefix(strings.TrimPrefix(text, "0x"), "0X")
	if text == "" {
		return Set{}, fmt.Errorf("cpumask %s is empty", quote.Quote(orig))
	}
	// Count before splitting: a 10 MB run of commas must not become
	// millions of strings.
	if (strings.Count(text, ",")+1)*32 > MaxCPUs {
		return Set{}, fmt.Errorf("cpumask %s is wider than %d CPUs", quote.Quote(orig), MaxCPUs)
	}
	groups := strings.Split(text, ",")
	var s Set
	for i, g := range groups {
		if g == "" || len(g) > 8 {
			return Set{}, fmt.Errorf("cpumask %s: group %s is not 1 to 8 hex digits", quote.Quote(orig), quote.Token(g))
		}
		v, err := strconv.ParseUint(g, 16, 32)
		if err != nil {
			return Set{}, fmt.Errorf("cpumask %s: group %s is not hex", quote.Quote(orig), quote.Token(g))
		}
		base := 32 * (len(groups) - 1 - i)
		for b := range 32 {
			if v&(1<<b) != 0 {
				s.set(base + b)
			}
		}
	}
	return s.trim(), nil
}

// MarshalJSON encodes the set as an array of CPU numbers.
func (s Set) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.CPUs())
}

// UnmarshalJSON decodes an array of CPU numbers.
func (s *Set) UnmarshalJSON(data []byte) error {
	var cpus []int
	if err := json.Unmarshal(data, &cpus); err != nil {
		return err
	}
	var out Set
	for _, c := range cpus {
		if c < 0 || c >= MaxCPUs {
			return fmt.Errorf("CPU %d out of range", c)
		}
		out.set(c)
	}
	*s = out
	return nil
}
