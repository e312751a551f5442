package main

import (
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irqshift/irqshift/sysfs"
)

// TestSettingsPrecedence: flag > environment > config file > default, for
// every command (list shows the banned CPUs it resolved).
func TestSettingsPrecedence(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	config := filepath.Join(t.TempDir(), "irqshift")
	writeFile(t, config, "IRQSHIFT_BANNED_CPUS=1\nIRQSHIFT_BANNED_IRQS=13\n")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		banned string
	}{
		{"default", nil, nil, "[]"},
		{"file", nil, []string{"--config", config}, "[1]"},
		{"environment over file", map[string]string{"IRQSHIFT_BANNED_CPUS": "2"}, []string{"--config", config}, "[2]"},
		{"flag over environment", map[string]string{"IRQSHIFT_BANNED_CPUS": "2"}, []string{"--config", config, "--banned-cpus", "3"}, "[3]"},
		{"irqbalance's variables add", map[string]string{"IRQBALANCE_BANNED_CPULIST": "0", "IRQBALANCE_BANNED_CPUS": "8"}, []string{"--banned-cpus", "1"}, "[0,1,3]"},
		{"irqbalance's hex mask", map[string]string{"IRQBALANCE_BANNED_CPUS": "0000000c"}, nil, "[2,3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--proc", proc, "--sys", sys}, tt.args...)
			code, stdout, stderr := runCLI(t, tt.env, append(args, "list", "--json")...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var doc struct {
				CPUs struct {
					Banned json.RawMessage `json:"banned"`
				} `json:"cpus"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(strings.Fields(string(doc.CPUs.Banned)), ""); got != tt.banned {
				t.Errorf("banned %s, want %s", got, tt.banned)
			}
		})
	}
	// A bad value names where it came from.
	for key, bad := range map[string]string{"IRQSHIFT_BANNED_IRQS": "x", "IRQBALANCE_BANNED_CPUS": "zz", "IRQBALANCE_BANNED_CPULIST": "3-1",
		"IRQSHIFT_INCLUDE_ISOLATED": "maybe", "IRQSHIFT_INCLUDE_PINNED": "2", "IRQSHIFT_BANNED_CPUS": "x", "IRQSHIFT_LEARN_PINS": "sometimes"} {
		code, _, stderr := runCLI(t, map[string]string{key: bad}, "--proc", proc, "--sys", sys, "list")
		if code != exitUsage || !strings.Contains(stderr, key) {
			t.Errorf("bad %s=%s: exit %d, %q", key, bad, code, stderr)
		}
	}
}

// syncBuffer is a log sink the test reads while the daemon writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForNth polls the log until n lines hold want and returns the nth.
func (b *syncBuffer) waitForNth(t *testing.T, n int, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var found []string
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, want) {
				found = append(found, line)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d log lines with %q:\n%s", n, want, b.String())
	return ""
}

// waitFor polls the log for a line with every one of want; the timeout is
// a hang guard, not a speed requirement.
func (b *syncBuffer) waitFor(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(b.String(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return line
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q:\n%s", want, b.String())
	return ""
}

// unitExecStart returns the unit's ExecStart line as systemd runs it:
// $IRQSHIFT_ARGS split on white space, the state and config paths swapped
// for the test's, and the ban file for banFile(config).
func unitExecStart(t *testing.T, state, config, irqshiftArgs string) []string {
	t.Helper()
	unit, err := os.ReadFile("systemd/irqshift.service.in")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			line = strings.TrimPrefix(l, "ExecStart=")
		}
	}
	var args []string
	for i, f := range strings.Fields(line) {
		switch {
		case i == 0:
			args = append(args, "irqshift")
		case f == "$IRQSHIFT_ARGS":
			args = append(args, strings.Fields(irqshiftArgs)...)
		case f == "/run/irqshift/state.json":
			args = append(args, state)
		case f == "/etc/default/irqshift":
			args = append(args, config)
		case f == "/etc/sysconfig/irqbalance":
			args = append(args, banFile(config))
		default:
			args = append(args, f)
		}
	}
	return args
}

// banFile is where unitExecStart puts the unit's ban file.
func banFile(config string) string {
	return filepath.Join(filepath.Dir(config), "sysconfig-irqbalance")
}

// TestUnitBansSurviveReload runs the daemon exactly as the unit starts it,
// with --banned-cpus 2 in IRQSHIFT_ARGS and the file in the environment as
// EnvironmentFile= puts it: the flag's ban holds at start and after
// SIGHUP, while SIGHUP takes the file's new values.
func TestUnitBansSurviveReload(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	dir := t.TempDir()
	state, config := filepath.Join(dir, "state.json"), filepath.Join(dir, "irqshift")
	irqshiftArgs := "--banned-cpus 2 --proc " + proc + " --sys " + sys + " --no-verify --check-interval 0"
	file := "IRQBALANCE_BANNED_CPULIST=3\nIRQSHIFT_ARGS=\"" + irqshiftArgs + "\"\n"
	writeFile(t, config, file)
	environment := map[string]string{"IRQBALANCE_BANNED_CPULIST": "3", "IRQSHIFT_ARGS": irqshiftArgs, "JOURNAL_STREAM": "8:1"}
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	var logs syncBuffer
	done := make(chan int, 1)
	args := unitExecStart(t, state, config, irqshiftArgs)
	go func() { done <- run(args, &discard{}, &logs, func(k string) string { return environment[k] }) }()
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("no READY=1: %v %q\n%s", err, buf, logs.String())
	}
	logs.waitFor(t, `msg=configuration `, "banned_cpus=2-3")
	checkNoneOn(t, proc, sys, 2, 3)

	// The operator drops the irqbalance ban from the file and reloads.
	writeFile(t, config, "IRQSHIFT_ARGS=\""+irqshiftArgs+"\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "configuration reloaded", "banned_cpus=2 ")
	logs.waitFor(t, "msg=settled", "reason=reload")
	checkNoneOn(t, proc, sys, 2)

	// CRI-O bans CPU1 in the file the unit follows: a temporary file
	// renamed over it, the mask in hex. The daemon drains CPU1 at once.
	writeRenamed(t, banFile(config), "IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPUS=00000002\n")
	logs.waitFor(t, "banned CPUs changed", "ban-file=1")
	logs.waitFor(t, "msg=settled", "reason=bans")
	checkNoneOn(t, proc, sys, 1, 2)
	// And frees it with an empty value, which bans nothing.
	writeRenamed(t, banFile(config), "IRQBALANCE_BANNED_CPUS=\n")
	if last := logs.waitForNth(t, 2, "banned CPUs changed"); strings.Contains(last, "ban-file") || !strings.Contains(last, "config=2") {
		t.Errorf("after the ban file was emptied: %s", last)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not stop on SIGTERM")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// checkNoneOn asserts that no movable IRQ of the tree has a banned CPU in
// its mask: on a fixture tree the mask file is what a write leaves (the
// effective file stays as it was).
func checkNoneOn(t *testing.T, proc, sys string, banned ...int) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "list", "--json")
	if code != exitOK {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	var doc struct {
		IRQs []struct {
			IRQ      int   `json:"irq"`
			Movable  bool  `json:"movable"`
			Affinity []int `json:"affinity"`
		} `json:"irqs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	movable := 0
	for _, irq := range doc.IRQs {
		if !irq.Movable {
			continue
		}
		movable++
		for _, cpu := range banned {
			if slices.Contains(irq.Affinity, cpu) {
				t.Errorf("IRQ %d has mask %v with banned CPU %d", irq.IRQ, irq.Affinity, cpu)
			}
		}
	}
	if movable == 0 {
		t.Fatal("no movable IRQ in the tree: the check proves nothing")
	}
}

// writeRenamed writes path as CRI-O does: a temporary file in the same
// directory, renamed over it.
func writeRenamed(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestListBannedBy: list says where each banned CPU comes from, in JSON
// (cpus.banned_by) and in the table's header, with an isolated cpuset
// partition read from the cgroup v2 root that mountinfo names.
func TestListBannedBy(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	writeFile(t, filepath.Join(proc, "self", "mountinfo"), "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n")
	writeFile(t, filepath.Join(sys, "fs", "cgroup", "cpuset.cpus.isolated"), "1,3\n")
	code, stdout, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "--banned-cpus", "1", "list", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		CPUs struct {
			Allowed  sysfs.CPUSet        `json:"allowed"`
			BannedBy map[string][]string `json:"banned_by"`
		} `json:"cpus"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"1": {"config", "isolated-partition"}, "3": {"isolated-partition"}}
	if !maps.EqualFunc(doc.CPUs.BannedBy, want, slices.Equal) || doc.CPUs.Allowed.String() != "0,2" {
		t.Errorf("banned_by %v, allowed %s; want %v, 0,2", doc.CPUs.BannedBy, doc.CPUs.Allowed, want)
	}
	code, stdout, stderr = runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "--banned-cpus", "1", "list")
	if code != exitOK || !strings.Contains(stdout, "banned 1,3: 1 (config, isolated-partition), 3 (isolated-partition)") {
		t.Errorf("exit %d, table header:\n%s\n%s", code, strings.SplitN(stdout, "\n", 2)[0], stderr)
	}
	// --include-isolated lets IRQs onto the partition's CPUs.
	code, stdout, _ = runCLI(t, nil, "--proc", proc, "--sys", sys, "--state", "none", "--include-isolated", "list", "--json")
	doc.CPUs.BannedBy = nil
	if err := json.Unmarshal([]byte(stdout), &doc); code != exitOK || err != nil || len(doc.CPUs.BannedBy) != 0 || doc.CPUs.Allowed.String() != "0-3" {
		t.Errorf("--include-isolated: exit %d, %v, banned_by %v, allowed %s", code, err, doc.CPUs.BannedBy, doc.CPUs.Allowed)
	}
}

// TestBannedListNoneInEnvironment: IRQBALANCE_BANNED_CPULIST=- (tuned's
// "none") in the environment bans nothing, as it does in a ban file,
// instead of failing every command.
func TestBannedListNoneInEnvironment(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	for _, env := range []map[string]string{{"IRQBALANCE_BANNED_CPULIST": "-"}, {"IRQBALANCE_BANNED_CPUS": "0"}, {"IRQBALANCE_BANNED_CPULIST": " - "}} {
		code, stdout, stderr := runCLI(t, env, "--proc", proc, "--sys", sys, "--state", "none", "list")
		if code != exitOK || !strings.Contains(stdout, "allowed 0-3") {
			t.Errorf("%v: exit %d, %q %q; want every CPU allowed", env, code, stdout, stderr)
		}
	}
}

// TestConfigUnknownKeyWarned: a misspelt IRQSHIFT_ key in the config file
// is named in a warning with the key it probably meant; keys of other
// programs and the unit's IRQSHIFT_ARGS are not.
func TestConfigUnknownKeyWarned(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	config := filepath.Join(t.TempDir(), "irqshift")
	writeFile(t, config, "IRQSHIFT_BANED_CPUS=3\nIRQSHIFT_ARGS=--log-level info\nIRQBALANCE_ONESHOT=1\nPATH=/bin\nIRQSHIFT_WHATEVER_ELSE_ENTIRELY=1\n")
	code, stdout, stderr := runCLI(t, nil, "--config", config, "--proc", proc, "--sys", sys, "--state", "none", "list")
	if code != exitOK || !strings.Contains(stdout, "allowed 0-3") {
		t.Fatalf("exit %d, %q %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "key=IRQSHIFT_BANED_CPUS") || !strings.Contains(stderr, "did_you_mean=IRQSHIFT_BANNED_CPUS") {
		t.Errorf("no warning naming the misspelt key and the right one:\n%s", stderr)
	}
	if !strings.Contains(stderr, "key=IRQSHIFT_WHATEVER_ELSE_ENTIRELY") || strings.Contains(stderr, "did_you_mean=IRQSHIFT_WHATEVER") {
		t.Errorf("an unknown key far from any known one is warned about without a suggestion:\n%s", stderr)
	}
	for _, quiet := range []string{"IRQSHIFT_ARGS", "IRQBALANCE_ONESHOT", "PATH"} {
		if strings.Contains(stderr, "key="+quiet) {
			t.Errorf("warned about %s:\n%s", quiet, stderr)
		}
	}
}
