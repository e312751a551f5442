package hotplug

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/irqshift/irqshift/internal/cpuset"
)

// ErrMalformed is wrapped by every error of ParseUevent, and by Conn
// implementations for a datagram they could not read whole. The watcher
// skips such datagrams; a kernel uevent lost that way still shows up as a
// gap in the sequence numbers.
var ErrMalformed = errors.New("hotplug: malformed uevent")

// libudevMagic starts every message that udev re-broadcasts to its own
// listeners (multicast group 2): "libudev\0" then a binary header. Those are
// udev's view of events, possibly rewritten, not the kernel's.
const libudevMagic = "libudev\x00"

// Uevent is one kernel uevent as sent on NETLINK_KOBJECT_UEVENT.
type Uevent struct {
	// Action and DevPath are from the "ACTION@DEVPATH" header, which must
	// agree with the ACTION and DEVPATH variables.
	Action  string
	DevPath string
	// Subsystem is the SUBSYSTEM variable, "" if absent.
	Subsystem string
	// Seqnum is the SEQNUM variable: the kernel's global uevent counter,
	// incremented once per uevent of any subsystem.
	Seqnum uint64
	// Env holds every KEY=VALUE pair, the four above included. Values are
	// verbatim: they may contain '=' and newlines (MODALIAS of a CPU ends in
	// "\n").
	Env map[string]string
}

// ParseUevent parses one datagram received from the kernel's uevent group.
//
// The datagram must be "ACTION@DEVPATH\0" followed by "KEY=VALUE\0" pairs,
// end with a NUL (a missing one means a truncated read) and carry a decimal
// SEQNUM. udev's re-broadcasts ("libudev\0" magic), messages without the
// header and fields without '=' are rejected. Every error wraps ErrMalformed.
// ParseUevent never panics and does not retain b.
func ParseUevent(b []byte) (Uevent, error) {
	if bytes.HasPrefix(b, []byte(libudevMagic)) {
		return Uevent{}, malformed("udev re-broadcast (libudev magic), not a kernel uevent")
	}
	if len(b) == 0 {
		return Uevent{}, malformed("empty datagram")
	}
	if b[len(b)-1] != 0 {
		return Uevent{}, malformed("%d-byte datagram does not end in NUL (truncated?)", len(b))
	}
	header, rest, _ := bytes.Cut(b, []byte{0})
	at := bytes.IndexByte(header, '@')
	if at < 0 || bytes.IndexByte(header[:at], '=') >= 0 {
		return Uevent{}, malformed("no ACTION@DEVPATH header: first field is %.64q", header)
	}
	u := Uevent{Action: string(header[:at]), DevPath: string(header[at+1:])}
	if u.Action == "" {
		return Uevent{}, malformed("empty action in header %.64q", header)
	}
	if !strings.HasPrefix(u.DevPath, "/") {
		return Uevent{}, malformed("devpath %.64q in header does not start with /", u.DevPath)
	}

	u.Env = make(map[string]string, bytes.Count(rest, []byte{0}))
	for len(rest) > 0 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte{0})
		eq := bytes.IndexByte(field, '=')
		if eq <= 0 {
			return Uevent{}, malformed("field %.64q is not KEY=VALUE", field)
		}
		u.Env[string(field[:eq])] = string(field[eq+1:])
	}

	for _, v := range []struct{ key, want string }{{"ACTION", u.Action}, {"DEVPATH", u.DevPath}} {
		got, ok := u.Env[v.key]
		if !ok {
			return Uevent{}, malformed("no %s variable", v.key)
		}
		if got != v.want {
			return Uevent{}, malformed("%s=%.64q disagrees with header %.64q", v.key, got, header)
		}
	}
	u.Subsystem = u.Env["SUBSYSTEM"]
	seq, ok := u.Env["SEQNUM"]
	if !ok {
		return Uevent{}, malformed("no SEQNUM variable")
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || seq[0] == '+' {
		return Uevent{}, malformed("SEQNUM=%.64q is not a decimal number", seq)
	}
	u.Seqnum = n
	return u, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Action is what happened to a CPU.
type Action string

// The CPU actions, as the kernel spells them (KOBJ_ONLINE, KOBJ_OFFLINE),
// and Bound, a driver bound to a device (KOBJ_BIND).
const (
	Online  Action = "online"
	Offline Action = "offline"
	// Bound is a device event, not a CPU's: a driver's probe just ended,
	// and the IRQs it requested exist now, possibly with the numbers of
	// IRQs freed when the device was unbound.
	Bound Action = "bind"
)

// The reasons of Resync events.
const (
	// ReasonStart: the watcher started; nothing before it was seen.
	ReasonStart = "start"
	// ReasonENOBUFS: the kernel dropped uevents because the socket's
	// receive queue was full.
	ReasonENOBUFS = "enobufs"
	// ReasonSeqnumGap: a uevent's SEQNUM was not the previous one plus one.
	ReasonSeqnumGap = "seqnum-gap"
	// ReasonPeriodic: the online CPU list changed without a uevent saying so.
	ReasonPeriodic = "periodic"
)

// Event is what a Source delivers: either one CPU going online or offline,
// or (Resync true) a notice that events may have been missed and the caller
// should re-read the state of every CPU.
type Event struct {
	// Action and CPU say which CPU went online or offline. For a Resync
	// event Action is "" and CPU is -1.
	Action Action
	CPU    int
	// Seqnum is the uevent's SEQNUM; for a seqnum-gap resync it is the
	// SEQNUM that revealed the gap, otherwise 0 for a resync.
	Seqnum uint64
	// Received is when the watcher read the uevent (or decided to resync).
	// CPUEvent leaves it zero.
	Received time.Time
	// Resync and Reason (one of the Reason constants) mark a resync.
	Resync bool
	Reason string
	// Device is the DEVPATH of a Bound event.
	Device string
}

// cpuDevPathPrefix is the devpath of CPU N without N. CPUs are devices of
// the cpu subsystem, whose root is /sys/devices/system/cpu.
const cpuDevPathPrefix = "/devices/system/cpu/cpu"

// CPUEvent extracts a CPU online or offline event from u: SUBSYSTEM=cpu,
// ACTION online or offline and DEVPATH /devices/system/cpu/cpuN. ok is false
// for anything else: other subsystems (memory blocks also go online and
// offline), other actions (add, remove, change, bind, unbind), other devpaths
// and CPU numbers that are not canonical decimals below cpuset.MaxCPUs.
// Received is left zero.
func CPUEvent(u Uevent) (ev Event, ok bool) {
	if u.Subsystem != "cpu" {
		return Event{}, false
	}
	action := Action(u.Action)
	if action != Online && action != Offline {
		return Event{}, false
	}
	num, ok := strings.CutPrefix(u.DevPath, cpuDevPathPrefix)
	if !ok {
		return Event{}, false
	}
	cpu, ok := parseCPUNumber(num)
	if !ok {
		return Event{}, false
	}
	return Event{Action: action, CPU: cpu, Seqnum: u.Seqnum}, true
}

// DeviceEvent extracts a driver bind from u (ACTION=bind, any subsystem:
// PCI, platform and virtio drivers all request their IRQs in their probe,
// which the bind uevent follows). CPU is -1. ok is false for anything else.
func DeviceEvent(u Uevent) (ev Event, ok bool) {
	if u.Action != string(Bound) || u.DevPath == "" {
		return Event{}, false
	}
	return Event{Action: Bound, CPU: -1, Seqnum: u.Seqnum, Device: u.DevPath}, true
}

// parseCPUNumber accepts what the kernel prints for a CPU number: decimal
// digits without sign or leading zero.
func parseCPUNumber(s string) (int, bool) {
	if s == "" || len(s) > 6 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n >= cpuset.MaxCPUs {
		return 0, false
	}
	return n, true
}
