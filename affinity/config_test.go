package affinity

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadEnvFileAndParseConfig(t *testing.T) {
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
	c, err := ParseConfig(func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Banned.User.String() != "3,5" || !c.Banned.IncludeIsolated || !c.Policy.BannedIRQs[22] || len(c.Policy.BannedIRQs) != 2 || c.IncludePinned {
		t.Errorf("config %+v", c)
	}
	for _, bad := range []map[string]string{
		{EnvBannedCPUsFlag: "x"}, {EnvBannedIRQs: "a"}, {EnvIncludeIsolated: "maybe"}, {EnvIncludePinned: "2"},
	} {
		if _, err := ParseConfig(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("ParseConfig(%v) accepted", bad)
		}
	}
	if err := os.WriteFile(path, []byte("just words\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(path); err == nil {
		t.Error("a line without = accepted")
	}
}
