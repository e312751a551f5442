package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// goldenCase is one run of the binary whose stdout is compared with
// testdata/<name>.golden.
type goldenCase struct {
	name string
	tree string
	env  []string
	args []string
	// code is the expected exit code; stderr a regexp it must match ("":
	// it must be empty).
	code   int
	stderr string
	// writes says the command may change the tree; otherwise the copy
	// must be byte-for-byte (and mode-for-mode) what it was.
	writes bool
	check  func(t *testing.T, tc goldenCase, root string, stdout []byte)
}

var goldenCases = []goldenCase{
	// list
	{name: "list-6.1", tree: "vm4-6.1", args: []string{"list"}},
	{name: "list-6.1-json", tree: "vm4-6.1", args: []string{"list", "--json"}},
	{name: "list-6.12", tree: "vm4-6.12", args: []string{"list"}},
	{name: "list-6.12-json", tree: "vm4-6.12", args: []string{"list", "--json"}},
	// A window on a fixture tree: the counts stand still, every rate is 0
	// (without --sample a fixture tree is not sampled and rates are null).
	{name: "list-6.12-sampled", tree: "vm4-6.12", args: []string{"list", "--sample", "50ms"}},
	{name: "list-pinned2-cpu2-offline", tree: "vm4-6.1-pinned2-cpu2-offline", args: []string{"list"}},
	{name: "list-cpus13-offline", tree: "vm4-6.1-cpus13-offline", args: []string{"list"}},
	{name: "list-cpus13-offline-json", tree: "vm4-6.1-cpus13-offline", args: []string{"list", "--json"}},

	// rebalance
	{name: "rebalance-dry-run-json-6.1", tree: "vm4-6.1", args: []string{"rebalance", "--dry-run", "--json"}},
	{name: "rebalance-dry-run-6.12", tree: "vm4-6.12", args: []string{"rebalance", "--dry-run"}},
	{name: "rebalance-dry-run-json-pinned2", tree: "vm4-6.1-pinned2", args: []string{"rebalance", "--dry-run", "--json"}},
	{name: "rebalance-dry-run-json-cpus13-offline", tree: "vm4-6.1-cpus13-offline", args: []string{"rebalance", "--dry-run", "--json"}},
	{name: "rebalance-dry-run-json-pinned2-cpu2-offline", tree: "vm4-6.1-pinned2-cpu2-offline", args: []string{"rebalance", "--dry-run", "--json"}},
	{name: "rebalance-6.1", tree: "vm4-6.1", args: []string{"rebalance"}, writes: true, check: checkListFilesMatchDryRun},
	{name: "rebalance-json-6.12", tree: "vm4-6.12", args: []string{"rebalance", "--json"}, writes: true, check: checkAppliedJSON},

	// drain
	{name: "drain2-dry-run-json-pinned2", tree: "vm4-6.1-pinned2", args: []string{"drain", "2", "--dry-run", "--json"}},
	{name: "drain2-dry-run-6.12", tree: "vm4-6.12", args: []string{"drain", "2", "--dry-run"}},
	{name: "drain2-pinned2", tree: "vm4-6.1-pinned2", args: []string{"drain", "2"}, writes: true, check: checkListFilesMatchDryRun},
	{name: "drain2-json-pinned2", tree: "vm4-6.1-pinned2", args: []string{"drain", "2", "--json"}, writes: true, check: checkAppliedJSON},
	{name: "drain2-dry-run-json-cpus13-offline", tree: "vm4-6.1-cpus13-offline", args: []string{"drain", "2", "--dry-run", "--json"}},

	// banned CPUs: the flag and both irqbalance variables ban CPU3.
	{name: "rebalance-dry-run-banned3", tree: "vm4-6.1", args: []string{"--banned-cpus", "3", "rebalance", "--dry-run"}},
	{name: "rebalance-dry-run-banned3", tree: "vm4-6.1", env: []string{"IRQBALANCE_BANNED_CPULIST=3"}, args: []string{"rebalance", "--dry-run"}},
	{name: "rebalance-dry-run-banned3", tree: "vm4-6.1", env: []string{"IRQBALANCE_BANNED_CPUS=8"}, args: []string{"rebalance", "--dry-run"}},
	{name: "rebalance-dry-run-json-banned1-env23", tree: "vm4-6.1", env: []string{"IRQBALANCE_BANNED_CPULIST=2-3"},
		args: []string{"--banned-cpus", "1", "rebalance", "--dry-run", "--json"}},
	{name: "list-banned13", tree: "vm4-6.1", env: []string{"IRQBALANCE_BANNED_CPUS=0x2"}, args: []string{"--banned-cpus", "3", "list"}},
	{name: "drain2-dry-run-banned3", tree: "vm4-6.1-pinned2", args: []string{"--banned-cpus", "3", "drain", "2", "--dry-run"}},

	// isolated CPUs are banned unless --include-isolated.
	{name: "list-isolated3", tree: "vm4-6.12-isolated3", args: []string{"list"}},
	{name: "rebalance-dry-run-json-isolated3", tree: "vm4-6.12-isolated3", args: []string{"rebalance", "--dry-run", "--json"}},
	{name: "rebalance-dry-run-json-include-isolated3", tree: "vm4-6.12-isolated3", args: []string{"--include-isolated", "rebalance", "--dry-run", "--json"}},

	// offline and online on a plain tree: see TestOfflineOnlinePlainTree.
	{name: "offline2-pinned2", tree: "vm4-6.1-pinned2", args: []string{"offline", "2"}, writes: true,
		code: 3, stderr: `movable IRQs \[13 16 20 21 22 23 26 28 29 30\] are still on CPU 2, so it stays online`},

	// trees captured from the real VM by tests/vm (skipped when absent).
	{name: "capture-vm-gicv3-4cpu-list", tree: "capture/vm-gicv3-4cpu", args: []string{"list"}},
	{name: "capture-vm-gicv3-4cpu-list-json", tree: "capture/vm-gicv3-4cpu", args: []string{"list", "--json"}},
	{name: "capture-vm-gicv3-4cpu-rebalance-dry-run", tree: "capture/vm-gicv3-4cpu", args: []string{"rebalance", "--dry-run"}},
	{name: "capture-vm-gicv3-4cpu-cpu2-offline-list", tree: "capture/vm-gicv3-4cpu-cpu2-offline", args: []string{"list"}},
	{name: "capture-vm-gicv3-4cpu-cpu2-offline-list-json", tree: "capture/vm-gicv3-4cpu-cpu2-offline", args: []string{"list", "--json"}},
	{name: "capture-vm-gicv2-4cpu-list", tree: "capture/vm-gicv2-4cpu", args: []string{"list"}},
	{name: "capture-vm-gicv2-4cpu-rebalance-dry-run", tree: "capture/vm-gicv2-4cpu", args: []string{"rebalance", "--dry-run"}},
	// No golden for capture/vm-gicv2-4cpu yet: Classify takes its chip
	// "GIC-0" for a partitioned-PPI domain and calls every SPI per-CPU.
}

func TestGolden(t *testing.T) {
	seen := map[string]int{}
	for _, tc := range goldenCases {
		seen[tc.name]++
		t.Run(fmt.Sprintf("%s#%d", tc.name, seen[tc.name]), func(t *testing.T) {
			root := copyTree(t, tc.tree)
			before, err := hashTree(root, true)
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, root, tc.env, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", res.code, tc.code, res.stderr)
			}
			checkStderr(t, res.stderr, tc.stderr)
			// Cases sharing a golden file must print the same thing; the
			// first writes it under -update.
			if !*update || seen[tc.name] == 1 {
				checkGolden(t, tc.name, res.stdout)
			}
			after, err := hashTree(root, true)
			if err != nil {
				t.Fatal(err)
			}
			if diff := diffHashes(after, before); !tc.writes && diff != "" {
				t.Errorf("the tree changed:\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, tc, root, res.stdout)
			}
		})
	}
}

func checkStderr(t *testing.T, stderr []byte, want string) {
	t.Helper()
	if want == "" {
		if len(stderr) != 0 {
			t.Errorf("unexpected stderr:\n%s", stderr)
		}
		return
	}
	if !regexp.MustCompile(want).Match(stderr) {
		t.Errorf("stderr %q does not match %q", stderr, want)
	}
}

// planDoc is the plan document of --dry-run --json, and with results that
// of a writing run.
type planDoc struct {
	Moves []struct {
		IRQ  int   `json:"irq"`
		From []int `json:"from"`
		To   []int `json:"to"`
	} `json:"moves"`
	Skipped []struct {
		IRQ    int    `json:"irq"`
		Class  string `json:"class"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	Results []struct {
		IRQ       int    `json:"irq"`
		From      []int  `json:"from"`
		To        []int  `json:"to"`
		Effective []int  `json:"effective"`
		Status    string `json:"status"`
	} `json:"results"`
}

// checkWritten checks that the tree's smp_affinity_list files hold the
// single CPU every move went to, and that the IRQs left alone still hold
// what the pristine fixture had.
func checkWritten(t *testing.T, root, tree string, doc planDoc) {
	t.Helper()
	moved := map[int]bool{}
	for _, m := range doc.Moves {
		moved[m.IRQ] = true
		if len(m.To) != 1 {
			t.Errorf("IRQ %d: planned mask %v is not a single CPU", m.IRQ, m.To)
			continue
		}
		rel := fmt.Sprintf("proc/irq/%d/smp_affinity_list", m.IRQ)
		if got, want := readFile(t, root, rel), strconv.Itoa(m.To[0])+"\n"; got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	for _, s := range doc.Skipped {
		rel := fmt.Sprintf("proc/irq/%d/smp_affinity_list", s.IRQ)
		if got, want := readFile(t, root, rel), readFile(t, treeRoot(tree), rel); !moved[s.IRQ] && got != want {
			t.Errorf("%s of skipped IRQ %d = %q, was %q", rel, s.IRQ, got, want)
		}
	}
}

// checkAppliedJSON: a writing run's JSON has one result per move, each
// "pending" on a plain tree (effective_affinity_list does not follow)
// unless the IRQ was already delivered to its target, and the files hold
// the plan.
func checkAppliedJSON(t *testing.T, tc goldenCase, root string, stdout []byte) {
	t.Helper()
	var doc planDoc
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Moves) == 0 || len(doc.Results) != len(doc.Moves) {
		t.Fatalf("%d moves, %d results", len(doc.Moves), len(doc.Results))
	}
	for i, r := range doc.Results {
		// A plain tree's effective file never follows a write: the IRQ
		// counts as narrowed where it was on the target already, as
		// pending everywhere else.
		want := "pending"
		if slices.Equal(r.Effective, r.To) && slices.Equal(r.From, r.To) {
			want = "narrowed"
		}
		if r.IRQ != doc.Moves[i].IRQ || r.Status != want || !slices.Equal(r.To, doc.Moves[i].To) {
			t.Errorf("result %+v for move %+v, want %s to the planned CPU", r, doc.Moves[i], want)
		}
	}
	checkWritten(t, root, tc.tree, doc)
}

// checkListFilesMatchDryRun: after a writing text run, the files hold what
// a dry run of the same command plans on the pristine fixture.
func checkListFilesMatchDryRun(t *testing.T, tc goldenCase, root string, _ []byte) {
	t.Helper()
	pristine := copyTree(t, tc.tree)
	res := run(t, pristine, tc.env, append(slices.Clone(tc.args), "--dry-run", "--json")...)
	if res.code != 0 {
		t.Fatalf("dry run: exit %d: %s", res.code, res.stderr)
	}
	var doc planDoc
	if err := json.Unmarshal(res.stdout, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Moves) == 0 {
		t.Fatal("the dry run plans no move")
	}
	checkWritten(t, root, tc.tree, doc)
}

// TestBadInput: refused arguments and malformed files exit 2 (usage) or 1
// (error) with a clear message, print nothing on stdout and write nothing.
func TestBadInput(t *testing.T) {
	// corrupt drops the last count of IRQ 13's row.
	corrupt := func(t *testing.T, root string) {
		path := filepath.Join(root, "proc", "interrupts")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := regexp.MustCompile(`(?m)^( 13:(?:\s+\d+){3})\s+\d+`).ReplaceAll(data, []byte("$1"))
		if bytes.Equal(out, data) {
			t.Fatal("corrupt: no IRQ 13 row")
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		tree    string
		prepare func(*testing.T, string)
		env     []string
		args    []string
		code    int
		stderr  string
	}{
		{"drain CPU out of range", "vm4-6.1", nil, nil, []string{"drain", "7"}, 2, `CPU 7 does not exist \(possible CPUs: 0-3\)`},
		{"drain offline CPU", "vm4-6.1-cpus13-offline", nil, nil, []string{"drain", "1"}, 2, `CPU 1 is offline \(online CPUs: 0,2\)`},
		{"drain the last allowed CPU", "vm4-6.1", nil, nil, []string{"--banned-cpus", "1-3", "drain", "0"}, 2, `CPU 0 is the last allowed CPU \(allowed: 0\)`},
		{"drain every CPU", "vm4-6.1", nil, nil, []string{"drain", "0-3"}, 2, `CPUs 0-3 are all the allowed CPUs \(allowed: 0-3\)`},
		{"drain the last online CPU", "vm4-6.1-cpus13-offline", nil, nil, []string{"drain", "0", "2"}, 2, `CPUs 0,2 are all the allowed CPUs`},
		{"drain a word", "vm4-6.1", nil, nil, []string{"drain", "two"}, 2, `drain: "two" is not a CPU number or list`},
		{"drain nothing", "vm4-6.1", nil, nil, []string{"drain"}, 2, `give at least one CPU`},
		{"drain with isolated banned", "vm4-6.12-isolated3", nil, nil, []string{"drain", "0-2"}, 2, `CPUs 0-2 are all the allowed CPUs`},
		{"offline CPU out of range", "vm4-6.1", nil, nil, []string{"offline", "4"}, 2, `CPU 4 does not exist`},
		{"offline an offline CPU", "vm4-6.1-cpus13-offline", nil, nil, []string{"offline", "3"}, 2, `CPU 3 is offline`},
		{"online an online CPU", "vm4-6.1", nil, nil, []string{"online", "2"}, 2, `CPU 2 is already online`},
		{"online CPU out of range", "vm4-6.1", nil, nil, []string{"online", "9"}, 2, `CPU 9 does not exist`},
		{"bad --banned-cpus", "vm4-6.1", nil, nil, []string{"--banned-cpus", "x", "rebalance"}, 2, `--banned-cpus: "x" is not a cpulist such as 2-3,8`},
		{"bad IRQBALANCE_BANNED_CPULIST", "vm4-6.1", nil, []string{"IRQBALANCE_BANNED_CPULIST=3-1"}, []string{"rebalance"}, 2, `IRQBALANCE_BANNED_CPULIST: `},
		{"bad IRQBALANCE_BANNED_CPUS", "vm4-6.1", nil, []string{"IRQBALANCE_BANNED_CPUS=zz"}, []string{"rebalance"}, 2, `IRQBALANCE_BANNED_CPUS: "zz" is not a hexadecimal CPU mask`},
		{"bad --banned-irqs", "vm4-6.1", nil, nil, []string{"--banned-irqs", "13,x", "rebalance"}, 2, `--banned-irqs: "x" is not an IRQ number`},
		{"unknown flag", "vm4-6.1", nil, nil, []string{"--frobnicate", "list"}, 2, `unknown flag --frobnicate\n`},
		{"unknown command flag", "vm4-6.1", nil, nil, []string{"rebalance", "--frobnicate"}, 2, `unknown flag --frobnicate`},
		{"misspelt flag", "vm4-6.1", nil, nil, []string{"rebalance", "--dryrun"}, 2, `unknown flag --dryrun; did you mean --dry-run\?`},
		{"misspelt global flag", "vm4-6.1", nil, nil, []string{"--banned-cpu", "2", "list"}, 2, `did you mean --banned-cpus\?`},
		{"misspelt command", "vm4-6.1", nil, nil, []string{"lsit"}, 2, `"lsit" is not a command; did you mean list\?`},
		{"hex mask for a cpulist", "vm4-6.1", nil, nil, []string{"--banned-cpus", "0x4", "list"}, 2, `"0x4" is not a cpulist such as 2-3,8 \(a hexadecimal mask\? as a cpulist "0x4" is 2; IRQBALANCE_BANNED_CPUS takes masks\)`},
		{"unknown command", "vm4-6.1", nil, nil, []string{"frobnicate"}, 2, `"frobnicate" is not a command \(the commands: list, `},
		{"online beyond possible", "vm4-6.1", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "sys/devices/system/cpu/online"), []byte("0-7\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"rebalance"}, 1, `CPUs 4-7 are online but not possible`},
		{"malformed /proc/interrupts: list", "vm4-6.1", corrupt, nil, []string{"list"}, 1, `cannot parse kernel file: /proc/interrupts line 3 .*has 3 counts, want 4`},
		{"malformed /proc/interrupts: rebalance", "vm4-6.1", corrupt, nil, []string{"rebalance"}, 1, `cannot parse kernel file: /proc/interrupts line 3`},
		{"malformed /proc/interrupts: drain", "vm4-6.1", corrupt, nil, []string{"drain", "0"}, 1, `cannot parse kernel file`},
		{"malformed smp_affinity_list", "vm4-6.1", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "proc/irq/20/smp_affinity_list"), []byte("0-\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"rebalance"}, 1, `IRQ 20 smp_affinity_list: .*bad CPU number`},
		{"missing online file", "vm4-6.1", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "sys/devices/system/cpu/online")); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"list"}, 1, `cannot read kernel file: .*online: no such file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t, tc.tree)
			if tc.prepare != nil {
				tc.prepare(t, root)
			}
			before, err := hashTree(root, true)
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, root, tc.env, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit code %d, want %d", res.code, tc.code)
			}
			checkStderr(t, res.stderr, `^irqshift: .*`+tc.stderr)
			if bytes.Count(res.stderr, []byte("\n")) > 3 {
				t.Errorf("stderr is not one clear message:\n%s", res.stderr)
			}
			if len(res.stdout) != 0 {
				t.Errorf("stdout:\n%s", res.stdout)
			}
			after, err := hashTree(root, true)
			if err != nil {
				t.Fatal(err)
			}
			if diff := diffHashes(after, before); diff != "" {
				t.Errorf("the tree changed:\n%s", diff)
			}
		})
	}
	t.Run("missing --proc directory", func(t *testing.T) {
		res := run(t, filepath.Join(t.TempDir(), "nothing"), nil, "list")
		if res.code != 2 || !strings.Contains(string(res.stderr), "--proc/--sys") {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

// TestOfflineOnlinePlainTree runs offline and online against plain trees.
//
// The binary writes 0 or 1 to sys/devices/system/cpu/cpuN/online and then
// re-reads the state, but a plain tree is not a kernel: the `online` file
// keeps its old content and no effective_affinity_list follows the new
// masks. We chose to assert exactly that, rather than fake the kernel from
// a hook (a child process cannot be served by the in-process simulator):
//
//   - offline 2 drains CPU2 (the masks in the tree hold the targets),
//     re-reads, still sees the drained IRQs effective on CPU2, and so
//     never writes 0 to cpu2/online: it exits 3 listing them in
//     left_behind, with "offlined" empty;
//   - online 2 writes 1 to cpu2/online, re-reads `online` (still 0-1,3)
//     and exits 1: "CPU 2 did not come online", without rebalancing.
//
// The simulator-backed tests in affinity/ cover what the kernel does.
func TestOfflineOnlinePlainTree(t *testing.T) {
	t.Run("offline", func(t *testing.T) {
		root := copyTree(t, "vm4-6.1-pinned2")
		res := run(t, root, nil, "offline", "2", "--json")
		if res.code != 3 {
			t.Errorf("exit %d, want 3; stderr %s", res.code, res.stderr)
		}
		checkGolden(t, "offline2-json-pinned2", res.stdout)
		var doc struct {
			planDoc
			CPUs       []int `json:"cpus"`
			Offlined   []int `json:"offlined"`
			LeftBehind []int `json:"left_behind"`
		}
		if err := json.Unmarshal(res.stdout, &doc); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, root, "sys/devices/system/cpu/cpu2/online"); strings.TrimSpace(got) != "1" {
			t.Errorf("cpu2/online = %q, want 1: IRQs were left on CPU2", got)
		}
		if got := readFile(t, root, "sys/devices/system/cpu/online"); got != "0-3\n" {
			t.Errorf("online = %q: a plain tree does not update it", got)
		}
		var moved []int
		for _, r := range doc.Results {
			if r.Status == "pending" {
				moved = append(moved, r.IRQ)
			}
		}
		if len(doc.Offlined) != 0 {
			t.Errorf("offlined %v with IRQs left behind", doc.Offlined)
		}
		if !slices.Equal(doc.CPUs, []int{2}) || len(moved) == 0 || !slices.Equal(doc.LeftBehind, moved) {
			t.Errorf("cpus %v, left_behind %v, want [2] and the drained IRQs %v (effective_affinity_list is stale on a plain tree)",
				doc.CPUs, doc.LeftBehind, moved)
		}
		checkWritten(t, root, "vm4-6.1-pinned2", doc.planDoc)
	})
	t.Run("online", func(t *testing.T) {
		root := copyTree(t, "vm4-6.1-pinned2-cpu2-offline")
		res := run(t, root, nil, "online", "2")
		if res.code != 1 {
			t.Errorf("exit %d, want 1", res.code)
		}
		checkStderr(t, res.stderr, `^irqshift: CPU 2 did not come online\n$`)
		if len(res.stdout) != 0 {
			t.Errorf("stdout:\n%s", res.stdout)
		}
		if got := readFile(t, root, "sys/devices/system/cpu/cpu2/online"); strings.TrimSpace(got) != "1" {
			t.Errorf("cpu2/online = %q, want 1", got)
		}
	})
}
