package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/daemon"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/sysfs"
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

// irqbalanceError says why irqshift will not run beside irqbalance.
func irqbalanceError(pids []int) error {
	return fmt.Errorf("irqbalance is running (PID %v): it rewrites every IRQ's affinity on each pass, "+
		"which would undo irqshift's moves and the pins it restores; stop it "+
		"(systemctl disable --now irqbalance) or pass --coexist", pids)
}

func cmdWatch(c *cli.Context, o *options) error {
	if pids, err := o.fs.ProcessesNamed("irqbalance"); err == nil && len(pids) > 0 && !c.Bool("coexist") {
		return irqbalanceError(pids)
	}
	// SIGHUP re-reads the config file and the environment; what a flag
	// set stays (the resolver asks the flags first).
	reload := func(e *affinity.Engine) error {
		if err := o.resolver.reread(); err != nil {
			return err
		}
		settings, err := o.resolver.settings()
		if err != nil {
			return err
		}
		e.Configure(settings.Banned, settings.Policy, settings.IncludePinned)
		e.SetNUMA(settings.NUMA)
		o.logger.Info("configuration reloaded", "banned_cpus", settings.Banned.User.String(),
			"banned_irqs", len(settings.Policy.BannedIRQs), "include_isolated", settings.Banned.IncludeIsolated)
		return nil
	}
	checkInterval, err := o.resolver.duration(settingCheckInterval)
	if err != nil {
		return err
	}
	noVerify, err := o.resolver.bool(settingNoVerify)
	if err != nil {
		return err
	}
	if o.env.Store != nil {
		// Refuse a second daemon before touching anything.
		if pid, running := o.env.Store.DaemonRunning(); running {
			return &affinity.DaemonRunningError{Path: o.env.Store.Path(), PID: pid}
		}
	}
	if err := o.env.CheckAccess(); err != nil {
		return err
	}
	settings := o.env.Settings
	engine := affinity.NewEngine(affinity.EngineConfig{FS: o.fs, Banned: settings.Banned, Policy: settings.Policy,
		IncludePinned: settings.IncludePinned, NUMA: settings.NUMA, Logger: o.logger})
	o.logger.Info("configuration", "banned_cpus", settings.Banned.User.String(), "include_isolated", settings.Banned.IncludeIsolated,
		"config", o.resolver.path)

	var metrics *daemon.Metrics
	if addr, _ := o.resolver.get(settingMetricsAddress); addr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = daemon.NewMetrics(reg)
		stop, err := serveMetrics(c.Context, addr, reg, o)
		if err != nil {
			return err
		}
		defer stop()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reloads <- struct{}{}:
			default:
			}
		}
	}()

	var watchdog time.Duration
	if interval, err := sddaemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		watchdog = interval / 2
	}
	d := &daemon.Daemon{
		Engine: engine,
		Source: &hotplug.Watcher{
			CheckInterval: checkInterval,
			OnlinePath:    o.fs.SysPath(sysfs.CPUDir, "online"),
			Logger:        o.logger,
		},
		Store:              o.env.Store,
		NoInitialRebalance: c.Bool("no-initial-rebalance"),
		Logger:             o.logger,
		Metrics:            metrics,
		Notify: func(state string) {
			if _, err := sddaemon.SdNotify(false, state); err != nil {
				o.logger.Warn("sd_notify failed", "state", state, "err", err)
			}
		},
		WatchdogInterval: watchdog,
		CheckInterval:    checkInterval,
		Bans: &daemon.Bans{FS: o.fs, Files: c.StringSlice("ban-file"), Partitions: !c.Bool("no-partitions"),
			DefaultAffinity: c.Bool("ban-default-affinity"), Logger: o.logger},
		Reload:       reloads,
		ReloadConfig: reload,
	}
	if !noVerify {
		sampler := newSampler(o.fs, o.stderr)
		sampler.Notice = func(reason string) { o.logger.Warn("move confirmation is coarser", "reason", reason) }
		confirmer := &daemon.Confirmer{Sampler: sampler, Window: c.Duration("verify-window"), Metrics: metrics, Logger: o.logger}
		d.AfterApply = confirmer.AfterApply
	}
	return d.Run(c.Context)
}

// serveMetrics serves /metrics on addr until the returned stop is called.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, o *options) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.logger.Error("metrics server stopped", "err", err)
		}
	}()
	o.logger.Info("serving metrics", "address", ln.Addr().String())
	return func() {
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}, nil
}
