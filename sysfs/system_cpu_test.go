package sysfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestCPUInfo(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"sys/devices/system/cpu/possible":       "0-7\n",
		"sys/devices/system/cpu/present":        "0-7\n",
		"sys/devices/system/cpu/online":         "0-5,7\n",
		"sys/devices/system/cpu/isolated":       "6-7\n",
		"sys/devices/system/cpu/nohz_full":      "(null)\n",
		"sys/devices/system/cpu/cpu0/uevent":    "",
		"sys/devices/system/cpu/cpu1/online":    "1\n",
		"sys/devices/system/cpu/cpu6/online":    "0\n",
		"sys/devices/system/cpu/cpufreq/x":      "",
		"sys/devices/system/node/node0/cpulist": "0-3\n",
		"sys/devices/system/node/node1/cpulist": "4-7\n",
	})
	info, err := fs.CPUInfo()
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]CPUSet{"possible": info.Possible, "online": info.Online, "isolated": info.Isolated, "nohz": info.NohzFull, "hotplug": info.Hotpluggable} {
		want := map[string]string{"possible": "0-7", "online": "0-5,7", "isolated": "6-7", "nohz": "", "hotplug": "1,6"}[name]
		if got.String() != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if info.Node[2] != 0 || info.Node[5] != 1 || len(info.Node) != 8 {
		t.Errorf("nodes = %v", info.Node)
	}
}

func TestCPUInfoErrors(t *testing.T) {
	tests := map[string]map[string]string{
		"no online file": {"sys/devices/system/cpu/possible": "0-3\n", "sys/devices/system/cpu/present": "0-3\n"},
		"malformed online": {"sys/devices/system/cpu/possible": "0-3\n", "sys/devices/system/cpu/present": "0-3\n",
			"sys/devices/system/cpu/online": "0-\n"},
		"malformed nohz_full": {"sys/devices/system/cpu/possible": "0-3\n", "sys/devices/system/cpu/present": "0-3\n",
			"sys/devices/system/cpu/online": "0-3\n", "sys/devices/system/cpu/nohz_full": "x\n"},
		// A kernel never prints it; a broken fixture or copy can.
		"online beyond possible": {"sys/devices/system/cpu/possible": "0-3\n", "sys/devices/system/cpu/present": "0-3\n",
			"sys/devices/system/cpu/online": "0-7\n"},
	}
	for name, files := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := writeTree(t, files).CPUInfo()
			if !errors.Is(err, ErrFileRead) && !errors.Is(err, ErrFileParse) {
				t.Errorf("err = %v, want a wrapped sentinel", err)
			}
		})
	}
}

func TestSetCPUOnline(t *testing.T) {
	fs := writeTree(t, map[string]string{"sys/devices/system/cpu/cpu2/online": "1\n"})
	if err := fs.SetCPUOnline(2, false); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(fs.CPUOnlinePath(2)); string(data) != "0" {
		t.Errorf("cpu2/online = %q, want 0", data)
	}
	if err := fs.SetCPUOnline(3, true); !errors.Is(err, ErrWrite) {
		t.Errorf("CPU without online file: err = %v, want ErrWrite", err)
	}
}

func TestProcessesNamed(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"proc/1/comm":    "systemd\n",
		"proc/812/comm":  "irqbalance\n",
		"proc/900/comm":  "irqbalancer\n",
		"proc/self/comm": "irqbalance\n",
		"proc/irq/1/x":   "",
	})
	pids, err := fs.ProcessesNamed("irqbalance")
	if err != nil || len(pids) != 1 || pids[0] != 812 {
		t.Errorf("ProcessesNamed = %v, %v; want [812]", pids, err)
	}
}

// TestOnlineBeyondPossibleRefused: an online list naming CPUs that are not
// possible is an error naming both files, in the full read and in the
// quick one that re-reads only the online list.
func TestOnlineBeyondPossibleRefused(t *testing.T) {
	fs := writeTree(t, map[string]string{
		"sys/devices/system/cpu/possible": "0-3\n",
		"sys/devices/system/cpu/present":  "0-3\n",
		"sys/devices/system/cpu/online":   "0-3\n",
	})
	info, err := fs.CPUInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fs.SysPath(CPUDir, "online"), []byte("0-5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() (CPUInfo, error){
		"full":  fs.CPUInfo,
		"quick": func() (CPUInfo, error) { return fs.onlineWith(&info) },
		"event": func() (CPUInfo, error) {
			online, err := fs.OnlineWithin(info.Possible)
			return CPUInfo{Online: online}, err
		},
	} {
		_, err := read()
		if !errors.Is(err, ErrFileParse) || !strings.Contains(err.Error(), "4-5") || !strings.Contains(err.Error(), "possible") {
			t.Errorf("%s: %v, want an error naming CPUs 4-5 and the possible file", name, err)
		}
	}
}
