package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Config is what `irqshift watch` is built from: the operator's resolved
// settings and the daemon's own flags. New builds everything else.
type Config struct {
	FS sysfs.FS
	// Store is the state file shared with the CLI; nil keeps the state in
	// memory only.
	Store    *state.Store
	Settings affinity.Settings
	// Reload resolves the settings again on SIGHUP (the config file and
	// the environment; what a flag set stays); nil keeps them.
	Reload func() (affinity.Settings, error)
	// CheckInterval is how often to settle from a full snapshot when
	// nothing happened; 0 turns it off.
	CheckInterval      time.Duration
	NoInitialRebalance bool
	// Coexist runs beside irqbalance, which otherwise is refused.
	Coexist bool
	// MetricsAddress serves Prometheus metrics there; "" serves none.
	MetricsAddress string
	// Version is the version irqshift was built as (main's version): the
	// version label of irqshift_build_info.
	Version string
	// Verify confirms, over VerifyWindow after each settle that moved
	// IRQs, that they fire on their new CPUs (eBPF, else /proc/interrupts).
	Verify       bool
	VerifyWindow time.Duration
	// BanFiles, Partitions and DefaultAffinity are the ban sources
	// followed while running (Bans).
	BanFiles        []string
	Partitions      bool
	DefaultAffinity bool
	Logger          *slog.Logger
	// DryRun observes and writes nothing (Daemon.DryRun): it may run
	// beside irqbalance or another daemon, and without root.
	DryRun bool
	// CheckAccess tells whether this process may write the kernel's
	// files; nil asks FS.
	CheckAccess func() error
}

// New refuses what must not run, before anything is read or written:
// irqbalance running (the two would undo each other's moves; unless
// Coexist), another daemon on the same state, a process that may not write
// the kernel's files. (A ban file that is not a regular file is refused
// by Run, first thing, for every daemon.) Then it builds the daemon: its engine, event source,
// ban sources, metrics, service manager notifications and the eBPF
// confirmation. Run runs it.
func New(cfg Config) (*Daemon, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pids, err := cfg.FS.ProcessesNamed("irqbalance"); err == nil && len(pids) > 0 && !cfg.Coexist && !cfg.DryRun {
		return nil, fmt.Errorf("irqbalance is running (PID %v): it rewrites every IRQ's affinity on each pass, "+
			"which would undo irqshift's moves and the pins it restores; stop it "+
			"(systemctl disable --now irqbalance) or pass --coexist", pids)
	}
	if cfg.Store != nil && !cfg.DryRun {
		if pid, running := cfg.Store.DaemonRunning(); running {
			return nil, &state.DaemonRunningError{Path: cfg.Store.Path(), PID: pid}
		}
	}
	check := cfg.CheckAccess
	if check == nil {
		check = cfg.FS.CheckWriteAccess
	}
	if err := check(); err != nil && !cfg.DryRun {
		return nil, err
	}
	quiet := &quietRelease{after: max(quietAfter, cfg.VerifyWindow+time.Second), log: log}
	d := &Daemon{
		Engine: affinity.NewEngine(affinity.EngineConfig{FS: cfg.FS, Logger: cfg.Logger}.With(cfg.Settings)),
		Source: &hotplug.Watcher{
			CheckInterval: cfg.CheckInterval,
			OnlinePath:    cfg.FS.SysPath(sysfs.CPUDir, "online"),
			Logger:        cfg.Logger,
			OnEvent:       quiet.hold,
		},
		Store:              cfg.Store,
		NoInitialRebalance: cfg.NoInitialRebalance,
		DryRun:             cfg.DryRun,
		Logger:             cfg.Logger,
		CheckInterval:      cfg.CheckInterval,
		IRQPollInterval:    DefaultIRQPollInterval,
		Bans: &Bans{FS: cfg.FS, Files: cfg.BanFiles, Partitions: cfg.Partitions,
			DefaultAffinity: cfg.DefaultAffinity, Logger: cfg.Logger},
		RulesDir:       cfg.Settings.RulesDir,
		ForeignWriters: DefaultForeignWriters,
		Notify: func(st string) {
			if _, err := sddaemon.SdNotify(false, st); err != nil {
				log.Warn("sd_notify failed", "state", st, "err", err)
			}
		},
		Version:        cfg.Version,
		reloadOnSIGHUP: true,
		reloadSettings: cfg.Reload,
	}
	if interval, err := sddaemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		// Half the interval, as sd_watchdog_enabled(3) advises.
		d.WatchdogInterval = interval / 2
	}
	if cfg.MetricsAddress != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		d.Metrics = NewMetrics(reg)
		d.Metrics.SetVersion(cfg.Version)
		d.metricsAddress, d.registry = cfg.MetricsAddress, reg
	}
	d.Engine.SetDryRun(cfg.DryRun)
	if cfg.Verify && !cfg.DryRun {
		sampler := ops.NewSampler(cfg.FS, func(reason string) { log.Warn("move confirmation is coarser", "reason", reason) })
		confirmer := &Confirmer{Sampler: sampler, Window: cfg.VerifyWindow, Metrics: d.Metrics, Logger: log}
		d.AfterApply = confirmer.AfterApply
	}
	d.OnSettle = func(Settle) { quiet.settled() }
	log.Info("configuration", "banned_cpus", cfg.Settings.Banned.User.String(),
		"include_isolated", cfg.Settings.Banned.IncludeIsolated, "rules_dir", cfg.Settings.RulesDir, "rules", cfg.Settings.Rules.Len())
	return d, nil
}

// DefaultIRQPollInterval is how often the daemon looks for IRQs allocated
// or freed (Daemon.IRQPollInterval): a stat of /proc/irq a second, so that
// a driver's IRQs requested when its device is opened (a NIC brought up,
// which sends no uevent) reach their rule's CPUs within about a second.
const DefaultIRQPollInterval = time.Second

// MetricsPath is the one path the metrics server serves; the scrape
// configuration and the DaemonSet's probes in deploy/ name it.
const MetricsPath = "/metrics"

// serveMetrics starts the metrics server of a daemon built by New; stop
// ends it.
func (d *Daemon) serveMetrics(ctx context.Context) (stop func(), err error) {
	if d.metricsAddress == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, metricsHandler(d.registry))
	_, stop, err = serveMetricsOn(ctx, metricsServerConfig{Address: d.metricsAddress, Logger: d.Logger}, mux)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address: %w", err)
	}
	return stop, nil
}

// sighup turns SIGHUP into reloads, until stop.
func sighup() (reloads <-chan struct{}, stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, func() {
		signal.Stop(hup)
		close(done)
	}
}

// reload applies the settings Config.Reload resolves anew.
func (d *Daemon) reload() error {
	if d.reloadSettings == nil {
		return nil
	}
	settings, err := d.reloadSettings()
	if err != nil {
		return err
	}
	d.Engine.Configure(settings)
	if settings.RulesDir != d.RulesDir {
		d.log().Info("following another rules directory", "was", d.RulesDir, "now", settings.RulesDir)
		d.RulesDir = settings.RulesDir
	}
	d.log().Info("configuration reloaded", "banned_cpus", settings.Banned.User.String(),
		"banned_irqs", len(settings.Policy.BannedIRQs), "include_isolated", settings.Banned.IncludeIsolated)
	return nil
}

// quietAfter is how long the daemon must have had nothing to settle before
// it gives memory back (quietRelease): longer than the gaps in a burst of
// hotplug events, so that a burst keeps its buffers and no release runs
// between its settles, and shorter than the default check interval (30 s),
// so that a daemon settling only for that check still gives back. The
// release is cheap on hardware (a GC of a few MB, tens of madvise calls),
// but under the 128-vCPU VM's single-threaded TCG it took 5.5 s where the
// GC alone took 0.2 s (each madvise flushes the TLBs of every CPU), and a
// settle that needs a GC meanwhile waits.
const quietAfter = 10 * time.Second

// quietRelease gives the memory of the last settles back to the kernel
// once the daemon has been quiet for after (and its eBPF confirmation,
// which runs for the verify window, is over): the /proc/interrupts read
// buffer (sysfs.ReleaseReadBuffers) and the heap the Go runtime keeps for
// the next allocations, returned by one forced GC (debug.FreeOSMemory).
// Without it an idle daemon keeps the heap of its busiest moment until
// the runtime's scavenger returns it, down to twice the live heap at best:
// on 256 CPUs × 4096 IRQs the read buffer alone is 12 MB. It costs one GC
// per quiet period, after the work, and no wake-up while idle: the timer
// is armed by a settle only. An event from the Source holds it back (a
// settle follows), so that no release runs beside the settle of a CPU
// event, however long that settle takes (17 s in the 256-vCPU VM), and
// one release at a time runs.
type quietRelease struct {
	after   time.Duration
	log     *slog.Logger
	mu      sync.Mutex
	timer   *time.Timer
	running bool
}

// settled (re)arms the release: it is the daemon's OnSettle.
func (q *quietRelease) settled() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer == nil {
		q.timer = time.AfterFunc(q.after, q.release)
		return
	}
	q.timer.Reset(q.after)
}

// hold stops the release until the next settle: the Source's OnEvent.
func (q *quietRelease) hold() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
	}
}

func (q *quietRelease) release() {
	q.mu.Lock()
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.running = false
		q.mu.Unlock()
	}()
	sysfs.ReleaseReadBuffers()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	q.log.Debug("quiet: memory given back", "heap_inuse_kb", m.HeapInuse>>10, "heap_released_kb", m.HeapReleased>>10,
		"stacks_kb", m.StackSys>>10, "runtime_sys_kb", m.Sys>>10)
}
