package sysfs

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxCPUs bounds the CPU numbers a CPUSet accepts. Linux's NR_CPUS tops out
// at 8192 on arm64 and x86; the margin keeps a malformed file from making us
// allocate gigabytes.
const MaxCPUs = 1 << 16

// CPUSet is a set of CPU numbers, the Go form of the kernel's struct cpumask.
// The zero value is the empty set. CPUSet values are immutable: every method
// that changes membership returns a new set.
type CPUSet struct {
	words []uint64
}

// NewCPUSet returns the set of the given CPUs. It panics on a CPU outside
// [0, MaxCPUs); it is meant for constants and tests, parsers use ParseCPUList.
func NewCPUSet(cpus ...int) CPUSet {
	var s CPUSet
	for _, c := range cpus {
		if c < 0 || c >= MaxCPUs {
			panic(fmt.Sprintf("sysfs.NewCPUSet: CPU %d out of range", c))
		}
		s.set(c)
	}
	return s
}

func (s *CPUSet) set(cpu int) {
	w := cpu / 64
	if w >= len(s.words) {
		grown := make([]uint64, w+1)
		copy(grown, s.words)
		s.words = grown
	}
	s.words[w] |= 1 << (cpu % 64)
}

// trim drops high zero words so that Equal can compare word by word.
func (s CPUSet) trim() CPUSet {
	n := len(s.words)
	for n > 0 && s.words[n-1] == 0 {
		n--
	}
	return CPUSet{words: s.words[:n]}
}

// Last returns the highest CPU in the set, or -1 when it is empty.
func (s CPUSet) Last() int {
	s = s.trim()
	if len(s.words) == 0 {
		return -1
	}
	top := len(s.words) - 1
	return top*64 + 63 - bits.LeadingZeros64(s.words[top])
}

// Contains reports whether cpu is in the set.
func (s CPUSet) Contains(cpu int) bool {
	if cpu < 0 {
		return false
	}
	w := cpu / 64
	return w < len(s.words) && s.words[w]&(1<<(cpu%64)) != 0
}

// Len returns the number of CPUs in the set.
func (s CPUSet) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether the set has no CPU.
func (s CPUSet) IsEmpty() bool {
	for _, w := range s.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// CPUs returns the members in ascending order; never nil, so that it
// encodes as [] in JSON.
func (s CPUSet) CPUs() []int {
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
func (s CPUSet) First() int {
	return s.Next(-1)
}

// Next returns the lowest CPU in the set greater than cpu, or -1.
func (s CPUSet) Next(cpu int) int {
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
func (s CPUSet) With(cpu int) CPUSet {
	out := CPUSet{words: append([]uint64(nil), s.words...)}
	out.set(cpu)
	return out
}

// Without returns the set minus cpu.
func (s CPUSet) Without(cpu int) CPUSet {
	return s.Difference(NewCPUSet(cpu))
}

// Union returns the CPUs in s or o.
func (s CPUSet) Union(o CPUSet) CPUSet {
	a, b := s.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	out := append([]uint64(nil), a...)
	for i, w := range b {
		out[i] |= w
	}
	return CPUSet{words: out}.trim()
}

// Intersect returns the CPUs in both s and o.
func (s CPUSet) Intersect(o CPUSet) CPUSet {
	n := min(len(s.words), len(o.words))
	out := make([]uint64, n)
	for i := range n {
		out[i] = s.words[i] & o.words[i]
	}
	return CPUSet{words: out}.trim()
}

// Difference returns the CPUs in s and not in o.
func (s CPUSet) Difference(o CPUSet) CPUSet {
	out := append([]uint64(nil), s.words...)
	for i := range min(len(out), len(o.words)) {
		out[i] &^= o.words[i]
	}
	return CPUSet{words: out}.trim()
}

// Intersects reports whether s and o have a CPU in common.
func (s CPUSet) Intersects(o CPUSet) bool {
	for i := range min(len(s.words), len(o.words)) {
		if s.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Equal reports whether both sets have the same CPUs.
func (s CPUSet) Equal(o CPUSet) bool {
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
func (s CPUSet) IsSubsetOf(o CPUSet) bool {
	return s.Difference(o).IsEmpty()
}

// String formats the set in the kernel's cpulist syntax ("0-3,8,10-11"), as
// in /proc/irq/N/smp_affinity_list. The empty set is "".
func (s CPUSet) String() string {
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
func (s CPUSet) Mask(nbits int) string {
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

// ParseCPUList parses the kernel's cpulist syntax: comma-separated CPUs and
// ranges, optionally with a stride ("0-7:2/4", bitmap_parselist), surrounded
// by white space. An empty string is the empty set.
func ParseCPUList(text string) (CPUSet, error) {
	text = strings.TrimSpace(text)
	var s CPUSet
	if text == "" {
		return s, nil
	}
	for part := range strings.SplitSeq(text, ",") {
		if err := s.addListPart(part); err != nil {
			return CPUSet{}, fmt.Errorf("%w: cpulist %s: %w", ErrFileParse, Quote(text), err)
		}
	}
	return s, nil
}

func (s *CPUSet) addListPart(part string) error {
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
		return fmt.Errorf("range %s ends before it starts", quote(part, maxQuoteToken))
	}
	used, group := 1, 1
	if hasStride {
		u, g, ok := strings.Cut(stridePart, "/")
		if !ok {
			return fmt.Errorf("stride %s is not used/group", quote(stridePart, maxQuoteToken))
		}
		if used, err = strconv.Atoi(u); err != nil || used < 1 {
			return fmt.Errorf("bad stride %s", quote(stridePart, maxQuoteToken))
		}
		if group, err = strconv.Atoi(g); err != nil || group < used {
			return fmt.Errorf("bad stride %s", quote(stridePart, maxQuoteToken))
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
		return 0, fmt.Errorf("bad CPU number %s", quote(text, maxQuoteToken))
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 0 || text[0] == '+' {
		return 0, fmt.Errorf("bad CPU number %s", quote(text, maxQuoteToken))
	}
	if n >= MaxCPUs {
		return 0, fmt.Errorf("CPU %d is beyond %d", n, MaxCPUs-1)
	}
	return n, nil
}

// ParseCPUMask parses the kernel's hex bitmap syntax ("ff,00000001",
// "0000000f"), as in /proc/irq/N/smp_affinity and the IRQBALANCE_BANNED_CPUS
// variable. Groups are 32 bits, most significant first; a leading "0x" is
// accepted for people typing it by hand.
func ParseCPUMask(text string) (CPUSet, error) {
	orig := text
	text = strings.TrimSpace(text)
	text = strings.TrimPrefix(strings.TrimPrefix(text, "0x"), "0X")
	if text == "" {
		return CPUSet{}, fmt.Errorf("%w: cpumask %s is empty", ErrFileParse, Quote(orig))
	}
	// Count before splitting: a 10 MB run of commas must not become
	// millions of strings.
	if (strings.Count(text, ",")+1)*32 > MaxCPUs {
		return CPUSet{}, fmt.Errorf("%w: cpumask %s is wider than %d CPUs", ErrFileParse, Quote(orig), MaxCPUs)
	}
	groups := strings.Split(text, ",")
	var s CPUSet
	for i, g := range groups {
		if g == "" || len(g) > 8 {
			return CPUSet{}, fmt.Errorf("%w: cpumask %s: group %s is not 1 to 8 hex digits", ErrFileParse, Quote(orig), quote(g, maxQuoteToken))
		}
		v, err := strconv.ParseUint(g, 16, 32)
		if err != nil {
			return CPUSet{}, fmt.Errorf("%w: cpumask %s: group %s is not hex", ErrFileParse, Quote(orig), quote(g, maxQuoteToken))
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
func (s CPUSet) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.CPUs())
}

// UnmarshalJSON decodes an array of CPU numbers.
func (s *CPUSet) UnmarshalJSON(data []byte) error {
	var cpus []int
	if err := json.Unmarshal(data, &cpus); err != nil {
		return err
	}
	var out CPUSet
	for _, c := range cpus {
		if c < 0 || c >= MaxCPUs {
			return fmt.Errorf("CPU %d out of range", c)
		}
		out.set(c)
	}
	*s = out
	return nil
}
