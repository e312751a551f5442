package affinity

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "irqshift")
	content := "# irqshift options\n\nIRQSHIFT_BANNED_CPUS=3\nIRQBALANCE_BANNED_CPULIST=\"5\"\nIRQSHIFT_BANNED_IRQS='13, 22'\nexport IRQSHIFT_INCLUDE_ISOLATED=true\nIRQSHIFT_ARGS=--metrics-address 127.0.0.1:9815\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	vals, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if vals["IRQSHIFT_ARGS"] != "--metrics-address 127.0.0.1:9815" || vals["IRQSHIFT_BANNED_IRQS"] != "13, 22" {
		t.Errorf("values %v", vals)
	}
	if err := os.WriteFile(path, []byte("just words\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(path); err == nil {
		t.Error("a line without = accepted")
	}
}
