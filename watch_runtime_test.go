package main

import (
	"runtime"
	"testing"
)

// TestLimitRuntime: the daemon caps GOMAXPROCS at daemonMaxProcs on a machine with more CPUs,
// keeps a smaller value, and keeps what the GOMAXPROCS environment variable asked for.
func TestLimitRuntime(t *testing.T) {
	saved := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(saved) })
	for _, tc := range []struct {
		name      string
		env       string
		procs     int // GOMAXPROCS before, as the runtime chose it
		wantProcs int
	}{
		{"many CPUs", "", 64, daemonMaxProcs},
		{"few CPUs", "", 2, 2},
		{"set by the operator", "16", 16, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			runtime.GOMAXPROCS(tc.procs)
			if got, _ := limitRuntime(); got != tc.wantProcs || runtime.GOMAXPROCS(0) != tc.wantProcs {
				t.Errorf("limitRuntime() = %d (GOMAXPROCS now %d), want %d", got, runtime.GOMAXPROCS(0), tc.wantProcs)
			}
		})
	}
}

// TestDaemonReexec: `irqshift watch` on a machine with more CPUs than daemonMaxProcs starts again
// with GOMAXPROCS set, so that the runtime never sizes itself for every CPU; nothing else does.
func TestDaemonReexec(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		procs int
		env   string
		want  bool
	}{
		{"watch on 128 CPUs", []string{"irqshift", "--state", "/run/s.json", "watch", "--ban-file", "/etc/sysconfig/irqbalance"}, 128, "", true},
		{"watch on 4 CPUs", []string{"irqshift", "watch"}, 4, "", false},
		{"watch with the operator's GOMAXPROCS", []string{"irqshift", "watch"}, 128, "32", false},
		{"a one-shot command", []string{"irqshift", "list", "--json"}, 128, "", false},
		{"the program's own name", []string{"watch"}, 128, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs, ok := daemonReexec(tc.args, tc.procs, env(tc.env))
			if ok != tc.want || (ok && procs != daemonMaxProcs) {
				t.Errorf("daemonReexec(%q, %d, GOMAXPROCS=%q) = %d, %v; want %v with %d", tc.args, tc.procs, tc.env, procs, ok, tc.want, daemonMaxProcs)
			}
		})
	}
}
