package affinity

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/irqshift/irqshift/internal/envfile"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/sysfs"
)

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
			return nil, fmt.Errorf("%s is not an IRQ number", quote.Quote(field))
		}
		out[n] = true
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
	env, err := envfile.Parse(name, data)
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
