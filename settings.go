package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ops"
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
	settingBannedCPUs      = setting{"banned-cpus", affinity.EnvBannedCPUsFlag}
	settingBannedCPUList   = setting{"", affinity.EnvBannedCPUList}
	settingBannedCPUMask   = setting{"", affinity.EnvBannedCPUs}
	settingBannedIRQs      = setting{"banned-irqs", affinity.EnvBannedIRQs}
	settingIncludeIsolated = setting{"include-isolated", affinity.EnvIncludeIsolated}
	settingIncludePinned   = setting{"include-pinned", affinity.EnvIncludePinned}
	settingState           = setting{"state", "IRQSHIFT_STATE"}
	settingNUMA            = setting{"numa", "IRQSHIFT_NUMA"}
	settingCheckInterval   = setting{"check-interval", "IRQSHIFT_CHECK_INTERVAL"}
	settingMetricsAddress  = setting{"metrics-address", "IRQSHIFT_METRICS_ADDRESS"}
	settingNoVerify        = setting{"no-verify", "IRQSHIFT_NO_VERIFY"}
)

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
	// atStart is the file as it was when irqshift started. systemd's
	// EnvironmentFile= puts the same file into the environment once, at
	// start: a variable whose value is the one the file had then came from
	// the file, and a reload must let the file's new value win over it.
	atStart map[string]string
}

// newResolver reads the config file (--config, or the default one on the
// live system).
func newResolver(c *cli.Context, getenv func(string) string, live bool) (*resolver, error) {
	r := &resolver{c: c, getenv: getenv}
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
	values, err := affinity.ReadEnvFile(r.path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	r.file = values
	return nil
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

// settings resolves the options every planning command uses.
func (r *resolver) settings() (ops.Settings, error) {
	var out ops.Settings
	cpus, err := r.cpuList(settingBannedCPUs, sysfs.ParseCPUList)
	if err != nil {
		return out, err
	}
	list, err := r.cpuList(settingBannedCPUList, sysfs.ParseCPUList)
	if err != nil {
		return out, err
	}
	mask, err := r.cpuList(settingBannedCPUMask, sysfs.ParseCPUMask)
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
		return out, usageError("%s: %s is not local or ignore", originName(origin, settingNUMA), sysfs.Quote(text))
	}
	return out, nil
}

func (r *resolver) cpuList(s setting, parse func(string) (sysfs.CPUSet, error)) (sysfs.CPUSet, error) {
	text, origin := r.get(s)
	if strings.TrimSpace(text) == "" {
		return sysfs.CPUSet{}, nil
	}
	set, err := parse(strings.TrimSpace(text))
	if err != nil {
		return sysfs.CPUSet{}, usageError("%s: %v", originName(origin, s), err)
	}
	return set, nil
}

func (r *resolver) bool(s setting) (bool, error) {
	text, origin := r.get(s)
	if strings.TrimSpace(text) == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(strings.TrimSpace(text))
	if err != nil {
		return false, usageError("%s: %s is not true or false", originName(origin, s), sysfs.Quote(text))
	}
	return v, nil
}

func (r *resolver) duration(s setting) (time.Duration, error) {
	text, origin := r.get(s)
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || d < 0 {
		return 0, usageError("%s: %s is not a duration such as 30s", originName(origin, s), sysfs.Quote(text))
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
