//go:build vm

package vmtest

// Interrupt load without any network traffic: /dev/hwrng (virtio-rng over PCI MSI and over
// virtio-mmio, a GIC SPI) and O_DIRECT reads of /dev/vda (the managed virtio-blk queues). The
// counts come from /proc/interrupts, read by the test.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const hwrngDir = "/sys/class/misc/hw_random"

// countDelta is after-before of one IRQ, per CPU, and its total.
func countDelta(before, after map[int]map[int]uint64, irq int) (map[int]uint64, uint64) {
	d := map[int]uint64{}
	var sum uint64
	for c, v := range after[irq] {
		if w := before[irq][c]; v >= w {
			d[c] = v - w
			sum += v - w
		}
	}
	return d, sum
}

func deltaText(d map[int]uint64) string {
	var cpus []int
	for c := range d {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	var parts []string
	for _, c := range cpus {
		parts = append(parts, fmt.Sprintf("CPU%d +%d", c, d[c]))
	}
	return strings.Join(parts, ", ")
}

// readHwrng reads /dev/hwrng in 64-byte pieces (about one interrupt each) for about d.
func readHwrng(t *testing.T, d time.Duration) int {
	t.Helper()
	f, err := os.Open("/dev/hwrng")
	if err != nil {
		t.Fatalf("open /dev/hwrng: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		k, err := f.Read(buf)
		if err != nil {
			t.Fatalf("read /dev/hwrng after %d bytes: %v", n, err)
		}
		n += k
	}
	return n
}

// rngRows returns the /proc/interrupts rows of devices bound to virtio_rng.
func rngRows(t *testing.T) map[int]irqRow {
	t.Helper()
	m := map[int]irqRow{}
	for _, r := range readInterrupts(t) {
		if dev := virtioDevOf(r.Actions); dev != "" {
			if drv, _ := virtioDriver(dev); drv == "virtio_rng" {
				m[r.IRQ] = r
			}
		}
	}
	return m
}

// TestLoadHwrngFollowsIRQ: for each virtio-rng (PCI: an MSI; virtio-mmio: a GIC SPI), reading
// /dev/hwrng makes its IRQ fire on its effective CPU; after `irqshift drain <that CPU>` the next
// load's interrupts land on the new effective CPU.
func TestLoadHwrngFollowsIRQ(t *testing.T) {
	needIrqshift(t, 2)
	avail := strings.Fields(readTrim(t, filepath.Join(hwrngDir, "rng_available")))
	var rngs []string
	for _, a := range avail {
		if a != "none" {
			rngs = append(rngs, a)
		}
	}
	if len(rngs) == 0 {
		t.Fatalf("no hardware RNG in %s/rng_available (%q); the VM has virtio-rng-pci and virtio-rng-device", hwrngDir, avail)
	}
	orig := readTrim(t, filepath.Join(hwrngDir, "rng_current"))
	t.Cleanup(func() {
		if orig != "" && orig != "none" {
			if err := os.WriteFile(filepath.Join(hwrngDir, "rng_current"), []byte(orig), 0o644); err != nil {
				t.Errorf("restore rng_current %q: %v", orig, err)
			}
		}
	})
	const loadFor = time.Second
	kinds := map[string]bool{}
	for _, name := range rngs {
		t.Run(name, func(t *testing.T) {
			restoreAtEnd(t)
			if err := os.WriteFile(filepath.Join(hwrngDir, "rng_current"), []byte(name), 0o644); err != nil {
				t.Fatalf("select %s: %v", name, err)
			}
			readHwrng(t, 50*time.Millisecond) // warm up
			rows := rngRows(t)

			// Load 1: find the IRQ that fires, and check it fires on its effective CPU.
			before := readCounts(t)
			bytesRead := readHwrng(t, loadFor)
			after := readCounts(t)
			irq, best := -1, uint64(0)
			for n := range rows {
				if _, sum := countDelta(before, after, n); sum > best {
					irq, best = n, sum
				}
			}
			if irq < 0 || best < 20 {
				t.Fatalf("%s: %d bytes from /dev/hwrng raised only %d interrupts on the virtio-rng IRQs %v", name, bytesRead, best, rows)
			}
			row := rows[irq]
			kind := "MSI"
			if isSPI(row) {
				kind = "GIC SPI"
			}
			kinds[kind] = true
			eff := effCPUs(t, irq)
			if len(eff) != 1 {
				t.Fatalf("IRQ %d (%s): effective %v, want one CPU", irq, row.Actions, eff)
			}
			from := eff[0]
			d1, sum1 := countDelta(before, after, irq)
			t.Logf("%s: IRQ %d (%s, %s %s hwirq %d), effective CPU%d: %d bytes in %v raised %d interrupts: %s",
				name, irq, row.Actions, kind, row.Chip, row.HWIRQ, from, bytesRead, loadFor, sum1, deltaText(d1))
			if float64(d1[from]) < 0.9*float64(sum1) {
				t.Errorf("IRQ %d: %d of %d interrupts on its effective CPU%d, want > 90%%", irq, d1[from], sum1, from)
			}

			// Move it with irqshift.
			r := irqshift(t, "drain", strconv.Itoa(from), "--json")
			mustExit(t, r, 0)
			var d applyDoc
			decodeJSON(t, r, &d)
			checkResults(t, d)
			res, ok := d.result(irq)
			if !ok || res.Status != "moved" || len(res.To) != 1 || res.To[0] == from {
				t.Fatalf("drain %d: IRQ %d result %+v (found %v), want moved off CPU%d", from, irq, res, ok, from)
			}
			to := res.To[0]
			if e := effCPUs(t, irq); !sameCPUs(e, []int{to}) {
				t.Fatalf("IRQ %d: irqshift moved it to CPU%d but effective_affinity_list is %v", irq, to, e)
			}

			// Load 2: the interrupts follow.
			before = readCounts(t)
			bytesRead = readHwrng(t, loadFor)
			after = readCounts(t)
			d2, sum2 := countDelta(before, after, irq)
			t.Logf("%s: after irqshift drain %d, IRQ %d effective CPU%d: %d bytes raised %d interrupts: %s",
				name, from, irq, to, bytesRead, sum2, deltaText(d2))
			if sum2 < 20 {
				t.Fatalf("IRQ %d: only %d interrupts in the second load", irq, sum2)
			}
			if float64(d2[to]) <= 0.9*float64(sum2) {
				t.Errorf("IRQ %d: %d of %d interrupts on the new effective CPU%d, want > 90%%", irq, d2[to], sum2, to)
			}
			if float64(d2[from]) >= 0.1*float64(sum2) {
				t.Errorf("IRQ %d: %d of %d interrupts still on the drained CPU%d", irq, d2[from], sum2, from)
			}
		})
	}
	if !kinds["GIC SPI"] || !kinds["MSI"] {
		t.Errorf("loaded RNG IRQ kinds %v, want both an MSI (virtio-rng-pci) and a GIC SPI (virtio-rng-device)", kinds)
	}
}

// TestLoadDirectIOBlkQueues: O_DIRECT reads of /dev/vda (the harness's disk image) raise the
// managed virtio-blk queue IRQs (the queue of whichever CPU submitted each read).
func TestLoadDirectIOBlkQueues(t *testing.T) {
	mustRoot(t)
	queues := blkQueues(readInterrupts(t))
	if len(queues) == 0 {
		t.Fatal("no virtio-blk queue IRQs")
	}
	sectors, err := strconv.ParseInt(readTrim(t, "/sys/block/vda/size"), 10, 64)
	if err != nil || sectors < 8 {
		t.Fatalf("/sys/block/vda/size: %v %d", err, sectors)
	}
	fd, err := syscall.Open("/dev/vda", syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatalf("open /dev/vda O_DIRECT: %v", err)
	}
	defer syscall.Close(fd)
	const block = 4096
	buf, err := syscall.Mmap(-1, 0, block, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(buf) }()
	blocks := sectors * 512 / block
	const reads = 64
	before := readCounts(t)
	for i := int64(0); i < reads; i++ {
		off := (i * 7 % blocks) * block
		n, err := syscall.Pread(fd, buf, off)
		if err != nil || n != block {
			t.Fatalf("pread /dev/vda at %d: %d bytes, %v", off, n, err)
		}
	}
	after := readCounts(t)
	var total uint64
	for _, q := range queues {
		d, sum := countDelta(before, after, q.IRQ)
		total += sum
		t.Logf("%s (IRQ %d, affinity %s): +%d (%s)", q.Actions, q.IRQ, affinity(t, q.IRQ), sum, deltaText(d))
	}
	t.Logf("%d O_DIRECT reads of %d bytes raised %d virtio-blk queue interrupts", reads, block, total)
	if total == 0 {
		t.Errorf("%d O_DIRECT reads of /dev/vda raised no virtio-blk queue interrupt", reads)
	}
}
