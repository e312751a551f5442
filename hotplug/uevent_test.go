package hotplug

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The exact bytes a 6.x kernel sent for cpu2 going offline in this project's
// 4-vCPU arm64 VM (-cpu cortex-a72; 6.1 and 6.12 sent the same ones, seen by
// hand on the uevent socket: docs/KERNELS.md, "CPU uevents"), and the same
// message with ACTION=online for online.
const (
	kernelOffline = "offline@/devices/system/cpu/cpu2\x00ACTION=offline\x00DEVPATH=/devices/system/cpu/cpu2\x00SUBSYSTEM=cpu\x00OF_NAME=cpu\x00OF_FULLNAME=/cpus/cpu@2\x00OF_TYPE=cpu\x00OF_COMPATIBLE_0=arm,cortex-a72\x00OF_COMPATIBLE_N=1\x00MODALIAS=cpu:type:aarch64:feature:,0000,0001,0002,0003,0004,0005,0006,0007,000B\n\x00SEQNUM=897\x00"
	kernelOnline  = "online@/devices/system/cpu/cpu2\x00ACTION=online\x00DEVPATH=/devices/system/cpu/cpu2\x00SUBSYSTEM=cpu\x00OF_NAME=cpu\x00OF_FULLNAME=/cpus/cpu@2\x00OF_TYPE=cpu\x00OF_COMPATIBLE_0=arm,cortex-a72\x00OF_COMPATIBLE_N=1\x00MODALIAS=cpu:type:aarch64:feature:,0000,0001,0002,0003,0004,0005,0006,0007,000B\n\x00SEQNUM=897\x00"
)

// uevent builds a datagram the way the kernel does: the header, then each
// pair, each followed by a NUL.
func uevent(header string, pairs ...string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteByte(0)
	for _, p := range pairs {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// cpuUevent is a minimal kernel uevent for CPU cpu.
func cpuUevent(action string, cpu int, seq uint64) []byte {
	devpath := fmt.Sprintf("/devices/system/cpu/cpu%d", cpu)
	return uevent(action+"@"+devpath, "ACTION="+action, "DEVPATH="+devpath, "SUBSYSTEM=cpu",
		fmt.Sprintf("SEQNUM=%d", seq))
}

// memUevent is a uevent of another subsystem, as the host produces when
// "change" is written to /sys/devices/virtual/mem/null/uevent.
func memUevent(seq uint64) []byte {
	return uevent("change@/devices/virtual/mem/null", "ACTION=change", "DEVPATH=/devices/virtual/mem/null",
		"SUBSYSTEM=mem", "SYNTH_UUID=0", "MAJOR=1", "MINOR=3", "DEVNAME=null", "DEVMODE=0666",
		fmt.Sprintf("SEQNUM=%d", seq))
}

// libudevMessage is what udev sends on group 2 (libudev's
// monitor_netlink_header): magic string, 0xfeedcafe in network order, header
// size and offsets, then KEY=VALUE\0 properties.
func libudevMessage() []byte {
	props := string(uevent("ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SUBSYSTEM=cpu", "SEQNUM=897"))
	var b bytes.Buffer
	b.WriteString("libudev\x00")
	binary.Write(&b, binary.BigEndian, uint32(0xfeedcafe))
	const hdr = 40
	for _, v := range []uint32{hdr, hdr, uint32(len(props)), 0, 0, 0, 0} {
		binary.Write(&b, binary.NativeEndian, v)
	}
	b.WriteString(props)
	return b.Bytes()
}

func TestParseUeventKernelBytes(t *testing.T) {
	const modalias = "cpu:type:aarch64:feature:,0000,0001,0002,0003,0004,0005,0006,0007,000B\n"
	for _, tc := range []struct {
		name   string
		data   string
		action Action
	}{
		{"offline", kernelOffline, Offline},
		{"online", kernelOnline, Online},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUevent([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if u.Action != string(tc.action) || u.DevPath != "/devices/system/cpu/cpu2" || u.Subsystem != "cpu" || u.Seqnum != 897 {
				t.Errorf("got %q %q %q %d", u.Action, u.DevPath, u.Subsystem, u.Seqnum)
			}
			want := map[string]string{
				"ACTION":          string(tc.action),
				"DEVPATH":         "/devices/system/cpu/cpu2",
				"SUBSYSTEM":       "cpu",
				"OF_NAME":         "cpu",
				"OF_FULLNAME":     "/cpus/cpu@2",
				"OF_TYPE":         "cpu",
				"OF_COMPATIBLE_0": "arm,cortex-a72",
				"OF_COMPATIBLE_N": "1",
				"MODALIAS":        modalias, // with its newline
				"SEQNUM":          "897",
			}
			if !maps.Equal(u.Env, want) {
				t.Errorf("Env:\n got %q\nwant %q", u.Env, want)
			}
			ev, ok := CPUEvent(u)
			if !ok {
				t.Fatal("CPUEvent: not a CPU event")
			}
			if want := (Event{Action: tc.action, CPU: 2, Seqnum: 897}); ev != want {
				t.Errorf("CPUEvent = %+v, want %+v", ev, want)
			}
		})
	}
}

func TestParseUeventValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want Uevent
	}{
		{
			name: "values with =, empty value",
			data: uevent("change@/devices/virtual/mem/null", "ACTION=change", "DEVPATH=/devices/virtual/mem/null",
				"SUBSYSTEM=mem", "SYNTH_ARG_X=a=b=c", "EMPTY=", "SEQNUM=1"),
			want: Uevent{Action: "change", DevPath: "/devices/virtual/mem/null", Subsystem: "mem", Seqnum: 1,
				Env: map[string]string{"ACTION": "change", "DEVPATH": "/devices/virtual/mem/null", "SUBSYSTEM": "mem",
					"SYNTH_ARG_X": "a=b=c", "EMPTY": "", "SEQNUM": "1"}},
		},
		{
			// Device-tree devpaths hold '@': the header splits at the first one.
			name: "devpath with @",
			data: uevent("bind@/devices/platform/soc@0/9000000.pl011", "ACTION=bind",
				"DEVPATH=/devices/platform/soc@0/9000000.pl011", "SUBSYSTEM=platform", "DRIVER=uart-pl011",
				"SEQNUM=18446744073709551615"),
			want: Uevent{Action: "bind", DevPath: "/devices/platform/soc@0/9000000.pl011", Subsystem: "platform",
				Seqnum: 1<<64 - 1, Env: map[string]string{"ACTION": "bind",
					"DEVPATH": "/devices/platform/soc@0/9000000.pl011", "SUBSYSTEM": "platform",
					"DRIVER": "uart-pl011", "SEQNUM": "18446744073709551615"}},
		},
		{
			name: "no SUBSYSTEM",
			data: uevent("add@/module/x", "ACTION=add", "DEVPATH=/module/x", "SEQNUM=7"),
			want: Uevent{Action: "add", DevPath: "/module/x", Seqnum: 7,
				Env: map[string]string{"ACTION": "add", "DEVPATH": "/module/x", "SEQNUM": "7"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUevent(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseUeventDoesNotRetainInput(t *testing.T) {
	b := []byte(kernelOffline)
	u, err := ParseUevent(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if u.Action != "offline" || u.Env["OF_COMPATIBLE_0"] != "arm,cortex-a72" {
		t.Errorf("parsed strings alias the input buffer: %+v", u)
	}
}

func TestParseUeventMalformed(t *testing.T) {
	offline := []byte(kernelOffline)
	for _, tc := range []struct {
		name string
		data []byte
		msg  string // in the error
	}{
		{"nil", nil, "empty"},
		{"empty", []byte{}, "empty"},
		{"NUL only", []byte{0}, "header"},
		{"truncated, last NUL lost", offline[:len(offline)-1], "NUL"},
		{"truncated mid-value", offline[:100], "NUL"},
		{"no header", []byte(kernelOffline[strings.IndexByte(kernelOffline, 0)+1:]), "header"},
		{"header without @", uevent("offline", "ACTION=offline", "SEQNUM=1"), "header"},
		{"empty action", uevent("@/devices/system/cpu/cpu2", "ACTION=", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=1"), "action"},
		{"relative devpath", uevent("offline@devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=devices/system/cpu/cpu2", "SEQNUM=1"), "devpath"},
		{"field without =", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "GARBAGE", "SEQNUM=1"), "KEY=VALUE"},
		{"empty key", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "=x", "SEQNUM=1"), "KEY=VALUE"},
		{"empty field", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=1"), "KEY=VALUE"},
		{"no ACTION", uevent("offline@/devices/system/cpu/cpu2", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=1"), "no ACTION"},
		{"no DEVPATH", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "SEQNUM=1"), "no DEVPATH"},
		{"ACTION disagrees", uevent("offline@/devices/system/cpu/cpu2", "ACTION=online", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=1"), "disagrees"},
		{"DEVPATH disagrees", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu3", "SEQNUM=1"), "disagrees"},
		{"no SEQNUM", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2"), "no SEQNUM"},
		{"SEQNUM empty", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM="), "SEQNUM"},
		{"SEQNUM text", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=89a"), "SEQNUM"},
		{"SEQNUM signed", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=+897"), "SEQNUM"},
		{"SEQNUM negative", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=-1"), "SEQNUM"},
		{"SEQNUM overflow", uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2", "SEQNUM=18446744073709551616"), "SEQNUM"},
		{"libudev magic", libudevMessage(), "libudev"},
		{"libudev magic alone", []byte("libudev\x00"), "libudev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUevent(tc.data)
			if err == nil {
				t.Fatalf("no error; parsed %+v", u)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			if !reflect.DeepEqual(u, Uevent{}) {
				t.Errorf("partial result %+v with the error", u)
			}
		})
	}
}

func TestParseUeventErrorIsShort(t *testing.T) {
	// A garbage datagram must not be copied whole into an error (and logs).
	_, err := ParseUevent(append(bytes.Repeat([]byte("x"), 10000), 0))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error of %d bytes: %.300v", len(err.Error()), err)
	}
}

func TestCPUEvent(t *testing.T) {
	cpu := func(action, devpath, subsystem string) Uevent {
		return Uevent{Action: action, DevPath: devpath, Subsystem: subsystem, Seqnum: 5,
			Env: map[string]string{"ACTION": action, "DEVPATH": devpath, "SUBSYSTEM": subsystem, "SEQNUM": "5"}}
	}
	for _, tc := range []struct {
		name string
		u    Uevent
		want Event
		ok   bool
	}{
		{"offline cpu0", cpu("offline", "/devices/system/cpu/cpu0", "cpu"), Event{Action: Offline, CPU: 0, Seqnum: 5}, true},
		{"online cpu4095", cpu("online", "/devices/system/cpu/cpu4095", "cpu"), Event{Action: Online, CPU: 4095, Seqnum: 5}, true},
		{"cpu add", cpu("add", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"cpu remove", cpu("remove", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"cpu change", cpu("change", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"cpu bind", cpu("bind", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"cpu unbind", cpu("unbind", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"memory online", cpu("online", "/devices/system/memory/memory32", "memory"), Event{}, false},
		{"memory offline", cpu("offline", "/devices/system/memory/memory32", "memory"), Event{}, false},
		{"container online", cpu("online", "/devices/system/container/ACPI0004:00", "container"), Event{}, false},
		{"no subsystem", cpu("offline", "/devices/system/cpu/cpu2", ""), Event{}, false},
		{"cpu subsystem, other device", cpu("offline", "/devices/system/cpu/cpufreq", "cpu"), Event{}, false},
		{"cpu subsystem, child", cpu("offline", "/devices/system/cpu/cpu2/cache", "cpu"), Event{}, false},
		{"no number", cpu("offline", "/devices/system/cpu/cpu", "cpu"), Event{}, false},
		{"leading zero", cpu("offline", "/devices/system/cpu/cpu02", "cpu"), Event{}, false},
		{"signed", cpu("offline", "/devices/system/cpu/cpu-1", "cpu"), Event{}, false},
		{"plus", cpu("offline", "/devices/system/cpu/cpu+1", "cpu"), Event{}, false},
		{"beyond MaxCPUs", cpu("offline", "/devices/system/cpu/cpu65536", "cpu"), Event{}, false},
		{"huge", cpu("offline", "/devices/system/cpu/cpu99999999999999999999", "cpu"), Event{}, false},
		{"upper-case action", cpu("OFFLINE", "/devices/system/cpu/cpu2", "cpu"), Event{}, false},
		{"zero value", Uevent{}, Event{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CPUEvent(tc.u)
			if ok != tc.ok || got != tc.want {
				t.Errorf("CPUEvent = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCPUEventIgnoresOtherSubsystems(t *testing.T) {
	for _, data := range [][]byte{
		memUevent(820),
		uevent("online@/devices/system/memory/memory32", "ACTION=online", "DEVPATH=/devices/system/memory/memory32",
			"SUBSYSTEM=memory", "SEQNUM=900"),
		uevent("add@/devices/system/cpu/cpu4", "ACTION=add", "DEVPATH=/devices/system/cpu/cpu4", "SUBSYSTEM=cpu",
			"MODALIAS=cpu:type:aarch64:feature:,0000\n", "SEQNUM=901"),
		uevent("offline@/devices/virtual/net/lo", "ACTION=offline", "DEVPATH=/devices/virtual/net/lo",
			"SUBSYSTEM=net", "SEQNUM=902"),
	} {
		u, err := ParseUevent(data)
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if ev, ok := CPUEvent(u); ok {
			t.Errorf("%s %s %s: got CPU event %+v", u.Action, u.Subsystem, u.DevPath, ev)
		}
	}
}

// message484 has the shape and size of the CPU uevent seen with -cpu max
// (484 bytes): the cortex-a72 message with 49 feature numbers in MODALIAS
// instead of 9.
func message484(tb testing.TB) []byte {
	var features strings.Builder
	for i := range 49 {
		fmt.Fprintf(&features, ",%04X", i)
	}
	b := uevent("offline@/devices/system/cpu/cpu2", "ACTION=offline", "DEVPATH=/devices/system/cpu/cpu2",
		"SUBSYSTEM=cpu", "OF_NAME=cpu", "OF_FULLNAME=/cpus/cpu@2", "OF_TYPE=cpu",
		"OF_COMPATIBLE_0=arm,cortex-a72", "OF_COMPATIBLE_N=1",
		"MODALIAS=cpu:type:aarch64:feature:"+features.String()+"\n", "SEQNUM=897")
	if len(b) != 484 {
		tb.Fatalf("message484 is %d bytes", len(b))
	}
	return b
}

func BenchmarkParseUevent(b *testing.B) {
	msg := message484(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		u, err := ParseUevent(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := CPUEvent(u); !ok {
			b.Fatal("not a CPU event")
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte(kernelOffline))
	f.Add([]byte(kernelOnline))
	f.Add(message484(f))
	f.Add(memUevent(820))
	f.Add(cpuUevent("online", 0, 1))
	f.Add(libudevMessage())
	f.Add([]byte(kernelOffline[:100]))
	f.Add([]byte(kernelOffline[strings.IndexByte(kernelOffline, 0)+1:]))
	f.Add([]byte("@\x00\x00=\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUevent(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if u.Action == "" || !strings.HasPrefix(u.DevPath, "/") ||
			u.Env["ACTION"] != u.Action || u.Env["DEVPATH"] != u.DevPath || u.Env["SUBSYSTEM"] != u.Subsystem {
			t.Fatalf("inconsistent %+v", u)
		}
		// Encoding the result again and parsing it gives the same uevent.
		pairs := make([]string, 0, len(u.Env))
		for _, k := range slices.Sorted(maps.Keys(u.Env)) {
			pairs = append(pairs, k+"="+u.Env[k])
		}
		again, err := ParseUevent(uevent(u.Action+"@"+u.DevPath, pairs...))
		if err != nil || !reflect.DeepEqual(again, u) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, u)
		}
		if ev, ok := CPUEvent(u); ok {
			if ev.CPU < 0 || (ev.Action != Online && ev.Action != Offline) || ev.Seqnum != u.Seqnum || ev.Resync {
				t.Fatalf("bad CPU event %+v from %+v", ev, u)
			}
		}
	})
}
