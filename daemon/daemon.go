package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/internal/filewatch"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Daemon is `irqshift watch`: New builds one from a Config, Run runs it
// once. Tests set the fields of the parts they replace (the event source,
// the state's change notifications) and call Run.
type Daemon struct {
	Engine *affinity.Engine
	Source hotplug.Source
	// Store is the state file, shared with the CLI: the daemon claims it
	// for its lifetime (a second daemon on it is refused), settles under
	// its lock, and re-reads it when another irqshift changed it. nil
	// keeps state in memory only.
	Store *state.Store
	// StateChanged, when set, replaces the inotify watch of the state
	// file: a value means it may have changed.
	StateChanged <-chan struct{}
	// NoInitialRebalance makes the start-up settle only read the state and
	// learn pins, without moving anything.
	NoInitialRebalance bool
	// DryRun observes: the daemon plans on every event as it would, logs
	// each write it would make ("would move"), and writes nothing: no
	// mask, no state file (it reads the state, claims nothing, and may run
	// beside a daemon that does). Engine.SetDryRun must be set as well.
	DryRun  bool
	Logger  *slog.Logger
	Metrics *Metrics
	// Bans are the ban sources followed while the daemon runs (ban
	// files, isolated partitions); nil follows none.
	Bans *Bans
	// RulesDir is the rules directory the daemon follows: each change is
	// loaded and, when good, applied at once; a bad one keeps the last
	// good rules. "" follows none. RulesChanged, when set, replaces the
	// inotify watch of it (tests).
	RulesDir     string
	RulesChanged <-chan struct{}
	// ForeignWriters are the programs whose mask writes are not the
	// operator's intent (DefaultForeignWriters; nil follows none): while
	// one runs no mask is learned as a pin, and when it ends irqshift
	// settles at once, putting its own placement back (reason
	// "balancer"), with the bans that came with it.
	ForeignWriters []string
	// Notify sends a state to the service manager ("READY=1", …); nil
	// sends nothing.
	Notify func(state string)
	// WatchdogInterval is how often to send WATCHDOG=1; 0 disables it.
	WatchdogInterval time.Duration
	// CheckInterval is how often to settle from a full snapshot when
	// nothing happened (reason "check"): it catches what no uevent tells,
	// such as IRQs of a driver loaded since or a mask written by hand.
	// 0 disables it.
	CheckInterval time.Duration
	// IRQPollInterval is how often to look at /proc/irq's link count,
	// which changes when IRQs are allocated or freed: a change settles
	// from a full snapshot (reason "irqs"), so that the IRQs of a driver
	// loaded or a device bound since go where rules and the spread say
	// within about this interval. A bind uevent does the same at once. 0
	// disables the poll.
	IRQPollInterval time.Duration
	// Reload, when set, delivers reloads (tests); a daemon built by New
	// takes them from SIGHUP. Each applies the settings anew (Config.Reload)
	// before a full settle.
	Reload <-chan struct{}
	// AfterApply, when set, is called with the results of every settle
	// that moved IRQs: the eBPF confirmation hooks in here. It runs in its
	// own goroutine so that sampling never delays the next hotplug; one at
	// a time (a settle during a running one is not confirmed), and Run
	// waits for it before returning.
	AfterApply func(ctx context.Context, st *affinity.State, results []affinity.Result)

	// Set by New: SIGHUP reloads, reloadSettings resolves the settings
	// anew, and the metrics are served at metricsAddress from registry.
	reloadOnSIGHUP bool
	reloadSettings func() (affinity.Settings, error)
	metricsAddress string
	registry       *prometheus.Registry

	// Version is the version irqshift was built as, for the status file.
	Version string

	lastOnline sysfs.CPUSet // online CPUs of the last snapshot
	status     statusRecord
	foreign    foreignWriters
	confirming sync.WaitGroup
	busy       atomic.Bool
	// OnSettle, when set, is called after every settle (tests, logs).
	OnSettle func(Settle)
}

// Settle is one snapshot, plan and apply cycle.
type Settle struct {
	// Reason is why it ran: one of AllSettleReasons.
	Reason SettleReason
	// Full is true when the settle read the whole state; false for the
	// quick settle of CPU events, which reads only what they can have
	// changed (affinity.Engine.LoadChanged).
	Full bool
	// Events are the coalesced events that caused it.
	Events  []hotplug.Event
	Plan    affinity.Plan
	Results []affinity.Result
	// Reaction is the time from receiving the earliest CPU uevent of
	// Events to the end of the last write; zero when no CPU event.
	Reaction time.Duration
	State    *affinity.State
}

func (d *Daemon) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d *Daemon) notify(state string) {
	if d.Notify != nil {
		d.Notify(state)
	}
}

// eventQueue is the channel size between the Source and the loop; a burst
// larger than this blocks the Source, whose socket then queues, and an
// overrun there turns into a resync.
const eventQueue = 256

// Run settles once, tells the service manager it is ready, then settles
// after every batch of hotplug events until ctx is done. It returns nil on
// cancellation and an error when the start-up settle or the Source fails.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Bans.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopMetrics, err := d.serveMetrics(ctx)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if d.reloadOnSIGHUP && d.Reload == nil {
		reloads, stop := sighup()
		defer stop()
		d.Reload = reloads
	}
	var stateChanged <-chan struct{}
	if d.Store != nil {
		if !d.DryRun {
			release, err := d.Store.ClaimDaemon()
			if err != nil {
				return err
			}
			defer release()
		}
		// Watch before the first read: a change made after it is then
		// certain to wake the loop.
		stateChanged = d.watchState(ctx)
		saved, err := d.loadState(ctx)
		if err != nil {
			return err
		}
		d.Engine.Restore(saved)
	}
	d.Engine.SetTrackPins(true)
	d.Engine.SetCacheStaticCPUs(true)
	d.Engine.SetNoCounts(true)
	// Rates come from the totals of /proc/interrupts between the full
	// settles (the periodic check, every CheckInterval), and the quick
	// settles of hotplug events plan with the last ones.
	d.Engine.SetTrackRates(true)
	// The ban files and the rules are watched before their first read, as
	// the state.
	bansChanged := d.Bans.watch(ctx)
	rulesWatch := d.followRules(ctx)
	defer func() { rulesWatch.stop() }()
	// /proc/irq's link count is read before the start-up snapshot, as the
	// files are watched: IRQs allocated after it are then certain to be
	// seen by the poll.
	var irqLinks uint64
	if d.IRQPollInterval > 0 {
		irqLinks, _ = d.Engine.FS().IRQDirLinks()
	}
	d.refreshBans(true)
	// A balancer running beside irqshift (--coexist) writes masks that
	// are not the operator's from the start.
	d.scanForeign(time.Now(), true)
	defer d.foreign.stop()
	defer d.confirming.Wait()
	if _, err := d.settle(ctx, SettleStart, nil, !d.NoInitialRebalance, false, time.Time{}); err != nil {
		return fmt.Errorf("start-up settle: %w", err)
	}

	defer d.confirming.Wait()
	defer cancel() // before the Wait: a running confirmation stops now
	events := make(chan hotplug.Event, eventQueue)
	sourceDone := make(chan error, 1)
	go func() { sourceDone <- d.Source.Run(ctx, events) }()
	d.notify("READY=1")
	d.log().Info("watching CPU hotplug")

	var watchdog, check <-chan time.Time
	if d.WatchdogInterval > 0 {
		t := time.NewTicker(d.WatchdogInterval)
		defer t.Stop()
		watchdog = t.C
	}
	if d.CheckInterval > 0 {
		t := time.NewTicker(d.CheckInterval)
		defer t.Stop()
		check = t.C
	}
	// recheck holds the CPU events settled quickly since the last full
	// settle: once no event waits, a full one follows them.
	var recheck []hotplug.Event
	var irqPoll <-chan time.Time
	if d.IRQPollInterval > 0 {
		t := time.NewTicker(d.IRQPollInterval)
		defer t.Stop()
		irqPoll = t.C
	}
	var banPoll <-chan time.Time
	if d.Bans.polled() {
		t := time.NewTicker(d.Bans.pollInterval())
		defer t.Stop()
		banPoll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			d.notify("STOPPING=1")
			<-sourceDone
			return nil
		case err := <-sourceDone:
			if ctx.Err() != nil {
				d.notify("STOPPING=1")
				return nil
			}
			if err == nil {
				err = errors.New("event source stopped")
			}
			d.notify("STOPPING=1")
			return fmt.Errorf("hotplug events: %w", err)
		case <-watchdog:
			d.notify("WATCHDOG=1")
		case <-check:
			if d.scanForeign(time.Now(), true) {
				d.settleLogged(ctx, SettleBalancer, nil)
				continue
			}
			d.settleLogged(ctx, SettleCheck, nil)
		case now := <-d.foreign.tick():
			if d.scanForeign(now, now.Before(d.foreign.until)) {
				d.settleLogged(ctx, SettleBalancer, nil)
			}
		case <-bansChanged:
			// CRI-O changes the ban file, then runs irqbalance --oneshot.
			d.foreign.open(time.Now())
			d.scanForeign(time.Now(), true)
			d.Bans.filesChanged()
			d.settleBans(ctx, time.Now(), len(events) == 0)
		case <-banPoll:
			d.settleBans(ctx, time.Now(), len(events) == 0)
		case <-irqPoll:
			if n, err := d.Engine.FS().IRQDirLinks(); err == nil && n != irqLinks {
				irqLinks = n
				d.settleLogged(ctx, SettleIRQs, nil)
			}
		case <-rulesWatch.changed:
			if d.reloadRules() {
				d.settleLogged(ctx, SettleRules, nil)
			}
		case <-stateChanged:
			// Our own saves wake us too; only another writer's counts.
			if d.Store.Changed() {
				d.settleLogged(ctx, SettleState, nil)
			}
		case <-d.Reload:
			d.Metrics.resync(ResyncSIGHUP)
			d.Engine.ForgetCPUs()
			dirBefore := d.RulesDir
			if err := d.reload(); err != nil {
				d.log().Error("reload: keeping the old configuration", "err", err)
			}
			if d.RulesDir != dirBefore {
				// Another rules directory: follow it instead.
				rulesWatch.stop()
				rulesWatch = d.followRules(ctx)
			}
			// The configuration replaced the bans: put the followed ones back.
			d.refreshBans(true)
			d.settleLogged(ctx, SettleReload, nil)
		case ev := <-events:
			batch := []hotplug.Event{ev}
			// Coalesce what is already queued: a burst (SMT off, several
			// CPUs at once) gets one plan for its settled state.
		drain:
			for {
				select {
				case ev := <-events:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			reason := batchReason(batch, d.Metrics)
			if reason == SettleIRQs {
				// Only drivers bound: their new IRQs, whatever their
				// numbers, need a full snapshot.
				d.settleLogged(ctx, reason, batch)
				continue
			}
			if reason == SettleResync {
				// Events were lost: trust no cached CPU file either.
				d.Engine.ForgetCPUs()
				d.settleLogged(ctx, reason, batch)
				recheck = nil
				continue
			}
			d.settleQuick(ctx, reason, batch)
			recheck = append(recheck, batch...)
			if len(events) == 0 {
				// What the quick settle did not read (a driver's own
				// hotplug callback seen for the first time, a mask
				// written by hand) is settled now, while the machine is
				// quiet; a burst gets one full settle at its end.
				d.settleLogged(ctx, SettleRecheck, recheck)
				recheck = nil
			}
		}
	}
}

// batchReason names a batch for logs and metrics and counts its events.
func batchReason(batch []hotplug.Event, m *Metrics) SettleReason {
	var reason SettleReason
	for _, ev := range batch {
		switch {
		case ev.Resync:
			m.resync(ResyncReason(ev.Reason))
			if reason == "" || reason == SettleIRQs {
				reason = SettleResync
			}
		case ev.Action == hotplug.Offline:
			m.event(string(ev.Action))
			reason = SettleOffline
		case ev.Action == hotplug.Online:
			m.event(string(ev.Action))
			if reason != SettleOffline {
				reason = SettleOnline
			}
		case ev.Action == hotplug.Bound:
			// Not a CPU event: a batch of CPU events settles quickly, and
			// the full recheck after it places the new IRQs.
			if reason == "" {
				reason = SettleIRQs
			}
		}
	}
	return reason
}

func (d *Daemon) settleLogged(ctx context.Context, reason SettleReason, batch []hotplug.Event) {
	if _, err := d.settle(ctx, reason, batch, true, false, time.Time{}); err != nil {
		// A failed settle is not fatal: the next event or the periodic
		// check tries again from a fresh snapshot.
		d.log().Error("settle failed", "reason", reason, "err", err)
	}
}

// settleQuick is the settle of a batch of CPU events: it reads only what
// they can have changed.
func (d *Daemon) settleQuick(ctx context.Context, reason SettleReason, batch []hotplug.Event) {
	if _, err := d.settle(ctx, reason, batch, true, true, time.Time{}); err != nil {
		d.log().Error("settle failed", "reason", reason, "err", err)
	}
}

// settle snapshots, plans a rebalance (which restores pins) and applies it.
// quick settles the CPU events of batch from a refreshed snapshot
// (affinity.Engine.LoadChanged) and measures their reaction; otherwise
// the snapshot is full, and a batch is only named in the log (a recheck).
//
// since, when set, is what the reaction is measured from (a ban change);
// otherwise it is the earliest CPU event of a quick settle's batch.
func (d *Daemon) settle(ctx context.Context, reason SettleReason, batch []hotplug.Event, move, quick bool, since time.Time) (Settle, error) {
	s := Settle{Reason: reason, Events: batch, Full: !quick}
	// Every wake-up re-reads the ban sources that give no notification
	// (a file or two): a change is applied with it.
	d.refreshBans(false)
	// The online sets this batch went through: a mask equal to one of them
	// was written by the kernel or a driver during the burst.
	cur := d.lastOnline
	var changed sysfs.CPUSet
	for _, ev := range batch {
		switch {
		case !quick || ev.Resync || ev.CPU < 0:
			continue
		case ev.Action == hotplug.Offline:
			cur = cur.Without(ev.CPU)
		default:
			cur = cur.With(ev.CPU)
		}
		changed = changed.With(ev.CPU)
		d.Engine.NoteTransient(cur)
	}
	// The lock is held for the whole read → plan → write → save cycle and
	// only then: a one-shot command waits for the settle to end, and the
	// daemon for the command.
	sess, err := d.Store.Open(ctx, d.stateMode(), state.Options{Logger: d.Logger})
	if err != nil {
		return s, err
	}
	defer sess.Close()
	if sess.Changed() {
		saved, err := sess.Load()
		if err != nil {
			return s, err
		}
		d.Engine.Restore(saved)
		d.log().Info("state changed by another irqshift; applying it", "drained", saved.Drained.CPUs().String(), "pins", len(saved.Pins))
		// It may have written masks the last snapshot does not know.
		s.Full = true
	}
	load := d.Engine.Load
	if !s.Full {
		load = func() (*affinity.State, error) { return d.Engine.LoadChanged(changed) }
	}
	st, err := load()
	if err != nil {
		return s, err
	}
	s.State = st
	d.lastOnline = st.Snapshot.CPUs.Online
	for _, pin := range st.LearnedPins {
		d.log().Info("learned pin", "irq", pin.IRQ, "cpus", pin.CPUs.String())
	}
	if move {
		d.Engine.ProbePins(st)
		st, s.Plan, s.Results, err = d.Engine.Rebalance(ctx, st)
		s.State = st
		if err != nil {
			return s, err
		}
	}
	end := time.Now()
	received := since
	if received.IsZero() && quick {
		received = earliestCPUEvent(batch)
	}
	if !received.IsZero() {
		s.Reaction = end.Sub(received)
	}
	saved := d.Engine.Saved()
	banned := d.Engine.Banned()
	saved.DaemonBanned = banned.Configured()
	saved.DaemonBannedBy = banned.Sources(sysfs.CPUInfo{})
	delete(saved.DaemonBannedBy, affinity.BanDaemon)
	if d.DryRun {
		// Nothing was written: the state file stays the operator's and
		// the real daemon's.
	} else if err := sess.Commit(saved, s.State.Keys()); err != nil {
		d.log().Error("could not save state", "path", d.Store.Path(), "err", err)
	}
	d.Metrics.settled(reason, s.Results, s.Reaction.Seconds(), !received.IsZero())
	d.record(s)
	if d.AfterApply != nil && !d.DryRun && movedAny(s.Results) && d.busy.CompareAndSwap(false, true) {
		d.confirming.Go(func() {
			defer d.busy.Store(false)
			d.AfterApply(ctx, st, s.Results)
		})
	}
	if d.OnSettle != nil {
		d.OnSettle(s)
	}
	return s, nil
}

// loadState reads the state file at start, under its lock: an unusable
// file of irqshift's is kept aside there, never beside a command's save.
func (d *Daemon) loadState(ctx context.Context) (state.Saved, error) {
	sess, err := d.Store.Open(ctx, d.stateMode(), state.Options{Logger: d.Logger})
	if err != nil {
		return state.Saved{}, err
	}
	defer sess.Close()
	return sess.Load()
}

// record logs a settle and updates the gauges from a fresh view of where
// IRQs now are.
func (d *Daemon) record(s Settle) {
	d.logWrites(s)
	sum := affinity.Summarize(len(s.Plan.Moves), s.Results, 0)
	// A pending write counts as moved here: the chip moves it at its next
	// interrupt, and the eBPF confirmation says where it went.
	moved, narrowed, failed := sum.Moved+sum.Pending, sum.Narrowed, sum.Failed
	snapshot := "events"
	if s.Full {
		snapshot = "full"
	}
	attrs := []any{"reason", s.Reason, "events", describe(s.Events), "moved", moved, "narrowed", narrowed, "failed", failed,
		"online", s.State.Snapshot.CPUs.Online.String(), "snapshot", snapshot}
	if s.Reaction > 0 {
		attrs = append(attrs, "reaction_ms", float64(s.Reaction.Microseconds())/1000)
	}
	if d.DryRun {
		attrs = append(attrs, "dry_run", true)
	}
	level := slog.LevelInfo
	if (s.Reason == SettleCheck || s.Reason == SettleRecheck) && moved+narrowed+failed == 0 {
		// The safety nets that found nothing to do would fill the
		// journal: one line every check interval and after every event.
		level = slog.LevelDebug
	}
	d.log().Log(context.Background(), level, "settled", attrs...)
	d.saveStatus(s, moved, narrowed, failed)
	if d.Metrics != nil {
		// Gauges show the state after the writes: re-read it cheaply from
		// the results instead of a second snapshot.
		after := *s.State
		after.IRQs = append([]affinity.IRQ(nil), s.State.IRQs...)
		index := make(map[int]int, len(after.IRQs))
		for i, irq := range after.IRQs {
			index[irq.IRQ] = i
		}
		for _, r := range s.Results {
			i, ok := index[r.IRQ]
			if !ok || !r.Wrote() {
				continue
			}
			after.IRQs[i].Effective = r.To
			if !r.Effective.IsEmpty() {
				after.IRQs[i].Effective = r.Effective
			}
		}
		d.Metrics.observeState(&after, d.Engine.RuleNames())
		d.Metrics.observeBans(d.Engine.Banned(), s.State.Snapshot.CPUs)
	}
}

// stateMode is how the daemon opens the state file: to write, under its
// lock; only to read in a dry run.
func (d *Daemon) stateMode() state.Mode {
	if d.DryRun {
		return state.Read
	}
	return state.Write
}

// logWrites logs one line per write of the settle: which IRQ, its
// actions, its mask before and after, where it fires now, and why
// (affinity.State.Explain). A move is info, a narrowing in place (the IRQ
// does not move) debug, a refused or failed write what it was.
func (d *Daemon) logWrites(s Settle) {
	log := d.log()
	moves := make(map[int]affinity.Move, len(s.Plan.Moves))
	for _, m := range s.Plan.Moves {
		moves[m.IRQ] = m
	}
	before := make(map[int]affinity.IRQ, len(s.Results))
	for _, irq := range s.State.IRQs {
		before[irq.IRQ] = irq
	}
	offlined := eventCPUs(s.Events, hotplug.Offline)
	quiet := !log.Enabled(context.Background(), slog.LevelInfo)
	for _, r := range s.Results {
		if quiet && r.Status != affinity.StatusFailed {
			continue // nothing but a failure would be logged: skip the explaining
		}
		m, irq := moves[r.IRQ], before[r.IRQ]
		kind, why := s.State.Explain(m, irq)
		if (kind == affinity.CauseRebalance || kind == affinity.CauseNarrow) && !offlined.IsEmpty() {
			// The kernel already moved it off the CPU that went away,
			// breaking or narrowing its mask: it is placed again, or
			// its mask fixed, because of that.
			kind, why = affinity.CauseOffline, "placed again after "+affinity.CPUNoun(offlined)+" went offline"
		}
		attrs := []any{"irq", r.IRQ, "actions", strings.Join(irq.Actions, ","),
			"before", setText(irq.Affinity), "after", setText(r.To), "effective", setText(r.Effective),
			"reason", string(kind), "why", why, "settle", string(s.Reason)}
		moved, narrowed := "moved", "narrowed"
		if d.DryRun {
			moved, narrowed = "would move", "would narrow"
		}
		switch r.Status {
		case affinity.StatusMoved, affinity.StatusPending:
			log.Info(moved, attrs...)
		case affinity.StatusNarrowed:
			log.Debug(narrowed, attrs...)
		case affinity.StatusFailed:
			log.Warn("move failed", append(attrs, "err", r.Reason, "class", r.ErrorClass)...)
		case affinity.StatusUnmovable:
			log.Info("kernel refused to move IRQ; treating it as managed", append(attrs, "err", r.Reason)...)
		case affinity.StatusVanished:
			log.Debug("IRQ vanished before its write", attrs...)
		}
	}
}

// setText shows a CPU set in a log line, "-" when empty (an effective
// CPU not read back).
func setText(s sysfs.CPUSet) string {
	if s.IsEmpty() {
		return "-"
	}
	return s.String()
}

// eventCPUs is the set of CPUs the batch's events of action name.
func eventCPUs(batch []hotplug.Event, action hotplug.Action) sysfs.CPUSet {
	var cpus sysfs.CPUSet
	for _, ev := range batch {
		if !ev.Resync && ev.Action == action {
			cpus = cpus.With(ev.CPU)
		}
	}
	return cpus
}

// watchWait bounds the wait for a file's inotify watch to be in place at
// start (an inotify_add_watch on a local directory).
const watchWait = 5 * time.Second

// watchState returns a channel that has a value whenever the state file
// may have changed (nil without a state file). It returns once the watch
// is in place, or after watchWait with a warning.
func (d *Daemon) watchState(ctx context.Context) <-chan struct{} {
	if d.Store == nil {
		return nil
	}
	if d.StateChanged != nil {
		return d.StateChanged
	}
	return watchFiles(ctx, []string{d.Store.RealPath()}, "the state file", "changes by the CLI", d.log(), nil)
}

// watchFiles returns a channel that has a value whenever one of paths may
// have changed (filewatch.Watcher). It returns once the first watch was
// tried, or after watchWait with a warning, so that a read after it
// cannot miss a change. what names the files and effect what a missed
// change delays, for the logs; failed, when set, is called if the files
// cannot be watched at all.
func watchFiles(ctx context.Context, paths []string, what, effect string, log *slog.Logger, failed func()) <-chan struct{} {
	out := make(chan struct{}, 1)
	changed := make(chan string, 1)
	ready := make(chan struct{})
	var once sync.Once
	// Ready once the first directory was tried: one that does not exist
	// yet (/etc/sysconfig on Debian) is polled, and its files are reported
	// once it is watched, so nothing is missed either way.
	w := &filewatch.Watcher{Paths: paths, Logger: log,
		Watching: func(string, bool) { once.Do(func() { close(ready) }) }}
	defer func() {
		select {
		case <-ready:
		case <-ctx.Done():
		case <-time.After(watchWait):
			log.Warn("the watch of "+what+" is not in place yet; "+effect+" may wait for the next event", "paths", paths)
		}
	}()
	go func() {
		if err := w.Run(ctx, changed); err != nil {
			if failed != nil {
				failed()
			}
			log.Warn("not watching "+what+"; "+effect+" apply at the next event", "err", err)
		}
		// Unblock the wait below: there will be no watch.
		once.Do(func() { close(ready) })
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

func earliestCPUEvent(batch []hotplug.Event) time.Time {
	var t time.Time
	for _, ev := range batch {
		if ev.Resync || ev.Received.IsZero() {
			continue
		}
		if t.IsZero() || ev.Received.Before(t) {
			t = ev.Received
		}
	}
	return t
}

func movedAny(results []affinity.Result) bool {
	for _, r := range results {
		if r.Wrote() {
			return true
		}
	}
	return false
}

func describe(batch []hotplug.Event) string {
	parts := make([]string, 0, len(batch))
	for _, ev := range batch {
		if ev.Resync {
			parts = append(parts, "resync:"+ev.Reason)
		} else {
			parts = append(parts, string(ev.Action)+":"+strconv.Itoa(ev.CPU))
		}
	}
	return strings.Join(parts, ",")
}

func itoa(n int) string { return strconv.Itoa(n) }
