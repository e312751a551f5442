package sysfs

import (
	"strconv"
	"strings"
	"testing"
)

// TestReleaseReadBuffers: the /proc/interrupts read buffer is kept between reads, given back by
// ReleaseReadBuffers, and then allocated again in one piece at the size the file last had, not
// regrown from 64 KB (which cost a third of a big machine's read when a sync.Pool dropped it).
func TestReleaseReadBuffers(t *testing.T) {
	var b strings.Builder
	b.WriteString("           CPU0       CPU1\n")
	for irq := 16; b.Len() < 200<<10; irq++ { // larger than the first 64 KB buffer
		b.WriteString(" " + strconv.Itoa(irq) + ":          1          2  ITS-PCI-MSIX-0000:00:02.0   2 Edge      virtio2-req.1\n")
	}
	content := b.String()
	fs := writeTree(t, map[string]string{"proc/interrupts": content})
	t.Cleanup(ReleaseReadBuffers)

	if _, err := fs.Interrupts(); err != nil {
		t.Fatal(err)
	}
	kept := takeInterruptsBuf()
	if cap(kept) < len(content) {
		t.Fatalf("kept buffer cap %d, want >= the file's %d bytes", cap(kept), len(content))
	}
	putInterruptsBuf(kept)

	ReleaseReadBuffers()
	interruptsBuf.Lock()
	dropped := interruptsBuf.b == nil
	interruptsBuf.Unlock()
	if !dropped {
		t.Fatal("ReleaseReadBuffers kept the buffer")
	}
	again := takeInterruptsBuf()
	if cap(again) < len(content)+len(content)/8 {
		t.Errorf("buffer after a release: cap %d, want the last file's %d bytes plus an eighth in one allocation", cap(again), len(content))
	}
	putInterruptsBuf(again)
	in, err := fs.Interrupts()
	if err != nil {
		t.Fatal(err)
	}
	if len(in.IRQs) == 0 || in.IRQs[0].IRQ != 16 {
		t.Fatalf("parsed %d rows after the release, first %+v", len(in.IRQs), in.IRQs[:min(1, len(in.IRQs))])
	}
}
