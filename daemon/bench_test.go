package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/hotplug"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// bigSizes are the simulated machines of the event benchmarks: a 2-socket
// 64-core server and the 256 CPUs × 4096 IRQs in 4 nodes.
var bigSizes = []struct{ cpus, nodes, irqs int }{{64, 2, 1024}, {256, 4, 4096}}

// balances are the planners the event benchmarks run: counts only, and
// with rates (benchRates).
var balances = []affinity.Balance{affinity.BalanceCount, affinity.BalanceLoad}

// bigDaemonRules is a daemon (NUMA on, as `irqshift watch` runs) on a
// simulated big machine, after its start-up settle. With BalanceLoad its
// planner has rates (benchRates) and has planned with them once, so that
// the timed plans are the steady ones of a running daemon.
// With n > 0, n device rules are in force (benchRules).
func bigDaemonRules(b *testing.B, cpus, nodes, irqs int, balance affinity.Balance, n int) (*Daemon, *sysfstest.Sim) {
	b.Helper()
	sim := sysfstest.New(b, sysfstest.Big(cpus, nodes, irqs))
	var set *rules.Set
	if n > 0 {
		set = benchRules(b, cpus, n)
	}
	d := &Daemon{Engine: affinity.NewEngine(affinity.EngineConfig{FS: sim.FS(), Kernel: sim, Hotplug: sim, NUMA: true, Balance: balance, Rules: set})}
	d.Engine.SetTrackPins(true)
	d.Engine.SetCacheStaticCPUs(true)
	d.Engine.SetNoCounts(true)
	s, err := d.settle(context.Background(), "start", nil, true, false, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	if balance == affinity.BalanceLoad {
		d.Engine.SetRates(benchRates(s.State.IRQs))
		if _, err := d.settle(context.Background(), "check", nil, true, false, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	return d, sim
}

// benchRules writes n rules into a rules directory and loads it, as an
// operator's set_irq_affinity script turned into rules might read: half
// place one device's queues on eight CPUs, a quarter name queues by an
// action glob, the rest name drivers or devices the machine has not (so
// every IRQ is tried against every rule before none matches).
func benchRules(b *testing.B, cpus, n int) *rules.Set {
	b.Helper()
	var text strings.Builder
	for k := range n {
		first := (8 * k) % cpus
		span := fmt.Sprintf("%d-%d", first, min(first+7, cpus-1))
		fmt.Fprintf(&text, "[[rule]]\nname = \"r%d\"\n", k)
		switch {
		case k < n/2:
			fmt.Fprintf(&text, "device = \"%04x:%02x:00.0\"\ncpus = \"%s\"\n", (k+1)/256, (k+1)%256, span)
		case k < 3*n/4:
			fmt.Fprintf(&text, "actions = \"dev%d-q*\"\ncpus = \"%s\"\n", k, span)
		default:
			fmt.Fprintf(&text, "driver = \"absent%d\"\ncpus = \"%s\"\n", k, span)
		}
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "50-bench.toml"), []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	set, err := rules.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// benchRates gives a busy server's rates: one movable IRQ in eight busy
// (200 to 5200 interrupts a second, as NIC queues and NVMe completions),
// the others nearly idle.
func benchRates(irqs []affinity.IRQ) affinity.Rates {
	rates := affinity.Rates{}
	for i, irq := range irqs {
		if i%8 == 1 {
			rates[affinity.Key(irq)] = float64(200 + (i*37)%5000)
		} else {
			rates[affinity.Key(irq)] = float64(i%5) / 10
		}
	}
	return rates
}

// BenchmarkOfflineEvent is the daemon's reaction to one CPU offline: from
// the uevent's arrival to the end of the last affinity write (the
// reaction_ms of its log), through the quick settle (LoadChanged, plan,
// single-CPU writes, each read back). The kernel side is the simulator:
// its offline is done before the clock starts, as the kernel's is before
// the uevent. Between iterations, untimed, the daemon's recheck runs and
// the CPU comes back. Goal: ≤ 5 ms on 256 × 4096 × 4 nodes.
func BenchmarkOfflineEvent(b *testing.B) {
	for _, size := range bigSizes {
		for _, balance := range balances {
			b.Run(fmt.Sprintf("%s-%dx%dx%d", balance, size.cpus, size.irqs, size.nodes), func(b *testing.B) {
				benchOfflineEvent(b, size.cpus, size.nodes, size.irqs, balance, 0)
			})
		}
	}
	// With 100 device rules (benchRules), on the big machine.
	b.Run("load-100rules-256x4096x4", func(b *testing.B) { benchOfflineEvent(b, 256, 4, 4096, affinity.BalanceLoad, 100) })
}

func benchOfflineEvent(b *testing.B, cpus, nodes, irqs int, balance affinity.Balance, nrules int) {
	{
		{
			size := struct{ cpus, nodes, irqs int }{cpus, nodes, irqs}
			d, sim := bigDaemonRules(b, size.cpus, size.nodes, size.irqs, balance, nrules)
			ctx := context.Background()
			var reactions []time.Duration
			moved := 0
			cpu := 0
			for b.Loop() {
				b.StopTimer()
				cpu = cpu%(size.cpus-1) + 1 // CPU0 stays
				if err := sim.SetCPUOnline(cpu, false); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				// Received after StartTimer, which stops the world to read
				// the memory statistics.
				batch := []hotplug.Event{{Action: hotplug.Offline, CPU: cpu, Received: time.Now()}}
				s, err := d.settle(ctx, "offline", batch, true, true, time.Time{})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if s.Full {
					b.Fatal("the offline took a full snapshot")
				}
				reactions = append(reactions, s.Reaction)
				moved += countWrites(s.Results)
				if _, err := d.settle(ctx, "recheck", batch, true, false, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if err := sim.SetCPUOnline(cpu, true); err != nil {
					b.Fatal(err)
				}
				back := []hotplug.Event{{Action: hotplug.Online, CPU: cpu, Received: time.Now()}}
				if _, err := d.settle(ctx, "online", back, true, true, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.settle(ctx, "recheck", back, true, false, time.Time{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			slices.Sort(reactions)
			b.ReportMetric(float64(reactions[len(reactions)/2].Microseconds())/1000, "median-reaction-ms")
			b.ReportMetric(float64(moved)/float64(len(reactions)), "writes/op")
		}
	}
}

// BenchmarkFullSettle is the daemon's full settle (start, recheck,
// resync, check interval) on a balanced machine: the whole snapshot (the
// static CPU files cached, as the daemon does), classify, plan, and the
// writes the plan needs (none once balanced). Goal: ≤ 40 ms on 256 × 4096
// × 4 nodes.
func BenchmarkFullSettle(b *testing.B) {
	run := func(b *testing.B, cpus, nodes, irqs int, balance affinity.Balance, nrules int) {
		d, _ := bigDaemonRules(b, cpus, nodes, irqs, balance, nrules)
		ctx := context.Background()
		for b.Loop() {
			if _, err := d.settle(ctx, "check", nil, true, false, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, size := range bigSizes {
		for _, balance := range balances {
			b.Run(fmt.Sprintf("%s-%dx%dx%d", balance, size.cpus, size.irqs, size.nodes), func(b *testing.B) {
				run(b, size.cpus, size.nodes, size.irqs, balance, 0)
			})
		}
	}
	b.Run("load-100rules-256x4096x4", func(b *testing.B) { run(b, 256, 4, 4096, affinity.BalanceLoad, 100) })
}
