package affinity

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
)

// writeBigTree lays out a /proc and /sys tree of a large arm64 server:
// ncpu CPUs, nirq IRQs (a few PPIs, then SPIs, then ITS MSIs, every
// eighth one managed), in the kernel's formats.
func writeBigTree(tb testing.TB, ncpu, nirq int) sysfs.FS {
	tb.Helper()
	root := tb.TempDir()
	write := func(rel, content string) {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	all := fmt.Sprintf("0-%d\n", ncpu-1)
	for _, f := range []string{"possible", "present", "online"} {
		write("sys/devices/system/cpu/"+f, all)
	}
	var b strings.Builder
	b.WriteString("     ")
	for c := range ncpu {
		fmt.Fprintf(&b, "CPU%-8d", c)
	}
	b.WriteString("\n")
	for i := range nirq {
		irq := 10 + i
		chip, hwirq, action := "GICv3", 32+i, fmt.Sprintf("dev%d", i)
		effective := fmt.Sprintf("%d", i%ncpu)
		switch {
		case i < 4:
			hwirq, effective = 16+i, ""
		case i >= 512:
			chip, hwirq = "ITS-MSI", 8192+i
		}
		fmt.Fprintf(&b, "%4d: ", irq)
		for c := range ncpu {
			fmt.Fprintf(&b, "%10d ", (i*7+c)%100000)
		}
		fmt.Fprintf(&b, "%8s %5d Edge      %s\n", chip, hwirq, action)
		dir := fmt.Sprintf("proc/irq/%d/", irq)
		mask := all
		if i >= 512 && i%8 == 0 {
			mask = effective + "\n"
		}
		write(dir+"smp_affinity_list", mask)
		write(dir+"effective_affinity_list", effective+"\n")
		write(dir+"affinity_hint", "0\n")
		write(dir+"node", "0\n")
		if i >= 512 && i%8 == 0 {
			if err := os.Chmod(filepath.Join(root, dir+"smp_affinity_list"), 0o444); err != nil {
				tb.Fatal(err)
			}
		}
		kdir := fmt.Sprintf("sys/kernel/irq/%d/", irq)
		write(kdir+"actions", action+"\n")
		write(kdir+"chip_name", chip+"\n")
		write(kdir+"hwirq", fmt.Sprintf("%d\n", hwirq))
		write(kdir+"name", "edge\n")
		write(kdir+"type", "edge\n")
		write(kdir+"wakeup", "disabled\n")
	}
	for i := range 8 {
		fmt.Fprintf(&b, "IPI%d:", i)
		for range ncpu {
			fmt.Fprintf(&b, "%11d", 5)
		}
		b.WriteString("       Rescheduling interrupts\n")
	}
	b.WriteString("Err:          0\n")
	write("proc/interrupts", b.String())
	fs, err := sysfs.NewFS(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		tb.Fatal(err)
	}
	return fs
}

// BenchmarkSnapshotPlan measures what the daemon does per hotplug event
// before writing: read the whole state, classify, plan a rebalance and a
// drain. Goal: under 100 ms for 256 CPUs × 4096 IRQs.
func BenchmarkSnapshotPlan(b *testing.B) {
	for _, size := range []struct{ cpus, irqs int }{{4, 16}, {64, 1024}, {256, 4096}} {
		b.Run(fmt.Sprintf("%dx%d", size.cpus, size.irqs), func(b *testing.B) {
			fs := writeBigTree(b, size.cpus, size.irqs)
			engine := NewEngine(EngineConfig{FS: fs})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				st, err := engine.Load()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := engine.Planner().Rebalance(st.IRQs, st.Allowed); err != nil {
					b.Fatal(err)
				}
				if _, err := engine.Planner().Drain(st.IRQs, sysfs.NewCPUSet(2), st.Allowed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlan measures the planner alone on 4096 IRQs over 256 CPUs.
func BenchmarkPlan(b *testing.B) {
	var irqs []IRQ
	for i := range 4096 {
		irqs = append(irqs, movableOn(i, "0-255"))
	}
	allowed := cpus("0-255")
	b.ReportAllocs()
	for b.Loop() {
		var p Planner
		if _, err := p.Rebalance(irqs, allowed); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBigTreeLoads checks the benchmark tree is what it claims, so the
// benchmark measures real work.
func TestBigTreeLoads(t *testing.T) {
	fs := writeBigTree(t, 8, 600)
	st, err := NewEngine(EngineConfig{FS: fs}).Load()
	if err != nil {
		t.Fatal(err)
	}
	classes := map[Class]int{}
	for _, irq := range st.IRQs {
		classes[irq.Class]++
	}
	if len(st.IRQs) != 600 || classes[ClassPerCPU] != 4 || classes[ClassManaged] != 11 || classes[ClassMovable] != 585 {
		t.Errorf("IRQs %d, classes %v", len(st.IRQs), classes)
	}
}

// BenchmarkPlanLoad is BenchmarkPlan with rates, one IRQ in eight busy:
// a first plan (the cut of the busiest CPU goes as far as it can), and a
// steady one of the placement the first left.
func BenchmarkPlanLoad(b *testing.B) {
	var irqs []IRQ
	for i := range 4096 {
		irq := movableOn(i, "0-255")
		irq.Effective = sysfs.NewCPUSet(i % 7)
		irq.Rate = float64(i%5) / 10
		if i%8 == 1 {
			irq.Rate = float64(200 + (i*37)%5000)
		}
		irqs = append(irqs, irq)
	}
	allowed := cpus("0-255")
	first, err := (&Planner{}).Rebalance(irqs, allowed)
	if err != nil {
		b.Fatal(err)
	}
	placed := applyPlan(irqs, first)
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p Planner
			if _, err := p.Rebalance(irqs, allowed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("steady", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := Planner{Steady: true}
			plan, err := p.Rebalance(placed, allowed)
			if err != nil {
				b.Fatal(err)
			}
			if len(plan.Moves) > 0 {
				b.Fatalf("the steady plan moves %d IRQs", len(plan.Moves))
			}
		}
	})
	// The daemon's quick plan of one CPU offline: its IRQs move, the
	// others stay, and the cut of the busiest CPU waits for the full
	// settle (DeferCuts).
	b.Run("offline", func(b *testing.B) {
		b.ReportAllocs()
		left := allowed.Without(3)
		for b.Loop() {
			p := Planner{Steady: true, DeferCuts: true}
			plan, err := p.Rebalance(placed, left)
			if err != nil {
				b.Fatal(err)
			}
			if len(plan.Moves) == 0 {
				b.Fatal("nothing left CPU 3")
			}
		}
	})
}

// BenchmarkPlanRules is the steady quick plan of BenchmarkPlanLoad's
// "offline" with 100 device rules, each placing the IRQs of one of 100
// devices (one in two IRQs) on eight CPUs: the groups the planner then
// spreads one by one.
func BenchmarkPlanRules(b *testing.B) {
	var irqs []IRQ
	homes := map[string]RuleHome{}
	for i := range 4096 {
		irq := movableOn(i, "0-255")
		irq.Effective = sysfs.NewCPUSet(i % 7)
		irq.Rate = float64(i%5) / 10
		if i%8 == 1 {
			irq.Rate = float64(200 + (i*37)%5000)
		}
		if i%2 == 0 {
			k := (i / 2) % 100
			irq.Rule = fmt.Sprintf("r%d", k)
			first := (8 * k) % 256
			homes[irq.Rule] = RuleHome{CPUs: cpus(fmt.Sprintf("%d-%d", first, first+7))}
		}
		irqs = append(irqs, irq)
	}
	allowed := cpus("0-255")
	first, err := (&Planner{Rules: homes}).Rebalance(irqs, allowed)
	if err != nil {
		b.Fatal(err)
	}
	placed := applyPlan(irqs, first)
	left := allowed.Without(3)
	b.ReportAllocs()
	for b.Loop() {
		p := Planner{Steady: true, DeferCuts: true, Rules: homes}
		if _, err := p.Rebalance(placed, left); err != nil {
			b.Fatal(err)
		}
	}
}
