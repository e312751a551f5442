package affinity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/internal/regfile"
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

// makeFIFO makes a FIFO at path. A test that opens it may block on broken
// code: unblock, at cleanup, opens its other end so that such an open
// returns and the test's goroutine ends.
func makeFIFO(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

// within runs read and fails the test when it does not return in 2 s: a
// read of a FIFO without a writer blocks for ever, and one of /dev/zero
// never ends.
func within(t *testing.T, what string, read func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		t.Fatalf("%s did not return within 2 s", what)
		return nil
	}
}

// TestReadEnvFileRefusesNonRegular: a FIFO or a device given as --config
// neither hangs nor grows the process, and a file larger than
// MaxEnvFileSize is refused.
func TestReadEnvFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	makeFIFO(t, fifo)
	for _, path := range []string{fifo, "/dev/zero", dir} {
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		if err := within(t, path, func() error { _, err := ReadEnvFile(path); return err }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadEnvFile(%s): %v, want not a regular file", path, err)
		}
	}
	large := filepath.Join(dir, "large")
	if err := os.WriteFile(large, bytes.Repeat([]byte("# a comment line\n"), MaxEnvFileSize/16), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(large); !errors.Is(err, regfile.ErrTooLarge) {
		t.Errorf("a file over MaxEnvFileSize: %v, want regfile.ErrTooLarge", err)
	}
}
