package affinity

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Configuration keys, read from the environment (systemd's EnvironmentFile)
// and from the same file again on SIGHUP.
const (
	EnvBannedCPUsFlag  = "IRQSHIFT_BANNED_CPUS"
	EnvBannedIRQs      = "IRQSHIFT_BANNED_IRQS"
	EnvIncludeIsolated = "IRQSHIFT_INCLUDE_ISOLATED"
	EnvIncludePinned   = "IRQSHIFT_INCLUDE_PINNED"
)

// Config is what the daemon re-reads on SIGHUP.
type Config struct {
	Banned        BannedCPUs
	Policy        Policy
	IncludePinned bool
}

// ParseConfig builds a Config from lookup (os.Getenv, or a file's values
// over it).
func ParseConfig(lookup func(string) string) (Config, error) {
	var c Config
	var err error
	if c.Banned.User, err = ParseBannedCPUs(lookup(EnvBannedCPUsFlag), lookup); err != nil {
		return Config{}, err
	}
	if c.Policy.BannedIRQs, err = ParseIRQList(lookup(EnvBannedIRQs)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvBannedIRQs, err)
	}
	if c.Banned.IncludeIsolated, err = parseBool(lookup(EnvIncludeIsolated)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvIncludeIsolated, err)
	}
	if c.IncludePinned, err = parseBool(lookup(EnvIncludePinned)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvIncludePinned, err)
	}
	return c, nil
}

// Apply puts c into the engine.
func (c Config) Apply(e *Engine) {
	e.Banned = c.Banned
	e.Policy = c.Policy
	e.Planner.IncludePinned = c.IncludePinned
}

func parseBool(s string) (bool, error) {
	if strings.TrimSpace(s) == "" {
		return false, nil
	}
	return strconv.ParseBool(strings.TrimSpace(s))
}

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
			return nil, fmt.Errorf("%q is not an IRQ number", field)
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
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[key] = value
	}
	return out, scan.Err()
}
