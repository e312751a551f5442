package daemon

import (
	"context"
	"path/filepath"
	"reflect"

	"github.com/irqshift/irqshift/internal/filewatch"
	"github.com/irqshift/irqshift/rules"
)

// watchRules returns a channel that has a value whenever a file of the
// rules directory may have changed; nil (never) without one.
func (d *Daemon) watchRules(ctx context.Context) <-chan struct{} {
	if d.RulesChanged != nil {
		return d.RulesChanged
	}
	if d.RulesDir == "" {
		return nil
	}
	return watchFiles(ctx, []string{filepath.Join(d.RulesDir, filewatch.AnyFile)}, "the rules directory",
		"rule changes", d.log(), nil)
}

// rulesWatch is the watch of one rules directory, stopped when the daemon
// follows another (SIGHUP with a new IRQSHIFT_RULES) or ends.
type rulesWatch struct {
	changed <-chan struct{}
	stop    context.CancelFunc
}

// followRules watches d.RulesDir until the returned watch is stopped.
func (d *Daemon) followRules(ctx context.Context) rulesWatch {
	ctx, cancel := context.WithCancel(ctx)
	return rulesWatch{changed: d.watchRules(ctx), stop: cancel}
}

// reloadRules loads the rules directory again and gives the engine its
// rules; it reports whether they changed. A directory that does not load
// (a file being written, a mistake) changes nothing: the last good rules
// stay in force, and the error names the file and line.
func (d *Daemon) reloadRules() bool {
	set, err := rules.Load(d.RulesDir)
	if err != nil {
		d.log().Error("rules: keeping the last good rules", "dir", d.RulesDir, "err", err)
		d.Metrics.rulesFailed()
		return false
	}
	// A write shows as several changes (a temporary file, then its
	// rename): settle only for a change of the rules themselves.
	if old := d.Engine.Rules(); old.Len() == set.Len() && (set.Len() == 0 || reflect.DeepEqual(old.Rules, set.Rules)) {
		return false
	}
	d.log().Info("rules loaded", "dir", d.RulesDir, "rules", set.Len())
	d.Engine.SetRules(set)
	return true
}
