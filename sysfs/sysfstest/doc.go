// Package sysfstest is an in-process simulator of the kernel's IRQ affinity
// interface, for tests.
//
// A Sim owns a real directory tree laid out like /proc and /sys (Root()/proc
// and Root()/sys) so that the real sysfs readers (sysfs.FS.SnapshotWith
// and friends) read it unchanged. It also implements affinity.Kernel
// (WriteAffinity, ReadEffective, OnlineCPUs) with the kernel's semantics as
// measured in the arm64 VM (docs/KERNELS.md, "Kernel facts irqshift relies
// on", each with the VM test that shows it), and rewrites the files after
// every change so that a later Snapshot sees what the kernel would show:
//
//   - per-CPU IRQs, descriptors without an action and managed IRQs refuse
//     writes: EIO on kernel 6.1, EPERM on 6.12, where smp_affinity and
//     smp_affinity_list of managed and per-CPU IRQs are also mode 0444;
//   - a mask without an online CPU gives EINVAL, a freed IRQ ENOENT;
//   - a GIC SPI is delivered to the first online CPU of its mask, an ITS MSI
//     to the least-loaded one (the fewest unmanaged MSIs effective there,
//     not counting itself, as its_select_cpu does), ties to the lowest CPU;
//   - SetCPUOnline(cpu, false) migrates what the kernel migrates
//     (kernel/irq/cpuhotplug.c) and loses the admin's pin where the mask had
//     no other online CPU; managed IRQs of that CPU are shut down in place;
//     SetCPUOnline(cpu, true) moves nothing back;
//   - NUMA (Config.Nodes): /proc/irq/N/node is IRQ.Node, and the PCI
//     device that a 6.12 chip name ("ITS-PCI-MSIX-0000:00:02.0") names
//     gets /sys/bus/pci/devices/<BDF>/numa_node (IRQ.DeviceNode); an MSI
//     of node n gets node n's CPUs as its default mask, the ITS the
//     least-loaded of them, and leaves the node (mask = online CPUs) only
//     when all of them go offline.
//
// Presets: VM4 (the measured 4-CPU VM), NUMA8 (its 8-CPU, two-node
// version with the PCI devices on node 1) and Big (64 to 4096 CPUs and
// thousands of MSIs over the nodes, for benchmarks).
//
// Errors are built by sysfs.WriteError and sysfs.CPUOnlineError from the
// errno, with the one errno table of sysfs.ClassifyErrno, so they read as
// sysfs.FS.WriteAffinity's: errors.Is(err, sysfs.ErrUnmovable) and friends
// hold, and errors.As finds the syscall.Errno. The simulated process is
// root, whatever the test process is: the kernel's EPERM is ErrUnmovable.
// DenyWrites makes it a process without root instead: writes fail with
// EACCES (sysfs.ErrPermission) and CheckWriteAccess fails as
// sysfs.FS.CheckWriteAccess does.
//
// Hooks inject faults at the moment of a given write (FailWrites,
// BeforeWrite, OfflineAtWrite, RemoveAtWrite) for race tests.
//
// The simulator serves in-process tests only. A child process (the built
// binary in tests/e2e) sees the tree as plain files: its writes just change
// the file they write, and nothing else follows.
package sysfstest
