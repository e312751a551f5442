package journallog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestPrefixes(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("unit", "irqshift")
	log.Debug("narrowed", "irq", 40)
	log.Info("moved", "irq", 41)
	log.Warn("move failed", "irq", 42)
	log.Error("could not save state")
	log.WithGroup("g").Log(context.Background(), slog.LevelError+4, "worse")
	want := []string{"<7>", "<6>", "<4>", "<3>", "<3>"}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, want[i]+"time=") || !strings.Contains(line, "unit=irqshift") {
			t.Errorf("line %d %q, want prefix %s and the logger's attributes", i, line, want[i])
		}
	}
}

func TestPrefixStaysWithItsLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewTextHandler(&buf, nil))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				log.Warn("w")
			} else {
				log.Error("e")
			}
		}()
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !(strings.HasPrefix(line, "<4>") && strings.HasSuffix(line, "msg=w")) && !(strings.HasPrefix(line, "<3>") && strings.HasSuffix(line, "msg=e")) {
			t.Errorf("line %q has another record's priority", line)
		}
	}
}
