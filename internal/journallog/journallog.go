// Package journallog gives log lines the syslog priority prefix ("<4>")
// that systemd's journal reads from a service's standard error, so that
// `journalctl -p warning -u irqshift` shows irqshift's warnings and errors.
// See sd-daemon(3): a line written to a stream the journal reads that
// starts with "<N>" is logged at priority N, the prefix removed.
package journallog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
)

// The syslog priorities of sd-daemon(3) the slog levels map to.
const (
	PriorityErr     = 3
	PriorityWarning = 4
	PriorityInfo    = 6
	PriorityDebug   = 7
)

// Priority maps a slog level to its syslog priority: error and above 3,
// warn 4, info 6, below info 7.
func Priority(level slog.Level) int {
	switch {
	case level >= slog.LevelError:
		return PriorityErr
	case level >= slog.LevelWarn:
		return PriorityWarning
	case level >= slog.LevelInfo:
		return PriorityInfo
	}
	return PriorityDebug
}

// prefixWriter writes each record's line with the prefix the handler set
// for it; a lock held across Handle keeps the prefix and its line together.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

// Write is called once per record by slog's text and JSON handlers.
func (p *prefixWriter) Write(line []byte) (int, error) {
	p.buf = append(append(p.buf[:0], p.prefix...), line...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(line), nil
}

// Handler wraps a handler that writes to the prefixWriter.
type Handler struct {
	out   *prefixWriter
	inner slog.Handler
}

// NewTextHandler returns a text handler writing to w whose lines start
// with their priority.
func NewTextHandler(w io.Writer, opts *slog.HandlerOptions) *Handler {
	out := &prefixWriter{w: w}
	return &Handler{out: out, inner: slog.NewTextHandler(out, opts)}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = append(strconv.AppendInt(append(h.out.prefix[:0], '<'), int64(Priority(r.Level)), 10), '>')
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{out: h.out, inner: h.inner.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{out: h.out, inner: h.inner.WithGroup(name)}
}
