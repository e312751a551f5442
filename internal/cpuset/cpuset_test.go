package cpuset

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantStr string
		wantErr bool
	}{
		{in: "", want: []int{}, wantStr: ""},
		{in: "\n", want: []int{}, wantStr: ""},
		{in: "0", want: []int{0}, wantStr: "0"},
		{in: "0-3\n", want: []int{0, 1, 2, 3}, wantStr: "0-3"},
		{in: "0-1,3", want: []int{0, 1, 3}, wantStr: "0-1,3"},
		{in: "0-3,8,10-11", want: []int{0, 1, 2, 3, 8, 10, 11}, wantStr: "0-3,8,10-11"},
		{in: "3,1,2", want: []int{1, 2, 3}, wantStr: "1-3"},
		{in: "0-7:2/4", want: []int{0, 1, 4, 5}, wantStr: "0-1,4-5"},
		{in: "63-65", want: []int{63, 64, 65}, wantStr: "63-65"},
		{in: "5-3", wantErr: true},
		{in: "a", wantErr: true},
		{in: "1,,2", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "0-99999999", wantErr: true},
		{in: "65536", wantErr: true},
		{in: "0-7:0/4", wantErr: true},
		{in: "0-7:5/4", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseList(tt.in)
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "cpulist ") {
					t.Fatalf("ParseList(%q) error = %v, want a cpulist error", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseList(%q): %v", tt.in, err)
			}
			if !slices.Equal(got.CPUs(), tt.want) {
				t.Errorf("CPUs() = %v, want %v", got.CPUs(), tt.want)
			}
			if got.String() != tt.wantStr {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantStr)
			}
		})
	}
}

func TestParseMask(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "f\n", want: "0-3"},
		{in: "0000000f", want: "0-3"},
		{in: "0x4", want: "2"},
		{in: "ff,00000001", want: "0,32-39"},
		{in: "00000000,00000000", want: ""},
		{in: "1,0", want: "32"},
		{in: "", wantErr: true},
		{in: "g", wantErr: true},
		{in: "123456789", wantErr: true},
		{in: "f,,f", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMask(tt.in)
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "cpumask ") {
					t.Fatalf("ParseMask(%q) error = %v, want a cpumask error", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMask(%q): %v", tt.in, err)
			}
			if got.String() != tt.want {
				t.Errorf("ParseMask(%q) = %q, want %q", tt.in, got.String(), tt.want)
			}
		})
	}
}

func TestSetMask(t *testing.T) {
	tests := []struct {
		cpus  []int
		nbits int
		want  string
	}{
		{cpus: []int{0, 1, 2, 3}, nbits: 4, want: "f"},
		{cpus: []int{2}, nbits: 4, want: "4"},
		{cpus: []int{}, nbits: 4, want: "0"},
		{cpus: []int{0}, nbits: 64, want: "00000000,00000001"},
		{cpus: []int{0, 35}, nbits: 40, want: "08,00000001"},
		{cpus: []int{40}, nbits: 4, want: "100,00000000"},
	}
	for _, tt := range tests {
		s := New(tt.cpus...)
		if got := s.Mask(tt.nbits); got != tt.want {
			t.Errorf("Mask(%v, %d) = %q, want %q", tt.cpus, tt.nbits, got, tt.want)
		}
	}
}

func TestSetOps(t *testing.T) {
	a := New(0, 1, 2, 70)
	b := New(2, 3)
	if got := a.Union(b).String(); got != "0-3,70" {
		t.Errorf("Union = %q", got)
	}
	if got := a.Intersect(b).String(); got != "2" {
		t.Errorf("Intersect = %q", got)
	}
	if got := a.Difference(b).String(); got != "0-1,70" {
		t.Errorf("Difference = %q", got)
	}
	if !a.Difference(New(70)).Equal(New(0, 1, 2)) {
		t.Error("Equal must ignore high zero words")
	}
	if a.Equal(b) {
		t.Error("different sets compare equal")
	}
	if got := a.Next(2); got != 70 {
		t.Errorf("Next(2) = %d, want 70", got)
	}
	if got := a.Next(70); got != -1 {
		t.Errorf("Next(70) = %d, want -1", got)
	}
	if got := (Set{}).First(); got != -1 {
		t.Errorf("empty First = %d", got)
	}
	if got := a.With(5).Without(0).String(); got != "1-2,5,70" {
		t.Errorf("With/Without = %q", got)
	}
	if a.String() != "0-2,70" {
		t.Error("With/Without changed the receiver")
	}
	if !New(1, 2).IsSubsetOf(a) || b.IsSubsetOf(a) {
		t.Error("IsSubsetOf wrong")
	}
	data, err := json.Marshal(Set{})
	if err != nil || string(data) != "[]" {
		t.Errorf("empty set JSON = %s, %v", data, err)
	}
	var back Set
	data, _ = json.Marshal(a)
	if err := json.Unmarshal(data, &back); err != nil || !back.Equal(a) {
		t.Errorf("JSON round trip %s -> %v, %v", data, back, err)
	}
}

// FuzzCPUList checks that any accepted cpulist formats and parses back to
// the same set, in both syntaxes, and that nothing panics.
func FuzzCPUList(f *testing.F) {
	for _, seed := range []string{"0-3,8,10-11", "", "0", "63-64", "0-7:2/4", "1,,2", "5-3", "65535"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseList(in)
		if err != nil {
			return
		}
		back, err := ParseList(s.String())
		if err != nil || !back.Equal(s) {
			t.Fatalf("cpulist %q -> %q -> %v, %v", in, s.String(), back, err)
		}
		fromMask, err := ParseMask(s.Mask(1))
		if err != nil || !fromMask.Equal(s) {
			t.Fatalf("mask of %q = %q -> %v, %v", in, s.Mask(1), fromMask, err)
		}
	})
}

func FuzzCPUMask(f *testing.F) {
	for _, seed := range []string{"f", "ff,00000001", "0x4", "", "g", "00000000,00000000"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseMask(in)
		if err != nil {
			return
		}
		back, err := ParseList(s.String())
		if err != nil || !back.Equal(s) {
			t.Fatalf("mask %q -> %q -> %v, %v", in, s.String(), back, err)
		}
	})
}
