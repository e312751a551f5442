package affinity

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/sysfs"
)

// Configuration keys, read from the environment (systemd's EnvironmentFile)
// and from the same file again on SIGHUP.
const (
	EnvBannedCPUsFlag  = "IRQSHIFT_BANNED_CPUS"
	EnvBannedIRQs      = "IRQSHIFT_BANNED_IRQS"
	EnvIncludeIsolated = "IRQSHIFT_INCLUDE_ISOLATED"
	EnvIncludePinned   = "IRQSHIFT_INCLUDE_PINNED"
)

// ParseIRQList parses comma-separated IRQ numbers.
func ParseIRQList(text string) (map[int]bool, error) {
	out := map[int]bool{}
	for field := range strings.SplitSeq(text, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		n, err := strconv.Atoi(field)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s is not an IRQ number", sysfs.Quote(field))
		}
		out[n] = true
	}
	return out, nil
}

// ReadEnvFile reads a systemd EnvironmentFile: KEY=VALUE lines, blank lines
// and # comments, values optionally in single or double quotes.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	scan := bufio.NewScanner(f)
	for n := 1; scan.Scan(); n++ {
		line := strings.TrimSpace(scan.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !ok || key == "" {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %s", path, n, sysfs.Quote(line))
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[key] = value
	}
	return out, scan.Err()
}
