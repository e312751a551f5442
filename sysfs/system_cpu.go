package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	procsysfs "github.com/prometheus/procfs/sysfs"
)

// CPUInfo is the state of the CPUs, read from /sys/devices/system/cpu and
// /sys/devices/system/node.
type CPUInfo struct {
	// Possible, Present and Online are /sys/devices/system/cpu/{possible,present,online}.
	Possible CPUSet
	Present  CPUSet
	Online   CPUSet
	// Isolated is /sys/devices/system/cpu/isolated (isolcpus=), empty when absent.
	Isolated CPUSet
	// NohzFull is /sys/devices/system/cpu/nohz_full, empty when absent or "(null)".
	NohzFull CPUSet
	// Hotpluggable holds the CPUs that have a cpuN/online file; the others
	// (often the boot CPU) cannot be taken offline.
	Hotpluggable CPUSet
	// Node maps a CPU to its NUMA node, from /sys/devices/system/node/nodeN/cpulist.
	// It is empty on kernels without NUMA.
	Node map[int]int
}

// CPUDir is /sys/devices/system/cpu relative to the sys root.
const CPUDir = "devices/system/cpu"

// OnlineCPUs reads /sys/devices/system/cpu/online, the one file the resync
// path polls.
func (fs FS) OnlineCPUs() (CPUSet, error) {
	return fs.readCPUList(fs.SysPath(CPUDir, "online"))
}

func (fs FS) readCPUList(path string) (CPUSet, error) {
	data, err := readFile(path)
	if err != nil {
		return CPUSet{}, err
	}
	set, err := ParseCPUList(string(data))
	if err != nil {
		return CPUSet{}, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// readOptionalCPUList is readCPUList for files that older or smaller
// kernels lack, and that read "(null)" when the feature is off.
func (fs FS) readOptionalCPUList(path string) (CPUSet, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return CPUSet{}, nil
	}
	if err != nil {
		return CPUSet{}, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	text := strings.TrimSpace(string(data))
	if text == "(null)" {
		return CPUSet{}, nil
	}
	set, err := ParseCPUList(text)
	if err != nil {
		return CPUSet{}, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// CPUInfo reads the CPU masks, which CPUs can be hotplugged and the NUMA
// node of each CPU.
func (fs FS) CPUInfo() (CPUInfo, error) {
	var info CPUInfo
	var err error
	for _, f := range []struct {
		name string
		dst  *CPUSet
	}{{"possible", &info.Possible}, {"present", &info.Present}, {"online", &info.Online}} {
		if *f.dst, err = fs.readCPUList(fs.SysPath(CPUDir, f.name)); err != nil {
			return CPUInfo{}, err
		}
	}
	if err := fs.checkOnline(info); err != nil {
		return CPUInfo{}, err
	}
	if info.NohzFull, err = fs.readOptionalCPUList(fs.SysPath(CPUDir, "nohz_full")); err != nil {
		return CPUInfo{}, err
	}
	if info.Isolated, err = fs.isolatedCPUs(); err != nil {
		return CPUInfo{}, err
	}
	if info.Hotpluggable, err = fs.hotpluggableCPUs(); err != nil {
		return CPUInfo{}, err
	}
	if info.Node, err = fs.cpuNodes(); err != nil {
		return CPUInfo{}, err
	}
	return info, nil
}

// OnlineWithin reads the online CPUs, as OnlineCPUs, and refuses a list
// with CPUs outside possible (checkOnline): the quick path of a hotplug
// event reads only this file.
func (fs FS) OnlineWithin(possible CPUSet) (CPUSet, error) {
	online, err := fs.OnlineCPUs()
	if err != nil {
		return CPUSet{}, err
	}
	return online, fs.checkOnline(CPUInfo{Online: online, Possible: possible})
}

// checkOnline refuses an online list with CPUs the kernel does not
// count as possible: a real kernel never prints one, and planning for such
// CPUs would write masks naming CPUs that do not exist.
func (fs FS) checkOnline(info CPUInfo) error {
	if extra := info.Online.Difference(info.Possible); !extra.IsEmpty() {
		return fmt.Errorf("%w: %s: CPUs %s are online but not possible (%s: %s)", ErrFileParse,
			fs.SysPath(CPUDir, "online"), extra, fs.SysPath(CPUDir, "possible"), info.Possible)
	}
	return nil
}

// isolatedCPUs reads /sys/devices/system/cpu/isolated with our cpulist
// parser: procfs's echoed the whole file in its errors, wrapped CPUs past
// 65535 into uint16 and expanded any range, however large, into a slice.
func (fs FS) isolatedCPUs() (CPUSet, error) {
	return fs.readOptionalCPUList(fs.SysPath(CPUDir, "isolated"))
}

// hotpluggableCPUs lists the cpuN directories (through procfs) that have an
// online file.
func (fs FS) hotpluggableCPUs() (CPUSet, error) {
	pfs, err := procsysfs.NewFS(fs.sys)
	if err != nil {
		return CPUSet{}, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	cpus, err := pfs.CPUs()
	if err != nil {
		return CPUSet{}, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	var hotpluggable []int
	for _, c := range cpus {
		n, err := strconv.Atoi(c.Number())
		if err != nil || n < 0 || n >= MaxCPUs {
			continue // cpufreq, cpuidle and friends match cpu[0-9]* only by accident
		}
		if _, err := c.Online(); err == nil {
			hotpluggable = append(hotpluggable, n)
		}
	}
	return NewCPUSet(hotpluggable...), nil
}

// cpuNodes reads /sys/devices/system/node/nodeN/cpulist for every node.
func (fs FS) cpuNodes() (map[int]int, error) {
	nodes := map[int]int{}
	dirs, err := filepath.Glob(fs.SysPath("devices/system/node/node[0-9]*"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFileRead, err)
	}
	for _, dir := range dirs {
		node, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "node"))
		if err != nil {
			continue
		}
		cpus, err := fs.readCPUList(filepath.Join(dir, "cpulist"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, c := range cpus.CPUs() {
			nodes[c] = node
		}
	}
	return nodes, nil
}

// CPUOnlinePath is /sys/devices/system/cpu/cpuN/online.
func (fs FS) CPUOnlinePath(cpu int) string {
	return fs.SysPath(CPUDir, "cpu"+strconv.Itoa(cpu), "online")
}

// SetCPUOnline writes 1 or 0 to /sys/devices/system/cpu/cpuN/online. The
// kernel migrates the IRQs of a CPU going offline itself, inside this write
// (kernel/irq/cpuhotplug.c), so callers drain the CPU first. The error
// wraps ErrWrite, the errno, and ErrPermission when this process may not
// write the file (EACCES, or EPERM that faccessat(2) confirms).
func (fs FS) SetCPUOnline(cpu int, online bool) error {
	value := "0"
	if online {
		value = "1"
	}
	path := fs.CPUOnlinePath(cpu)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return cpuOnlineError(cpu, onlineClass(path, err), err)
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return cpuOnlineError(cpu, onlineClass(path, err), err)
	}
	return nil
}

// onlineClass is ErrPermission when err, of writing the CPU online file
// path, says that this process may not write it, else nil: the kernel's
// own refusals (EBUSY for the last CPU, EPERM to root where a CPU cannot
// go) keep their errno and no class.
func onlineClass(path string, err error) error {
	if errors.Is(err, syscall.EACCES) || (errors.Is(err, syscall.EPERM) && lacksPrivilege(path)) {
		return ErrPermission
	}
	return nil
}
