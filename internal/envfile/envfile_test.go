package envfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/internal/fifotest"
	"github.com/irqshift/irqshift/internal/regfile"
)

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "irqshift")
	content := "# irqshift options\n\nIRQSHIFT_BANNED_CPUS=3\nIRQBALANCE_BANNED_CPULIST=\"5\"\nIRQSHIFT_BANNED_IRQS='13, 22'\nexport IRQSHIFT_INCLUDE_ISOLATED=true\nIRQSHIFT_ARGS=--metrics-address 127.0.0.1:9815\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	vals, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if vals["IRQSHIFT_ARGS"] != "--metrics-address 127.0.0.1:9815" || vals["IRQSHIFT_BANNED_IRQS"] != "13, 22" {
		t.Errorf("values %v", vals)
	}
	if err := os.WriteFile(path, []byte("just words\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("a line without = accepted")
	}
}

// TestReadRefusesNonRegular: a FIFO or a device given as --config
// neither hangs nor grows the process, and a file larger than
// MaxSize is refused.
func TestReadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	fifotest.Make(t, fifo)
	for _, path := range []string{fifo, "/dev/zero", dir} {
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		if err := fifotest.WithinErr(t, path, func() error { _, err := Read(path); return err }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Read(%s): %v, want not a regular file", path, err)
		}
	}
	large := filepath.Join(dir, "large")
	if err := os.WriteFile(large, bytes.Repeat([]byte("# a comment line\n"), MaxSize/16), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(large); !errors.Is(err, regfile.ErrTooLarge) {
		t.Errorf("a file over MaxSize: %v, want regfile.ErrTooLarge", err)
	}
}
