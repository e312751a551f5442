package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddress returns a loopback address with a port nobody listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWatchNotifiesAndServesMetrics runs the daemon command against a VM
// tree: it must settle, send READY=1 to a NOTIFY_SOCKET unixgram socket,
// serve metrics, and on SIGTERM send STOPPING=1 and exit 0. The uevent
// socket is real; nothing here changes a CPU of this machine.
func TestWatchNotifiesAndServesMetrics(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	addr := freeAddress(t)
	state := filepath.Join(t.TempDir(), "state.json")

	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run([]string{"irqshift", "--proc", proc, "--sys", sys, "--state", state, "watch",
			"--metrics-address", addr, "--check-interval", "0"}, io.Discard, &stderr,
			func(k string) string { return map[string]string{"JOURNAL_STREAM": "8:1234"}[k] })
	}()

	readState := func() string {
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v (stderr: %s)", err, stderr.String())
		}
		return string(buf[:n])
	}
	if got := readState(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The start-up settle is counted before READY; the resync the uevent
	// source sends once its socket is open may be counted by now or not.
	if m := regexp.MustCompile(`(?m)^irqshift_settles_total (\d+)$`).FindStringSubmatch(string(body)); m == nil || m[1] == "0" {
		t.Errorf("irqshift_settles_total %v, want at least 1", m)
	}
	for _, want := range []string{`irqshift_unmovable_irqs{class="managed"} 4`, "irqshift_movable_irqs{cpu=\"3\"}"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readState(); got != "STOPPING=1" {
		t.Errorf("last notification %q, want STOPPING=1", got)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop on SIGTERM")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "<6>level=INFO msg=settled") || strings.Contains(logs, "time=") {
		t.Errorf("logs under systemd must have no timestamps, start with their priority and report the settle:\n%s", logs)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file not written: %v", err)
	}
}

func TestWatchRefusesBesideIrqbalance(t *testing.T) {
	proc, sys := copyVMTree(t, "vm-gicv3-4cpu")
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(proc, "4242", "comm"), "irqbalance\n")
	code, _, stderr := runCLI(t, nil, "--proc", proc, "--sys", sys, "watch")
	if code != exitError || !strings.Contains(stderr, "irqbalance is running (PID [4242])") || !strings.Contains(stderr, "--coexist") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
