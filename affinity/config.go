package affinity

import (
	"bufio"
	"bytes"
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseEnvFile(path, data)
}

// ParseEnvFile parses the content of an EnvironmentFile named name (for
// errors), as ReadEnvFile does.
func ParseEnvFile(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	scan := bufio.NewScanner(bytes.NewReader(data))
	scan.Buffer(nil, 1<<20)
	for n := 1; scan.Scan(); n++ {
		line := strings.TrimSpace(scan.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !ok || key == "" {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %s", name, n, sysfs.Quote(line))
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[key] = value
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// ParseBanFile reads the CPUs an irqbalance environment file bans, as
// CRI-O (/etc/sysconfig/irqbalance) and tuned write it: the hex mask
// IRQBALANCE_BANNED_CPUS (32-bit words separated by commas, most
// significant first, "ffffffff,00000000"; an optional 0x) and the cpulist
// IRQBALANCE_BANNED_CPULIST, both if both are set. An empty value, a mask
// of 0 and the cpulist "-" (tuned's "none") ban nothing (irqbalance
// #358: an empty value must not ban every CPU). Other keys are ignored.
func ParseBanFile(name string, data []byte) (sysfs.CPUSet, error) {
	env, err := ParseEnvFile(name, data)
	if err != nil {
		return sysfs.CPUSet{}, err
	}
	var banned sysfs.CPUSet
	if text := strings.TrimSpace(env[EnvBannedCPUs]); text != "" {
		mask, err := sysfs.ParseCPUMask(text)
		if err != nil {
			return sysfs.CPUSet{}, fmt.Errorf("%s: %s: %w", name, EnvBannedCPUs, err)
		}
		banned = banned.Union(mask)
	}
	if text := strings.TrimSpace(env[EnvBannedCPUList]); text != "" && text != "-" {
		list, err := sysfs.ParseCPUList(text)
		if err != nil {
			return sysfs.CPUSet{}, fmt.Errorf("%s: %s: %w", name, EnvBannedCPUList, err)
		}
		banned = banned.Union(list)
	}
	return banned, nil
}
