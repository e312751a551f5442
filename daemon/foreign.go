package daemon

import "time"

// DefaultForeignWriters are the programs whose IRQ mask writes are not the
// operator's intent: irqbalance, which CRI-O runs as `irqbalance
// --oneshot` at the start and stop of a pod that disables IRQ load
// balancing when irqbalance.service is not enabled (as irqshift's unit
// requires). The oneshot daemonizes at once and writes its masks about
// ten seconds later.
var DefaultForeignWriters = []string{"irqbalance"}

// ForeignScanWindow is how long after a ban file changed the daemon looks
// for a foreign writer: CRI-O writes the ban file and then starts the
// oneshot.
const ForeignScanWindow = 5 * time.Second

// foreignScanInterval is how often the daemon looks while a window is open
// or a writer runs: a writer's end is seen within this, and irqshift's
// placement comes back with the settle that follows.
const foreignScanInterval = 250 * time.Millisecond

// foreignWriters follows the processes of Daemon.ForeignWriters: found by
// name in /proc at the periodic check, and every foreignScanInterval for
// ForeignScanWindow after a ban file changed; each one found is checked
// until it exits.
type foreignWriters struct {
	running map[int]string // PID → program name
	until   time.Time      // the end of the scan window
	ticker  *time.Ticker
}

// tick is the channel of the scan ticker, nil while nothing is followed.
func (f *foreignWriters) tick() <-chan time.Time {
	if f.ticker == nil {
		return nil
	}
	return f.ticker.C
}

// open starts (or extends) the scan window.
func (f *foreignWriters) open(now time.Time) {
	f.until = now.Add(ForeignScanWindow)
	if f.ticker == nil {
		f.ticker = time.NewTicker(foreignScanInterval)
	}
}

func (f *foreignWriters) stop() {
	if f.ticker != nil {
		f.ticker.Stop()
		f.ticker = nil
	}
}

// scanForeign looks for foreign writers (scan: by name in /proc; always:
// whether the known ones still run) and tells the engine. It returns
// true when the last one just ended: the caller settles, and irqshift's
// own placement comes back.
func (d *Daemon) scanForeign(now time.Time, scan bool) bool {
	f := &d.foreign
	if len(d.ForeignWriters) == 0 {
		return false
	}
	had := len(f.running) > 0
	fs := d.Engine.FS()
	for pid, name := range f.running {
		if !fs.ProcessNamed(pid, name) {
			delete(f.running, pid)
			d.log().Info("foreign IRQ balancer ended", "program", name, "pid", pid)
		}
	}
	if scan {
		for _, name := range d.ForeignWriters {
			pids, err := fs.ProcessesNamed(name)
			if err != nil {
				continue
			}
			for _, pid := range pids {
				if _, known := f.running[pid]; known {
					continue
				}
				if f.running == nil {
					f.running = map[int]string{}
				}
				f.running[pid] = name
				d.log().Info("foreign IRQ balancer running: its masks are not learned as pins, and irqshift's placement comes back when it ends",
					"program", name, "pid", pid)
			}
		}
	}
	active := len(f.running) > 0
	d.Engine.SetForeignWriters(active)
	switch {
	case active && f.ticker == nil:
		f.ticker = time.NewTicker(foreignScanInterval)
	case !active && !now.Before(f.until):
		f.stop()
	}
	return had && !active
}
