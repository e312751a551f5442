package affinity

import (
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

func TestParseBanFile(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"crio mask", "IRQBALANCE_BANNED_CPUS=0000000c\n", "2-3"},
		{"crio mask, quoted, with other keys", "# comment\nIRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPUS=\"f0\"\nIRQBALANCE_ARGS=\"--policyscript=/x\"\n", "4-7"},
		{"mask longer than 32 bits", "IRQBALANCE_BANNED_CPUS=00000001,00000000,80000000\n", "31,64"},
		{"192 CPUs, last word", "IRQBALANCE_BANNED_CPUS=ffffffff,00000000,00000000,00000000,00000000,00000000\n", "160-191"},
		{"0x prefix", "IRQBALANCE_BANNED_CPUS=0x3\n", "0-1"},
		{"tuned cpulist", "IRQBALANCE_BANNED_CPULIST=2-3,6\n", "2-3,6"},
		{"both: the union", "IRQBALANCE_BANNED_CPUS=1\nIRQBALANCE_BANNED_CPULIST=3\n", "0,3"},
		{"empty mask bans nothing", "IRQBALANCE_BANNED_CPUS=\n", ""},
		{"empty quoted mask", "IRQBALANCE_BANNED_CPUS=\"\"\n", ""},
		{"zero mask", "IRQBALANCE_BANNED_CPUS=0\n", ""},
		{"tuned's none", "IRQBALANCE_BANNED_CPULIST=-\n", ""},
		{"empty cpulist", "IRQBALANCE_BANNED_CPULIST=\n", ""},
		{"empty file", "", ""},
		{"export", "export IRQBALANCE_BANNED_CPULIST=1\n", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBanFile("irqbalance", []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("banned %q, want %q", got.String(), tc.want)
			}
		})
	}
	for _, bad := range []string{"IRQBALANCE_BANNED_CPUS=xyz\n", "IRQBALANCE_BANNED_CPUS=123456789\n", "IRQBALANCE_BANNED_CPULIST=3-1\n", "not a line\n"} {
		if _, err := ParseBanFile("irqbalance", []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		} else if !strings.Contains(err.Error(), "irqbalance") {
			t.Errorf("%q: %v does not name the file", bad, err)
		}
	}
}

func FuzzParseBanFile(f *testing.F) {
	f.Add([]byte("IRQBALANCE_BANNED_CPUS=ffffffff,00000000\nIRQBALANCE_BANNED_CPULIST=1-3\n"))
	f.Add([]byte("IRQBALANCE_BANNED_CPULIST=-\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseBanFile("f", data)
		if err == nil && set.Last() >= sysfs.MaxCPUs {
			t.Fatalf("CPU %d beyond MaxCPUs", set.Last())
		}
	})
}

func TestParseBannedCPUList(t *testing.T) {
	for text, want := range map[string]string{"": "", "  ": "", "-": "", " - ": "", "2-3,6": "2-3,6", " 1 ": "1"} {
		got, err := ParseBannedCPUList(text)
		if err != nil || got.String() != want {
			t.Errorf("ParseBannedCPUList(%q) = %q, %v; want %q", text, got.String(), err, want)
		}
	}
	for _, bad := range []string{"3-1", "--", "x"} {
		if _, err := ParseBannedCPUList(bad); err == nil {
			t.Errorf("ParseBannedCPUList(%q): no error", bad)
		}
	}
}

func TestParseBannedCPUMask(t *testing.T) {
	for text, want := range map[string]string{"": "", " ": "", "0": "", "0x0": "", "00000000,00000000": "", "c": "2-3", " 0x3 ": "0-1", "1,00000000": "32"} {
		got, err := ParseBannedCPUMask(text)
		if err != nil || got.String() != want {
			t.Errorf("ParseBannedCPUMask(%q) = %q, %v; want %q", text, got.String(), err, want)
		}
	}
	for _, bad := range []string{"zz", "-", "123456789"} {
		if _, err := ParseBannedCPUMask(bad); err == nil {
			t.Errorf("ParseBannedCPUMask(%q): no error", bad)
		}
	}
}
