package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The tests wait for events with these deadlines, never asserting that
// anything was fast: a deadline passing is a failure.
const (
	metricsTestDeadline = 60 * time.Second
	metricsTestPoll     = 5 * time.Millisecond
)

// startMetrics serves a registry with one counter on cfg.Address
// (127.0.0.1:0 if empty) and stops it when the test ends. It returns the
// address and its port.
func startMetrics(t *testing.T, ctx context.Context, cfg metricsServerConfig) (string, int, func()) {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "irqshift_test_total", Help: "A test counter."})
	c.Add(7)
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	addr, stop, err := serveMetricsOn(ctx, cfg, mux)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr.String(), addr.(*net.TCPAddr).Port, stop
}

// scrape GETs /metrics on a new connection and checks the answer.
func scrape(addr string) error {
	client := &http.Client{Timeout: metricsTestDeadline, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "irqshift_test_total 7") {
		return fmt.Errorf("scrape: %s: %.200s", resp.Status, body)
	}
	return nil
}

// keepAliveClient is a scraper that keeps its connection open: it dials,
// sends one request, reads the answer, then waits for the server to
// close the connection (io.EOF). It never closes it itself before that.
func keepAliveClient(addr string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A connection beyond the bound waits in the backlog until a slot is
	// free, so this deadline covers the wait for the turn too.
	if err := conn.SetDeadline(time.Now().Add(metricsTestDeadline)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("irqshift_test_total 7")) {
		return fmt.Errorf("answer %s %v: %.200s", resp.Status, err, body)
	}
	// Idle now: the server must close the connection.
	if n, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("idle keep-alive connection not closed by the server: read %d bytes, %v", n, err)
	}
	return nil
}

// serverSockets counts the server side TCP connections on port that this
// process holds a file descriptor for: entries of /proc/net/tcp{,6} whose
// local port is port, that are not the listener and whose socket inode is
// one of /proc/self/fd. A connection still in the listen backlog has no
// inode (no descriptor) and is not counted; nor is a client's end, whose
// local port is another. The descriptors are read first, the table
// second, so every socket counted was open at the same moment (a socket's
// inode is not reused, and the table shows 0 once its file is closed).
// Sockets are counted by inode: a table read in several chunks while
// connections come and go may list one twice.
func serverSockets(t *testing.T, port int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]bool{}
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
			if inode, ok := strings.CutPrefix(target, "socket:["); ok {
				open[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	counted := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) && table == "/proc/net/tcp6" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			local, err := strconv.ParseUint(hexPort, 16, 16)
			const listen = "0A"
			if err == nil && int(local) == port && f[3] != listen && open[f[9]] {
				counted[f[9]] = true
			}
		}
	}
	return len(counted)
}

// needProc skips a test where /proc/net/tcp is missing.
func needProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
}

// waitFor polls cond until it holds, failing the test after the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(metricsTestDeadline); !cond(); time.Sleep(metricsTestPoll) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", metricsTestDeadline, what)
		}
	}
}

// storm runs clients keepAliveClients at once while sample runs between
// them, and returns the clients' errors once all are done.
func storm(addr string, clients int, sample func()) []error {
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { errs[i] = keepAliveClient(addr) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		sample()
		select {
		case <-done:
			return errs
		case <-time.After(time.Millisecond):
		}
	}
}

// TestMetricsServerBoundsAndClosesIdleConnections: 50 scrapers that keep
// their connections open never make the server hold more than
// MaxConnections; the server closes each idle one, so every scraper is
// served in turn, and a fresh scrape works afterwards. Before the bound
// and the idle timeout, the server held all 50 and never closed them.
func TestMetricsServerBoundsAndClosesIdleConnections(t *testing.T) {
	needProc(t)
	const maxConns, clients = 4, 50
	addr, port, _ := startMetrics(t, t.Context(), metricsServerConfig{MaxConnections: maxConns, IdleTimeout: 200 * time.Millisecond})

	most := 0
	errs := storm(addr, clients, func() { most = max(most, serverSockets(t, port)) })
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients failed", failed, clients)
	}
	if most > maxConns {
		t.Errorf("the server held %d connections at once, want at most %d", most, maxConns)
	}
	if most == 0 {
		t.Error("never saw a server connection: the count is broken")
	}
	if err := scrape(addr); err != nil {
		t.Errorf("fresh scrape after the storm: %v", err)
	}
	waitFor(t, "the server still holds connections", func() bool { return serverSockets(t, port) == 0 })
}

// TestMetricsServerLeavesFileDescriptorsToTheDaemon: with RLIMIT_NOFILE
// lowered so that the scrapers' descriptors, the server's bound and a
// settle's files fit with a small margin, a storm of scrapers that keep
// their connections open never makes the daemon's own opens fail with
// EMFILE (the state file's lock failed so), and the server's descriptors
// never grow by more than MaxConnections. Before the bound, the server
// accepted connections until the process ran out of descriptors. It
// lowers the whole test process's limit, so it must not run in parallel
// with other tests.
func TestMetricsServerLeavesFileDescriptorsToTheDaemon(t *testing.T) {
	needProc(t)
	const maxConns, clients, settleFiles, margin = 4, 100, 32, 16
	dir := t.TempDir()
	for i := range settleFiles {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr, port, _ := startMetrics(t, t.Context(), metricsServerConfig{MaxConnections: maxConns, IdleTimeout: 200 * time.Millisecond})

	// The budget: what is open now (the listener included), each client's
	// end, the server's bound, a settle's files, a small margin (the
	// /proc reads of serverSockets, the runtime).
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	budget := uint64(len(fds) + clients + maxConns + settleFiles + margin)
	if saved.Cur < budget {
		t.Skipf("RLIMIT_NOFILE %d < %d", saved.Cur, budget)
	}
	lowered := saved
	lowered.Cur = budget
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
			t.Error(err)
		}
	})

	// The daemon's work meanwhile: a settle opens its files, as it opens
	// /proc/irq and the state file's lock, then closes them.
	settles := 0
	var settleErr error
	settle := func() {
		var open []*os.File
		defer func() {
			for _, f := range open {
				f.Close()
			}
		}()
		for i := range settleFiles {
			f, err := os.Open(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				if settleErr == nil {
					settleErr = err
				}
				return
			}
			open = append(open, f)
		}
		settles++
	}
	most := 0
	errs := storm(addr, clients, func() {
		if settle(); settleErr != nil {
			t.Fatalf("the daemon's own open failed during the storm: %v", settleErr)
		}
		most = max(most, serverSockets(t, port))
	})
	if settles == 0 {
		t.Error("no settle completed")
	}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients failed", failed, clients)
	}
	if most > maxConns {
		t.Errorf("the server held %d descriptors of connections at once, want at most %d", most, maxConns)
	}
}

// TestMetricsServerWarnsWhenNotLoopback: listening on every address logs
// a warning saying who can scrape and what to do; a loopback address
// does not.
func TestMetricsServerWarnsWhenNotLoopback(t *testing.T) {
	for _, tc := range []struct {
		address string
		warn    bool
	}{
		{"127.0.0.1:0", false},
		{"[::1]:0", false},
		{"localhost:0", false},
		{"0.0.0.0:0", true},
		{"[::]:0", true},
		{":0", true},
	} {
		t.Run(tc.address, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			addr, stop, err := serveMetricsOn(t.Context(), metricsServerConfig{Address: tc.address, Logger: logger}, http.NotFoundHandler())
			if err != nil {
				switch tc.address {
				case "127.0.0.1:0", "0.0.0.0:0", ":0":
					t.Fatal(err)
				}
				t.Skipf("%s: %v (no IPv6 here?)", tc.address, err)
			}
			stop()
			logs := buf.String()
			if !strings.Contains(logs, "msg=\"serving metrics\"") || !strings.Contains(logs, addr.String()) {
				t.Errorf("no serving message with the address %s:\n%s", addr, logs)
			}
			warned := strings.Contains(logs, "level=WARN")
			if warned != tc.warn {
				t.Errorf("listening on %s (%s): warned %v, want %v:\n%s", tc.address, addr, warned, tc.warn, logs)
			}
			if tc.warn {
				for _, want := range []string{"anyone who can reach it can scrape", "127.0.0.1", "NetworkPolicy", "firewall"} {
					if !strings.Contains(logs, want) {
						t.Errorf("the warning lacks %q:\n%s", want, logs)
					}
				}
			}
		})
	}
}

// TestMetricsServerStopFreesPort: when stop returns, the port is free and
// the server holds no connection, not even one in the middle of a request
// (which Shutdown alone would leave open); a second stop does nothing.
// Cancelling the context stops the server too.
func TestMetricsServerStopFreesPort(t *testing.T) {
	needProc(t)
	t.Run("stop", func(t *testing.T) {
		addr, port, stop := startMetrics(t, t.Context(), metricsServerConfig{
			ReadHeaderTimeout: time.Hour, ReadTimeout: time.Hour, IdleTimeout: time.Hour})
		if err := scrape(addr); err != nil {
			t.Fatal(err)
		}
		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		// Half a request: the connection is active, and stays so.
		if _, err := io.WriteString(idle, "GET /metrics HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server did not accept the connection", func() bool { return serverSockets(t, port) == 1 })
		stop()
		if n := serverSockets(t, port); n != 0 {
			t.Errorf("after stop the server holds %d connections", n)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("after stop, %s is not free: %v", addr, err)
		}
		ln.Close()
		stop()
		_ = idle.SetReadDeadline(time.Now().Add(metricsTestDeadline))
		if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the half-request connection after stop: %v, want it closed", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		addr, _, stop := startMetrics(t, ctx, metricsServerConfig{})
		if err := scrape(addr); err != nil {
			t.Fatal(err)
		}
		cancel()
		waitFor(t, "the port is still in use after the context was cancelled", func() bool {
			ln, err := net.Listen("tcp", addr)
			if err == nil {
				ln.Close()
			}
			return err == nil
		})
		stop()
	})
}

// TestMetricsHandlerLimitsRequestsInFlight: with
// defaultMetricsMaxRequestsInFlight gathers running, one more request is
// answered 503 at once instead of queueing another gather.
func TestMetricsHandlerLimitsRequestsInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	entered := make(chan struct{})
	release := make(chan struct{})
	reg.MustRegister(blockingCollector{entered: entered, release: release})
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	a, stop, err := serveMetricsOn(t.Context(), metricsServerConfig{Address: "127.0.0.1:0"}, mux)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := a.String()
	client := &http.Client{Timeout: metricsTestDeadline, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (int, error) {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	for range defaultMetricsMaxRequestsInFlight {
		wg.Go(func() {
			if code, err := get(); err != nil || code != http.StatusOK {
				t.Errorf("a gather in flight: %d, %v", code, err)
			}
		})
	}
	for i := range defaultMetricsMaxRequestsInFlight {
		select {
		case <-entered:
		case <-time.After(metricsTestDeadline):
			t.Fatalf("only %d gathers started", i)
		}
	}
	code, err := get()
	releaseOnce.Do(func() { close(release) })
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("one request more than %d in flight: %d, %v, want 503", defaultMetricsMaxRequestsInFlight, code, err)
	}
}

// blockingCollector's Collect waits for release after saying it started.
type blockingCollector struct{ entered, release chan struct{} }

var blockingDesc = prometheus.NewDesc("irqshift_test_blocking", "Blocks.", nil, nil)

func (c blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- blockingDesc }
func (c blockingCollector) Collect(ch chan<- prometheus.Metric) {
	c.entered <- struct{}{}
	<-c.release
	ch <- prometheus.MustNewConstMetric(blockingDesc, prometheus.GaugeValue, 1)
}

// TestMetricsConnectionsCappedByFDLimit: the bound stays within a quarter
// of the descriptor limit.
func TestMetricsConnectionsCappedByFDLimit(t *testing.T) {
	for _, tc := range []struct {
		n     int
		limit uint64
		want  int
	}{
		{16, 1 << 20, 16},
		{16, 68, 16}, // 17 descriptors = 68/4
		{16, 67, 15},
		{16, 40, 9},
		{16, 4, 1},
		{16, 0, 1},
		{16, ^uint64(0), 16},
	} {
		if got := capConnections(tc.n, tc.limit); got != tc.want {
			t.Errorf("capConnections(%d, %d) = %d, want %d", tc.n, tc.limit, got, tc.want)
		}
	}
}
