package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/daemon"
	"github.com/irqshift/irqshift/hotplug"
)

func watchCommand(run cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "the daemon: settle now, then re-spread IRQs within milliseconds of every CPU hotplug and restore pins when CPUs return",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "check-interval", Value: hotplug.DefaultCheckInterval,
				Usage: "how often to settle from a full read of /proc and /sys as a safety net (lost uevents, IRQs of drivers loaded since, masks written by hand); 0 turns it off (IRQSHIFT_CHECK_INTERVAL)"},
			&cli.BoolFlag{Name: "no-initial-rebalance", Usage: "at start, learn the state but move nothing"},
			&cli.BoolFlag{Name: "coexist", Usage: "run even though irqbalance is running (they will undo each other's moves)"},
			&cli.StringFlag{Name: "metrics-address",
				Usage: "serve Prometheus metrics on this address, e.g. 127.0.0.1:9815 (off by default; IRQSHIFT_METRICS_ADDRESS)"},
			&cli.BoolFlag{Name: "no-verify", Usage: "do not confirm moves with eBPF after each settle (IRQSHIFT_NO_VERIFY)"},
			&cli.DurationFlag{Name: "verify-window", Value: 2 * time.Second, Usage: "how long to watch moved IRQs fire after a settle"},
			&cli.StringSliceFlag{Name: "ban-file", Usage: "follow an irqbalance-style file (IRQBALANCE_BANNED_CPUS hex mask, IRQBALANCE_BANNED_CPULIST), as CRI-O and tuned rewrite /etc/sysconfig/irqbalance: its CPUs are drained the moment it changes; it may not exist yet (repeatable)"},
			&cli.BoolFlag{Name: "ban-default-affinity", Usage: "also ban the CPUs missing from /proc/irq/default_smp_affinity, which CRI-O edits too"},
			&cli.BoolFlag{Name: "no-partitions", Usage: "do not follow isolated cgroup v2 cpuset partitions (followed by default: their CPUs are banned like isolcpus ones, unless --include-isolated)"},
		},
		Action: run,
	}
}

func cmdWatch(c *cli.Context, o *options) error {
	checkInterval, err := o.resolver.duration(settingCheckInterval)
	if err != nil {
		return err
	}
	noVerify, err := o.resolver.bool(settingNoVerify)
	if err != nil {
		return err
	}
	metricsAddress, _ := o.resolver.get(settingMetricsAddress)
	d, err := daemon.New(daemon.Config{
		FS:                 o.fs,
		Store:              o.env.Store,
		Settings:           o.env.Settings,
		Reload:             o.resolver.reload,
		CheckInterval:      checkInterval,
		NoInitialRebalance: c.Bool("no-initial-rebalance"),
		Coexist:            c.Bool("coexist"),
		MetricsAddress:     metricsAddress,
		Verify:             !noVerify,
		VerifyWindow:       c.Duration("verify-window"),
		BanFiles:           c.StringSlice("ban-file"),
		Partitions:         !c.Bool("no-partitions"),
		DefaultAffinity:    c.Bool("ban-default-affinity"),
		Logger:             o.logger,
		CheckAccess:        o.env.CheckAccess,
	})
	if err != nil {
		return err
	}
	return d.Run(c.Context)
}
