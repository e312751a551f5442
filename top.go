package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/irqshift/irqshift/internal/ctxsleep"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/top"
)

// The live view draws with golang.org/x/term (raw mode, the terminal's
// size) and a few ANSI escape sequences, not with a full-screen
// framework: a frame is plain text made by top.Render, the one renderer of
// --once, of the golden tests and of the live view, so the live view
// needs nothing but to put that text on the screen. A framework would add
// dependencies and a second way of drawing that no test could see.
const (
	// enterScreen switches to the alternate screen, which keeps the
	// operator's scrollback intact, and hides the cursor.
	enterScreen = "\x1b[?1049h\x1b[?25l"
	// leaveScreen shows the cursor and goes back to the normal screen as
	// it was before top started.
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	// home moves the cursor to the top left; eraseLine clears to the end
	// of the line and eraseBelow to the end of the screen, so a frame
	// overwrites the last without a flash of a cleared screen.
	home       = "\x1b[H"
	eraseLine  = "\x1b[K"
	eraseBelow = "\x1b[J"
)

// minInterval bounds --interval from below: a shorter window reads
// /proc/interrupts and every /proc/irq/N many times a second for rates
// that are mostly noise.
const minInterval = 100 * time.Millisecond

func topCommand(stdout, stderr io.Writer, getenv func(string) string) *cli.Command {
	var keys []string
	for _, k := range top.SortKeys {
		keys = append(keys, string(k))
	}
	return &cli.Command{
		Name:  "top",
		Usage: "a live view of interrupts: the rate of each CPU by NUMA node (marked when offline, banned, isolated or drained) and the busiest IRQs; q quits",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "print one frame after one interval and exit"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "the sampling window and refresh period"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object per refresh, one a line"},
			&cli.BoolFlag{Name: "ebpf", Usage: "count with eBPF (irq/irq_handler_entry; needs root) instead of /proc/interrupts"},
			&cli.StringFlag{Name: "sort", Value: string(top.SortRate), Usage: "order of the IRQ table: " + strings.Join(keys, ", ") + " (keys r, i, c, n in the live view)"},
		},
		Action: withOptions(stdout, stderr, getenv, false, noArgs(cmdTop)),
	}
}

// cmdTop samples, builds and draws frames: one with --once, one after
// another on a pipe or with --json, and the live view on a terminal.
func cmdTop(c *cli.Context, o *options) error {
	interval := c.Duration("interval")
	if interval < minInterval {
		return usageError("--interval: %s is shorter than %s", interval, minInterval)
	}
	sortKey, ok := top.ParseSortKey(c.String("sort"))
	if !ok {
		return usageError("--sort: %s is not one of rate, irq, cpu, name", quote.Quote(c.String("sort")))
	}
	req := ops.TopRequest{Interval: interval}
	if c.Bool("ebpf") {
		counter, err := ops.OpenTopCounter(o.fs)
		if err != nil {
			return err
		}
		defer counter.Close()
		req.Counter = counter
	}
	view := top.View{Width: top.DefaultWidth, Sort: sortKey}
	out, outIsTerminal := terminalOf(o.stdout)
	if outIsTerminal {
		if width, _, err := term.GetSize(int(out.Fd())); err == nil && width > 0 {
			view.Width = width
		}
	}
	ctx := c.Context
	if c.Bool("once") {
		report, err := ops.Top(ctx, o.env, req)
		if err != nil {
			return interrupted(ctx, err)
		}
		return writeFrame(o.stdout, report.Frame(), view, o.json)
	}
	if _, inIsTerminal := terminalOf(os.Stdin); o.json || !outIsTerminal || !inIsTerminal {
		return streamFrames(ctx, o, req, view)
	}
	return liveView(ctx, o, req, view, os.Stdin, out)
}

// terminalOf returns w's file when it is a terminal.
func terminalOf(w any) (*os.File, bool) {
	f, ok := w.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// interrupted maps the error of a cancelled sample (SIGINT, SIGTERM) to
// ops.ErrInterrupted.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: top stopped before its frame", ops.ErrInterrupted)
	}
	return err
}

func writeFrame(w io.Writer, f top.Frame, view top.View, asJSON bool) error {
	if asJSON {
		return top.WriteJSON(w, f)
	}
	_, err := io.WriteString(w, top.Render(f, view))
	return err
}

// streamFrames prints a frame per interval, each window starting where the
// last ended, until SIGINT or SIGTERM, which end it without an error.
func streamFrames(ctx context.Context, o *options, req ops.TopRequest, view top.View) error {
	for first := true; ; first = false {
		report, err := ops.Top(ctx, o.env, req)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if !first && !o.json {
			fmt.Fprintln(o.stdout)
		}
		if err := writeFrame(o.stdout, report.Frame(), view, o.json); err != nil {
			return err
		}
		req.Since = report
	}
}

// sampled is the outcome of one window of the live view.
type sampled struct {
	report *ops.TopReport
	err    error
}

// liveView runs the full-screen view until q, Ctrl-C, SIGINT, SIGTERM or
// SIGHUP. The terminal is put back (cooked mode, the normal screen, the
// cursor) on every way out, a panic of this goroutine included; the
// sampling goroutine turns its panics into errors, so none escapes past
// the restore.
func liveView(ctx context.Context, o *options, req ops.TopRequest, view top.View, in, out *os.File) (err error) {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	saved, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return fmt.Errorf("top: the terminal refuses raw mode: %w", err)
	}
	defer func() {
		if rerr := term.Restore(int(in.Fd()), saved); rerr != nil && err == nil {
			err = fmt.Errorf("top: restoring the terminal: %w", rerr)
		}
	}()
	if _, err := io.WriteString(out, enterScreen); err != nil {
		return err
	}
	defer io.WriteString(out, leaveScreen)

	resized := make(chan os.Signal, 1)
	signal.Notify(resized, syscall.SIGWINCH)
	defer signal.Stop(resized)
	keys := make(chan byte, 16)
	go readKeys(in, keys)

	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	// One window at a time, so a buffer of one never blocks the sampler
	// after the view is gone.
	results := make(chan sampled, 1)
	sample := func(since *ops.TopReport, after time.Duration) {
		r := req
		r.Since = since
		go func() {
			var res sampled
			defer func() {
				if p := recover(); p != nil {
					res = sampled{err: fmt.Errorf("top: %v", p)}
				}
				results <- res
			}()
			if after > 0 {
				if err := ctxsleep.Sleep(sampleCtx, after); err != nil {
					res.err = err
					return
				}
			}
			res.report, res.err = ops.Top(sampleCtx, o.env, r)
		}()
	}

	var shown, latest *top.Frame
	var last *ops.TopReport
	status := ""
	draw := func() error {
		view.Width, view.Height = top.DefaultWidth, 24
		if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
			view.Width, view.Height = w, h
		}
		view.Live, view.Status = true, status
		text := fmt.Sprintf("irqshift top: sampling the first %s window...\n", req.Interval)
		if shown != nil {
			text = top.Render(*shown, view)
		}
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		// The last line ends without a newline: one more would scroll a
		// full screen by a line.
		screen := home + strings.Join(lines, eraseLine+"\r\n") + eraseLine + eraseBelow
		_, err := io.WriteString(out, screen)
		return err
	}
	sample(nil, 0)
	if err := draw(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case key, ok := <-keys:
			if !ok {
				return nil // the terminal is gone
			}
			switch key {
			case 'q', 'Q', 3, 4: // Ctrl-C and Ctrl-D arrive as bytes in raw mode
				return nil
			case 'p', ' ':
				view.Paused = !view.Paused
				if !view.Paused {
					shown = latest
				}
			default:
				if k, ok := top.SortKeyOf(key); ok {
					view.Sort = k
				}
			}
		case <-resized:
		case res := <-results:
			if res.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Keep the last frame and its counts; try again after an
				// interval, so a file that stays unreadable is not read
				// in a loop.
				status = res.err.Error()
				sample(last, req.Interval)
				break
			}
			last, status = res.report, ""
			frame := last.Frame()
			latest = &frame
			if !view.Paused {
				shown = latest
			}
			sample(last, 0)
		}
		if err := draw(); err != nil {
			return err
		}
	}
}

// readKeys sends the bytes typed to keys, and closes it when the terminal
// can no longer be read. It blocks in read until then, past the end of the
// view: the process exits soon after.
func readKeys(in io.Reader, keys chan<- byte) {
	defer close(keys)
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			keys <- b
		}
		if err != nil {
			return
		}
	}
}
