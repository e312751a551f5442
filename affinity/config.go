package affinity

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/internal/regfile"
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

// MaxEnvFileSize bounds what ReadEnvFile reads. The files it reads (the
// --config file, irqbalance's /etc/sysconfig/irqbalance) are a few lines;
// the bound keeps a mistaken path from growing the process.
const MaxEnvFileSize = 1 << 20

// ReadEnvFile reads a systemd EnvironmentFile: KEY=VALUE lines, blank lines
// and # comments, values optionally in single or double quotes. It is read
// as regfile.Read does, up to MaxEnvFileSize: a FIFO or a device given
// as the file must neither hang the command nor grow it.
func ReadEnvFile(path string) (map[string]string, error) {
	data, err := regfile.Read(path, MaxEnvFileSize)
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
// of 0 and the cpulist "-" (tuned's "none") ban nothing: a file that
// lifts its bans must not ban every CPU. Other keys are ignored.
func ParseBanFile(name string, data []byte) (sysfs.CPUSet, error) {
	env, err := ParseEnvFile(name, data)
	if err != nil {
		return sysfs.CPUSet{}, err
	}
	mask, err := ParseBannedCPUMask(env[EnvBannedCPUs])
	if err != nil {
		return sysfs.CPUSet{}, fmt.Errorf("%s: %s: %w", name, EnvBannedCPUs, err)
	}
	list, err := ParseBannedCPUList(env[EnvBannedCPUList])
	if err != nil {
		return sysfs.CPUSet{}, fmt.Errorf("%s: %s: %w", name, EnvBannedCPUList, err)
	}
	return mask.Union(list), nil
}

// ParseBannedCPUList parses a value of IRQBALANCE_BANNED_CPULIST, from a
// ban file or the environment: a cpulist ("2-3,6"), where an empty value
// and "-" (what tuned writes for none) ban nothing.
func ParseBannedCPUList(text string) (sysfs.CPUSet, error) {
	text = strings.TrimSpace(text)
	if text == "" || text == "-" {
		return sysfs.CPUSet{}, nil
	}
	return sysfs.ParseCPUList(text)
}

// ParseBannedCPUMask parses a value of IRQBALANCE_BANNED_CPUS, from a ban
// file or the environment: a hex mask, 32-bit words separated by commas,
// most significant first, with an optional 0x. An empty value bans
// nothing, as a mask of 0 does.
func ParseBannedCPUMask(text string) (sysfs.CPUSet, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return sysfs.CPUSet{}, nil
	}
	return sysfs.ParseCPUMask(text)
}
