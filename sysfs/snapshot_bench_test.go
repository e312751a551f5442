package sysfs_test

import (
	"fmt"
	"testing"

	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

// BenchmarkSnapshotBig reads the simulator's big trees, whose MSIs have a
// node: from /proc/irq/N/node, or ("dt", the 6.12 DT case) from -1 there
// and the PCI device's numa_node, read once per device.
func BenchmarkSnapshotBig(b *testing.B) {
	for _, size := range []struct{ cpus, nodes, irqs int }{{64, 2, 1024}, {256, 4, 4096}} {
		for _, dt := range []bool{false, true} {
			name := fmt.Sprintf("%dx%d", size.cpus, size.irqs)
			if dt {
				name += "-dt"
			}
			b.Run(name, func(b *testing.B) {
				cfg := sysfstest.Big(size.cpus, size.nodes, size.irqs)
				if dt {
					for i, q := range cfg.IRQs {
						if q.Node >= 0 {
							cfg.IRQs[i] = q.WithDeviceNode(q.Node).WithNode(-1)
						}
					}
				}
				s := sysfstest.New(b, cfg)
				fs := s.FS()
				b.ReportAllocs()
				for b.Loop() {
					snap, err := fs.Snapshot(sysfs.SnapshotOptions{})
					if err != nil {
						b.Fatal(err)
					}
					if len(snap.IRQNodes) == 0 {
						b.Fatal("no IRQ nodes")
					}
				}
			})
		}
	}
}
