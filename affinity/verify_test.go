package affinity_test

import (
	"context"
	"testing"
	"time"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/ebpf"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/sysfs/sysfstest"
)

var (
	_ affinity.Sampler = ebpf.Sampler{}
	_ affinity.Sampler = sysfs.ProcSampler{}
)

func set(cpus ...int) sysfs.CPUSet { return sysfs.NewCPUSet(cpus...) }

func TestJudge(t *testing.T) {
	tests := []struct {
		name     string
		expected sysfs.CPUSet
		online   sysfs.CPUSet
		fired    map[int]uint64
		want     affinity.Verdict
	}{
		{"nothing fired", set(2), set(0, 1, 2, 3), nil, affinity.VerdictSilent},
		{"zero counts are silence", set(2), set(0, 1, 2, 3), map[int]uint64{1: 0}, affinity.VerdictSilent},
		{"all on the expected CPU", set(2), set(0, 1, 2, 3), map[int]uint64{2: 5000}, affinity.VerdictOK},
		{"within a multi-CPU mask", set(2, 3), set(0, 1, 2, 3), map[int]uint64{2: 1, 3: 4}, affinity.VerdictOK},
		{"one stray interrupt elsewhere", set(2), set(0, 1, 2, 3), map[int]uint64{2: 5000, 0: 1}, affinity.VerdictMisrouted},
		{"all elsewhere", set(1), set(0, 1, 2, 3), map[int]uint64{3: 10}, affinity.VerdictMisrouted},
		{"on an offline CPU", set(1), set(0, 1, 3), map[int]uint64{1: 3, 2: 1}, affinity.VerdictOnOfflineCPU},
	}
	for _, tt := range tests {
		if got := affinity.Judge(tt.expected, tt.online, tt.fired); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// recorded is a Sampler that returns a recorded sample.
type recorded affinity.Fired

func (r recorded) Method() string { return "recorded" }
func (r recorded) Sample(context.Context, []int, time.Duration) (affinity.Fired, error) {
	return affinity.Fired(r), nil
}

// TestVerifyRecordedSample judges a sample recorded in the VM: virtio-rng
// (IRQ 21) moved from CPU2 to CPU1 fires only there; a deliberately wrong
// expectation must be reported as misrouted, so the check can fail.
func TestVerifyRecordedSample(t *testing.T) {
	sample := recorded{21: {1: 4987}, 13: {}, 22: {0: 3}}
	want := []affinity.Expectation{
		{IRQ: 21, Actions: []string{"virtio1-input"}, Expected: set(1)},
		{IRQ: 13, Actions: []string{"uart-pl011"}, Expected: set(3)},
		{IRQ: 22, Actions: []string{"virtio3"}, Expected: set(2)},
	}
	checks, err := affinity.Verify(context.Background(), sample, want, set(0, 1, 2, 3), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]affinity.Verdict{}
	for _, c := range checks {
		got[c.IRQ] = c.Verdict
	}
	if got[21] != affinity.VerdictOK || got[13] != affinity.VerdictSilent || got[22] != affinity.VerdictMisrouted {
		t.Errorf("verdicts %v", got)
	}
	if ok, bad := affinity.Tally(checks); ok != 1 || bad != 1 {
		t.Errorf("tally ok=%d bad=%d", ok, bad)
	}
	if checks[1].Fired["1"] != 4987 || checks[1].Total != 4987 {
		t.Errorf("check of IRQ 21 = %+v", checks[1])
	}
}

// TestProcSamplerFollowsAMove drives the /proc/interrupts fallback on the
// simulator: interrupts delivered during the window are counted on the
// CPU the IRQ is effective on, before and after a move.
func TestProcSamplerFollowsAMove(t *testing.T) {
	sim := sysfstest.New(t, sysfstest.VM4(sysfstest.Kernel612))
	const rng = 21
	fire := func(context.Context, time.Duration) error { return sim.AddCounts(rng, 1000) }
	sampler := sysfs.ProcSampler{FS: sim.FS(), Wait: fire}
	for _, cpu := range []int{2, 1, 3} {
		if err := sim.WriteAffinity(rng, set(cpu)); err != nil {
			t.Fatal(err)
		}
		checks, err := affinity.Verify(context.Background(), sampler,
			[]affinity.Expectation{{IRQ: rng, Expected: set(cpu)}, {IRQ: 13, Expected: set(0)}}, sim.Online(), time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if checks[1].IRQ != rng || checks[1].Verdict != affinity.VerdictOK || checks[1].Fired[itoa(cpu)] != 1000 || len(checks[1].Fired) != 1 {
			t.Errorf("after a move to %d: %+v", cpu, checks[1])
		}
		if checks[0].Verdict != affinity.VerdictSilent {
			t.Errorf("uart fired without load: %+v", checks[0])
		}
		// A wrong expectation fails.
		wrong, _ := affinity.Verify(context.Background(), sampler,
			[]affinity.Expectation{{IRQ: rng, Expected: set((cpu + 1) % 4)}}, sim.Online(), time.Millisecond)
		if wrong[0].Verdict != affinity.VerdictMisrouted {
			t.Errorf("wrong expectation judged %s", wrong[0].Verdict)
		}
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestExpectAfter(t *testing.T) {
	results := []affinity.Result{
		{IRQ: 1, To: set(2), Effective: set(2), Status: affinity.StatusMoved},
		{IRQ: 2, To: set(3), Effective: set(0), Status: affinity.StatusPending},
		{IRQ: 3, To: set(1), Status: affinity.StatusFailed},
	}
	got := affinity.ExpectAfter(results, []affinity.IRQ{{IRQ: 1, Actions: []string{"a"}}})
	if len(got) != 2 || got[0].Expected.String() != "2" || got[1].Expected.String() != "3" || got[0].Actions[0] != "a" {
		t.Errorf("expectations %+v", got)
	}
}

type failing struct{ err error }

func (f failing) Method() string { return "ebpf" }
func (f failing) Sample(context.Context, []int, time.Duration) (affinity.Fired, error) {
	return nil, f.err
}

func TestFallbackSampler(t *testing.T) {
	var notices []string
	f := &affinity.FallbackSampler{
		Primary:  failing{ebpf.ErrNoTracefs},
		Fallback: recorded{21: {1: 5}},
		Notice:   func(s string) { notices = append(notices, s) },
	}
	for range 2 {
		fired, err := f.Sample(context.Background(), []int{21}, time.Millisecond)
		if err != nil || fired[21][1] != 5 {
			t.Fatalf("fallback sample = %v, %v", fired, err)
		}
	}
	if !f.Coarse || f.Method() != "recorded" || len(notices) != 1 {
		t.Errorf("coarse %v method %q notices %q", f.Coarse, f.Method(), notices)
	}
	ok := &affinity.FallbackSampler{Primary: recorded{}, Fallback: failing{}}
	if _, err := ok.Sample(context.Background(), nil, 0); err != nil || ok.Coarse || ok.Method() != "recorded" {
		t.Errorf("primary working: coarse %v err %v", ok.Coarse, err)
	}
}
