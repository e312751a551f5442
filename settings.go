package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/envfile"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs"
)

// setting is one option, with its flag (if it has one) and its key in the
// environment and in the config file.
type setting struct {
	flag string
	key  string
}

// The settings. Every one is resolved by resolver.get, in one order:
// flag > environment > config file > default.
var (
	settingBannedCPUs      = newSetting("banned-cpus", "IRQSHIFT_BANNED_CPUS")
	settingBannedCPUList   = newSetting("", affinity.EnvBannedCPUList)
	settingBannedCPUMask   = newSetting("", affinity.EnvBannedCPUs)
	settingBannedIRQs      = newSetting("banned-irqs", "IRQSHIFT_BANNED_IRQS")
	settingIncludeIsolated = newSetting("include-isolated", "IRQSHIFT_INCLUDE_ISOLATED")
	settingIncludePinned   = newSetting("include-pinned", "IRQSHIFT_INCLUDE_PINNED")
	settingState           = newSetting("state", "IRQSHIFT_STATE")
	settingNUMA            = newSetting("numa", "IRQSHIFT_NUMA")
	settingBalance         = newSetting("balance", "IRQSHIFT_BALANCE")
	settingRules           = newSetting("rules", "IRQSHIFT_RULES")
	settingLearnPins       = newSetting("learn-pins", "IRQSHIFT_LEARN_PINS")
	settingSample          = newSetting("sample", "IRQSHIFT_SAMPLE")
	settingCheckInterval   = newSetting("check-interval", "IRQSHIFT_CHECK_INTERVAL")
	settingMetricsAddress  = newSetting("metrics-address", "IRQSHIFT_METRICS_ADDRESS")
	settingNoVerify        = newSetting("no-verify", "IRQSHIFT_NO_VERIFY")
)

// allSettings are every setting, in the order declared: each newSetting
// adds one, so a new setting is one line above and its use.
var allSettings []setting

func newSetting(flag, key string) setting {
	s := setting{flag, key}
	allSettings = append(allSettings, s)
	return s
}

// keyUnitArgs is a key only the unit reads: extra arguments of watch.
const keyUnitArgs = "IRQSHIFT_ARGS"

// DefaultConfigPath is read when it exists on the live system and no
// --config is given, so the CLI honours the bans the service is set up
// with. "--config none" reads no file.
const DefaultConfigPath = "/etc/default/irqshift"

// resolver resolves settings from the command line, the environment and
// the config file.
type resolver struct {
	c      *cli.Context
	getenv func(string) string
	// path is the config file, "" for none; file its values now.
	path string
	file map[string]string
	// unknown are the file's IRQSHIFT_ keys that no setting reads.
	unknown []unknownKey
	// logger receives the warnings about them.
	logger *slog.Logger
	// live is true on the live system (not a fixture tree): defaults that
	// name the system's own files apply only there.
	live bool
	// atStart is the file as it was when irqshift started. systemd's
	// EnvironmentFile= puts the same file into the environment once, at
	// start: a variable whose value is the one the file had then came from
	// the file, and a reload must let the file's new value win over it.
	atStart map[string]string
}

// newResolver reads the config file (--config, or the default one on the
// live system).
func newResolver(c *cli.Context, getenv func(string) string, live bool) (*resolver, error) {
	r := &resolver{c: c, getenv: getenv, live: live}
	path := c.String("config")
	switch {
	case path == "none":
		path = ""
	case path == "" && live:
		if info, err := os.Stat(DefaultConfigPath); err == nil && info.Mode().IsRegular() {
			path = DefaultConfigPath
		}
	}
	r.path = path
	if err := r.reread(); err != nil {
		return nil, err
	}
	r.atStart = r.file
	return r, nil
}

// reread reads the config file again (SIGHUP).
func (r *resolver) reread() error {
	if r.path == "" {
		return nil
	}
	info, err := os.Stat(r.path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("--config: %s is not a regular file", r.path)
	}
	values, err := envfile.Read(r.path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	r.file = values
	r.unknown = unknownKeys(values)
	return nil
}

// unknownKeys lists, with a suggestion, the IRQSHIFT_ keys of a config
// file that irqshift does not read: a misspelt key would otherwise be
// ignored without a word, and its setting silently not applied. Keys of
// other programs are none of irqshift's business.
func unknownKeys(values map[string]string) []unknownKey {
	known := map[string]bool{keyUnitArgs: true}
	for _, s := range allSettings {
		known[s.key] = true
	}
	var out []unknownKey
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !strings.HasPrefix(key, "IRQSHIFT_") || known[key] {
			continue
		}
		out = append(out, unknownKey{key: key, suggest: closest(key, slices.Collect(maps.Keys(known)))})
	}
	return out
}

// unknownKey is a config file key no setting reads, and the known key
// closest to it ("" when none is close).
type unknownKey struct{ key, suggest string }

// warnUnknownKeys logs the config file's unknown keys.
func (r *resolver) warnUnknownKeys(logger *slog.Logger) {
	if logger == nil {
		return
	}
	for _, u := range r.unknown {
		attrs := []any{"key", u.key, "config", r.path}
		if u.suggest != "" {
			attrs = append(attrs, "did_you_mean", u.suggest)
		}
		logger.Warn("unknown key in the config file, ignored", attrs...)
	}
}

// get returns the value of s and where it came from ("" when nowhere:
// the flag's default, or empty).
func (r *resolver) get(s setting) (value, origin string) {
	if s.flag != "" && r.c.IsSet(s.flag) {
		return fmt.Sprint(r.c.Value(s.flag)), "--" + s.flag
	}
	if v := r.getenv(s.key); v != "" {
		if start, ok := r.atStart[s.key]; !ok || start != v {
			return v, s.key
		}
	}
	if v, ok := r.file[s.key]; ok {
		return v, r.path + ": " + s.key
	}
	if s.flag != "" {
		if v := r.c.Value(s.flag); v != nil {
			return fmt.Sprint(v), ""
		}
	}
	return "", ""
}

// reload reads the config file and the environment again and resolves
// the settings anew (the daemon's SIGHUP); what a flag set stays, since
// the flags are asked first.
func (r *resolver) reload() (ops.Settings, error) {
	if err := r.reread(); err != nil {
		return ops.Settings{}, err
	}
	r.warnUnknownKeys(r.logger)
	return r.settings()
}

// settings resolves the options every planning command uses.
func (r *resolver) settings() (ops.Settings, error) {
	var out ops.Settings
	cpus, err := r.cpuList(settingBannedCPUs, sysfs.ParseCPUList, "a cpulist such as 2-3,8")
	if err != nil {
		return out, err
	}
	// The irqbalance variables are read as a ban file reads them: an empty
	// value, "-" and a mask of 0 ban nothing.
	list, err := r.cpuList(settingBannedCPUList, affinity.ParseBannedCPUList, "a cpulist such as 2-3,8, or - for none")
	if err != nil {
		return out, err
	}
	mask, err := r.cpuList(settingBannedCPUMask, affinity.ParseBannedCPUMask, "a hexadecimal CPU mask such as c or ffffffff,00000000")
	if err != nil {
		return out, err
	}
	out.Banned.User = cpus.Union(list).Union(mask)
	text, origin := r.get(settingBannedIRQs)
	if out.Policy.BannedIRQs, err = affinity.ParseIRQList(text); err != nil {
		return out, usageError("%s: %v", originName(origin, settingBannedIRQs), err)
	}
	if out.Banned.IncludeIsolated, err = r.bool(settingIncludeIsolated); err != nil {
		return out, err
	}
	if out.IncludePinned, err = r.bool(settingIncludePinned); err != nil {
		return out, err
	}
	switch text, origin := r.get(settingNUMA); strings.TrimSpace(text) {
	case "", "local":
		out.NUMA = true
	case "ignore":
	default:
		return out, usageError("%s: %s is not local or ignore", originName(origin, settingNUMA), quote.Quote(text))
	}
	if text, _ := r.get(settingLearnPins); strings.TrimSpace(text) != "" {
		learn, err := r.bool(settingLearnPins)
		if err != nil {
			return out, err
		}
		out.NoLearnPins = !learn
	}
	if out.RulesDir, out.Rules, err = r.rules(); err != nil {
		return out, err
	}
	out.Balance = affinity.BalanceLoad
	if text, origin := r.get(settingBalance); strings.TrimSpace(text) != "" {
		if out.Balance, err = affinity.ParseBalance(strings.TrimSpace(text)); err != nil {
			return out, usageError("%s: %s is not load or count", originName(origin, settingBalance), quote.Quote(text))
		}
	}
	return out, nil
}

// DefaultRulesDir is the rules directory on the live system when neither
// --rules nor IRQSHIFT_RULES names one.
const DefaultRulesDir = "/etc/irqshift/rules.d"

// rules resolves the rules directory (--rules; the default on the live
// system, none on a fixture tree; "none" turns rules off) and loads it. A
// directory that does not exist holds no rules; one that does not load is
// an error naming the file and line, so a command changes nothing.
func (r *resolver) rules() (string, *rules.Set, error) {
	dir, _ := r.get(settingRules)
	switch dir = strings.TrimSpace(dir); {
	case dir == "none":
		return "", nil, nil
	case dir == "" && r.live:
		dir = DefaultRulesDir
	case dir == "":
		return "", nil, nil
	}
	set, err := rules.Load(dir)
	if err != nil {
		return "", nil, err
	}
	return dir, set, nil
}

// cpuList resolves a setting of CPUs. A value that does not parse is the
// operator's mistake, not the kernel's: the error says what is wanted.
func (r *resolver) cpuList(s setting, parse func(string) (sysfs.CPUSet, error), want string) (sysfs.CPUSet, error) {
	text, origin := r.get(s)
	if strings.TrimSpace(text) == "" {
		return sysfs.CPUSet{}, nil
	}
	set, err := parse(strings.TrimSpace(text))
	if err != nil {
		return sysfs.CPUSet{}, usageError("%s: %s is not %s%s", originName(origin, s), quote.Quote(text), want, hexMaskHint(s, text))
	}
	return set, nil
}

// hexMaskHint answers a hexadecimal mask given where a cpulist is wanted
// with the cpulist it means and the key that takes masks.
func hexMaskHint(s setting, text string) string {
	meant, ok := maskAsCPUList(text)
	if s == settingBannedCPUMask || !ok {
		return ""
	}
	return fmt.Sprintf(" (a hexadecimal mask? as a cpulist %s is %s; %s takes masks)", quote.Quote(text), meant, settingBannedCPUMask.key)
}

// maskAsCPUList reads text, given where a cpulist is wanted, as the
// hexadecimal CPU mask it looks like ("0x4", "f", "ff,00000000"), and
// returns the cpulist it means ("no CPU" for 0); false when it is no such
// mask.
func maskAsCPUList(text string) (string, bool) {
	hex := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(text), "0x"), "0X")
	mask, err := affinity.ParseBannedCPUMask(hex)
	if err != nil || !strings.ContainsAny(strings.ToLower(text), "xabcdef") {
		return "", false
	}
	if mask.IsEmpty() {
		return "no CPU", true
	}
	return mask.String(), true
}

func (r *resolver) bool(s setting) (bool, error) {
	text, origin := r.get(s)
	if strings.TrimSpace(text) == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(strings.TrimSpace(text))
	if err != nil {
		return false, usageError("%s: %s is not true or false", originName(origin, s), quote.Quote(text))
	}
	return v, nil
}

func (r *resolver) duration(s setting) (time.Duration, error) {
	text, origin := r.get(s)
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || d < 0 {
		return 0, usageError("%s: %s is not a duration such as 30s", originName(origin, s), quote.Quote(text))
	}
	return d, nil
}

// originName names where a bad value came from, for its error.
func originName(origin string, s setting) string {
	if origin != "" {
		return origin
	}
	if s.flag != "" {
		return "--" + s.flag
	}
	return s.key
}
