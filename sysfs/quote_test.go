package sysfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tenMB is the length of the bad lines below: far more than a message
// should ever echo.
const tenMB = 10 << 20

// checkShortError checks that err is a parse error whose message, without
// the file path it names (the tree may live anywhere), is under 400 bytes.
func checkShortError(t *testing.T, what string, err error, path string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if !errors.Is(err, ErrFileParse) {
		t.Errorf("%s: error %.300v does not wrap ErrFileParse", what, err)
	}
	msg := err.Error()
	if path != "" {
		msg = strings.ReplaceAll(msg, path, "")
	}
	if len(msg) >= 400 {
		t.Errorf("%s: message is %d bytes long: %.500s", what, len(msg), msg)
	}
}

// TestTenMBLines feeds every parser that echoes its input a 10 MB bad
// line: every message stays under 400 bytes.
func TestTenMBLines(t *testing.T) {
	x := strings.Repeat("x", tenMB)
	digits := strings.Repeat("9", tenMB)
	const hdr = "           CPU0       CPU1\n"
	for name, input := range map[string]string{
		"header token":          "CPU0 " + x + "\n",
		"header CPU number":     "CPU0 CPU" + digits + "\n",
		"label without colon":   hdr + x + "\n",
		"count not a number":    hdr + " 1: 0 6" + x + "\n",
		"count overflows":       hdr + " 1: 0 " + digits + "\n",
		"named count overflows": hdr + "IPI0: " + digits + " 0 x\n",
		"too few counts":        hdr + " 1: 5 " + x + "\n",
		"duplicate IRQ":         hdr + " 1: 0 0 a\n 1: 0 0 GICv3 1 Level " + x + "\n",
		"hwirq overflows":       hdr + " 1: 0 0 GICv3 " + digits + " Level a\n",
	} {
		_, err := parseInterrupts([]byte(input), false)
		checkShortError(t, "/proc/interrupts, "+name, err, "")
	}
	for name, input := range map[string]string{
		"one bad token":     x,
		"bad CPU number":    "0-" + digits,
		"bad part":          "0-3," + x,
		"bad stride":        "0-7:" + x,
		"bad range":         digits[:5] + "-1," + x,
		"many parts":        strings.Repeat("0,", tenMB/2) + "x",
		"huge CPU":          digits,
		"spaces and a part": strings.Repeat(" ", tenMB) + "x" + strings.Repeat(" ", tenMB),
	} {
		_, err := ParseCPUList(input)
		checkShortError(t, "cpulist, "+name, err, "")
	}
	for name, input := range map[string]string{
		"blank":      strings.Repeat(" ", tenMB),
		"not hex":    x,
		"long group": "f," + strings.Repeat("f", tenMB),
		"too wide":   strings.Repeat("0,", tenMB/2) + "1",
	} {
		_, err := ParseCPUMask(input)
		checkShortError(t, "cpumask, "+name, err, "")
	}

	// Through the file readers, which add the path.
	fs := writeTree(t, map[string]string{
		"sys/devices/system/cpu/possible": "0-3\n",
		"sys/devices/system/cpu/present":  "0-3\n",
		"sys/devices/system/cpu/online":   "0-3\n",
		"sys/devices/system/cpu/isolated": "1-2," + x + "\n",
	})
	_, err := fs.CPUInfo()
	checkShortError(t, "isolated", err, fs.SysPath(CPUDir, "isolated"))
	online := fs.SysPath(CPUDir, "online")
	if err := os.WriteFile(online, []byte(x+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = fs.OnlineCPUs()
	checkShortError(t, "online", err, online)
	if err := os.WriteFile(fs.ProcPath("interrupts"), []byte(hdr+" 1: 0 "+x+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = fs.Interrupts()
	checkShortError(t, "FS.Interrupts", err, "")
	node := fs.SysPath("devices/system/node/node0")
	if err := os.MkdirAll(node, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node, "cpulist"), []byte("0,"+x), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fs.SysPath(CPUDir, "isolated"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(online, []byte("0-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = fs.CPUInfo()
	checkShortError(t, "node cpulist", err, filepath.Join(node, "cpulist"))
}
