package sysfs

import (
	"errors"
	"testing"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// TestParseCPUSetErrFileParse: the CPU set and its parsers are tested in
// internal/cpuset; here, that sysfs's parsers give what cpuset does, with
// every error wrapping ErrFileParse and reading "cannot parse kernel
// file: " and cpuset's message.
func TestParseCPUSetErrFileParse(t *testing.T) {
	for _, tt := range []struct {
		parse func(string) (CPUSet, error)
		inner func(string) (cpuset.Set, error)
		name  string
		good  []string
		bad   []string
	}{
		{ParseCPUList, cpuset.ParseList, "ParseCPUList",
			[]string{"", "0-3\n", "0-7:2/4", "63-65"},
			[]string{"5-3", "a", "1,,2", "-1", "+1", "0-99999999", "65536", "0-7:0/4", "0-7:5/4"}},
		{ParseCPUMask, cpuset.ParseMask, "ParseCPUMask",
			[]string{"f\n", "ff,00000001", "0x4", "00000000,00000000"},
			[]string{"", "g", "123456789", "f,,f"}},
	} {
		for _, in := range tt.good {
			got, err := tt.parse(in)
			want, _ := tt.inner(in)
			if err != nil || !got.Equal(want) {
				t.Errorf("%s(%q) = %v, %v; want %v", tt.name, in, got, err, want)
			}
		}
		for _, in := range tt.bad {
			_, err := tt.parse(in)
			if !errors.Is(err, ErrFileParse) {
				t.Errorf("%s(%q) error = %v, want ErrFileParse", tt.name, in, err)
				continue
			}
			_, inner := tt.inner(in)
			if want := ErrFileParse.Error() + ": " + inner.Error(); err.Error() != want {
				t.Errorf("%s(%q) error = %q, want %q", tt.name, in, err, want)
			}
		}
	}
	if NewCPUSet(1, 70).String() != cpuset.New(1, 70).String() || MaxCPUs != cpuset.MaxCPUs {
		t.Error("NewCPUSet or MaxCPUs differs from cpuset's")
	}
}
