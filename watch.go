package main

import (
	"os"
	"runtime"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

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
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "observe: log each write it would make (\"would move\") and write nothing, no mask and no state; may run beside irqbalance or irqshift watch, and without root"},
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

// daemonMaxProcs caps GOMAXPROCS for `irqshift watch`. The Go runtime sizes itself by the CPUs
// it may use: per P a memory cache, a GC mark worker and a thread to run it, and every GC wakes
// a mark worker on each idle P. With the default (every CPU) the idle daemon's RSS grew from
// 16 MB at 4 vCPUs to 45 MB at 128, and at 256 vCPUs it used 31.7 s of CPU in 15 s that should
// have been idle (docs/BENCHMARKS.md, "Big machines"). The daemon is one loop: the only parallel
// work of a settle is the reads of /proc/irq/N beside the parse of /proc/interrupts, whose goals
// were measured on 2 cores; 4 keeps the parse and the reads on Ps of their own, with room for the
// eBPF confirmation and the metrics server beside them. The one-shot commands keep the default:
// they run once, and their one snapshot reads faster with more Ps.
const daemonMaxProcs = 4

// limitRuntime caps GOMAXPROCS at daemonMaxProcs unless the GOMAXPROCS environment variable sets
// it, and returns the value in force. main has normally set the variable already, by starting the
// daemon again with it (daemonReexec); this is the cap where that exec failed. Setting it also
// ends the runtime's check, every second it is awake, of the CPUs and the cgroup CPU limit it may
// use.
//
// It also turns transparent huge pages off for the daemon (PR_SET_THP_DISABLE). Where the kernel
// backs anonymous memory with them, as the test VM's 7.3 kernel does, the sparse heap the Go
// runtime leaves after a GC is collapsed into 2 MB pages again: in the 64-vCPU VM the idle daemon
// had 10 MB of AnonHugePages for 3 MB of heap in use (Go issue 64332). A kernel without the
// option (before 3.15) refuses it, and the daemon runs as before.
func limitRuntime() (procs int, thpErr error) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(min(runtime.GOMAXPROCS(0), daemonMaxProcs))
	}
	return runtime.GOMAXPROCS(0), unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0)
}

func cmdWatch(c *cli.Context, o *options) error {
	procs, thpErr := limitRuntime()
	o.logger.Info("runtime", "gomaxprocs", procs, "cpus", runtime.NumCPU(), "thp_disabled", thpErr == nil)
	if thpErr != nil {
		o.logger.Debug("runtime: transparent huge pages stay on", "err", thpErr)
	}
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
		DryRun:             o.dryRun,
		Coexist:            c.Bool("coexist"),
		MetricsAddress:     metricsAddress,
		Version:            version,
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
