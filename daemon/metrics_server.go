package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// The metrics server's defaults. Its clients are few: Prometheus scrapes a
// target over one keep-alive connection (an HA pair makes two), the
// kubelet's probes open one per probe and close it, an admin's curl one
// more. Anything beyond that is a client to be kept from hurting the daemon.
const (
	// defaultMetricsMaxConnections bounds the connections the server holds
	// at once: a handful is all its clients need, and 16 connections and
	// the listener are 17 file descriptors and ~1 MiB at most. Connections
	// beyond it wait in the kernel's listen backlog, which costs the
	// process no descriptor and no memory, until one is closed.
	defaultMetricsMaxConnections = 16
	// defaultMetricsIdleTimeout closes a keep-alive connection that has sent
	// no request for this long: twice the 30 s scrape interval of
	// deploy/prometheus/scrape.yaml, so Prometheus keeps its connection
	// between scrapes, while one left open by anyone else gives its slot
	// back within a minute.
	defaultMetricsIdleTimeout = 60 * time.Second
	// defaultMetricsReadHeaderTimeout bounds the wait for a request's
	// headers: a scraper sends its few hundred bytes at once, so 5 s is
	// lenient on a slow network and stops a client that dribbles them
	// (slowloris) from holding a slot.
	defaultMetricsReadHeaderTimeout = 5 * time.Second
	// defaultMetricsReadTimeout bounds reading a whole request. A scrape is
	// a GET without a body: twice the header timeout is plenty.
	defaultMetricsReadTimeout = 10 * time.Second
	// defaultMetricsWriteTimeout bounds gathering and writing a response
	// (tens of KiB, gathered in milliseconds). It is three times
	// Prometheus's default 10 s scrape timeout, after which Prometheus has
	// given up anyway, and frees the slot of a client that stops reading.
	defaultMetricsWriteTimeout = 30 * time.Second
	// defaultMetricsMaxRequestsInFlight bounds the gathers running at once:
	// two Prometheus replicas and the kubelet's two probes. A request
	// beyond it is answered 503 at once rather than queued.
	defaultMetricsMaxRequestsInFlight = 4
)

const (
	// metricsMaxHeaderBytes bounds a request's headers (net/http's default
	// is 1 MiB a connection). Prometheus sends well under 1 KiB.
	metricsMaxHeaderBytes = 16 << 10
	// metricsShutdownTimeout is how long stop lets a request in progress
	// finish before it closes the connection.
	metricsShutdownTimeout = 2 * time.Second
	// metricsFDShare: the server never holds more than this fraction of
	// RLIMIT_NOFILE's soft limit, so the rest stays for the daemon's own
	// files (/proc, /sys, the state file and its lock).
	metricsFDShare = 4
)

// metricsServerConfig configures serveMetricsOn. A zero field takes its
// Default* value.
type metricsServerConfig struct {
	// Address is the TCP host:port to listen on, as net.Listen takes it:
	// 127.0.0.1:9815, [::1]:9815, :9815 (every address: reachable from
	// the network).
	Address string
	// MaxConnections bounds the connections held at once; it is capped so
	// that they and the listener take at most a quarter of RLIMIT_NOFILE.
	MaxConnections int
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout and WriteTimeout are http.Server's.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	// Logger receives the server's messages; nil discards them.
	Logger *slog.Logger
}

// metricsHandler serves reg's metrics in the Prometheus exposition
// formats, at most defaultMetricsMaxRequestsInFlight requests at once.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg,
		MaxRequestsInFlight: defaultMetricsMaxRequestsInFlight,
	})
}

// serveMetricsOn listens on cfg.Address and serves h (metricsHandler's, on
// the caller's paths) until ctx is done or stop is called. It returns the
// address it listens on. The server holds at most cfg.MaxConnections
// connections and the listener, so it never takes the file descriptors
// the daemon needs however many clients connect, and it closes idle,
// slow and stalled connections (see the Default* values). A listen
// address other than a loopback one is logged as a warning: anyone who
// can reach the port can scrape it.
//
// stop closes the listener, lets requests in progress finish for up to
// 2 s, closes every connection left and returns when the server is done;
// it may be called more than once.
func serveMetricsOn(ctx context.Context, cfg metricsServerConfig, h http.Handler) (addr net.Addr, stop func(), err error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxConns := orDefault(cfg.MaxConnections, defaultMetricsMaxConnections)
	if limit, ok := fdSoftLimit(); ok {
		if capped := capConnections(maxConns, limit); capped < maxConns {
			logger.Warn("metrics connections capped to leave file descriptors to the daemon",
				"max_connections", capped, "requested", maxConns, "rlimit_nofile", limit)
			maxConns = capped
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, nil, err
	}
	addr = ln.Addr()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(cfg.ReadHeaderTimeout, defaultMetricsReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.ReadTimeout, defaultMetricsReadTimeout),
		WriteTimeout:      orDefault(cfg.WriteTimeout, defaultMetricsWriteTimeout),
		IdleTimeout:       orDefault(cfg.IdleTimeout, defaultMetricsIdleTimeout),
		MaxHeaderBytes:    metricsMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Beyond maxConns, Accept waits: the connections queue in the
		// kernel's backlog and take no descriptor of this process.
		if err := srv.Serve(netutil.LimitListener(ln, maxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	logger.Info("serving metrics", "address", addr.String(), "max_connections", maxConns,
		"idle_timeout", srv.IdleTimeout)
	if !isLoopback(addr) {
		logger.Warn("the metrics address is not a loopback address: anyone who can reach it can scrape the metrics; "+
			"listen on 127.0.0.1 or [::1], or allow only Prometheus with a NetworkPolicy or a firewall",
			"address", addr.String())
	}

	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsShutdownTimeout)
			defer cancel()
			if srv.Shutdown(sctx) != nil {
				// Requests still in progress: drop them, so their
				// descriptors are freed now.
				_ = srv.Close()
			}
		})
	}
	unwatch := context.AfterFunc(ctx, shutdown)
	return addr, func() {
		unwatch()
		shutdown()
		<-done
	}, nil
}

// isLoopback tells whether a listener's address is reachable from this
// host only. The unspecified address (0.0.0.0, [::]) is every address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// capConnections returns n, or less if n connections and the listener
// would take more than 1/metricsFDShare of the descriptor limit (at least
// one connection).
func capConnections(n int, fdLimit uint64) int {
	budget := fdLimit / metricsFDShare
	if budget > uint64(n) {
		return n
	}
	return max(1, int(budget)-1)
}

// fdSoftLimit returns RLIMIT_NOFILE's soft limit (which Go raises to the
// hard one at start).
func fdSoftLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}

// orDefault returns v, or def when v is zero or negative.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
