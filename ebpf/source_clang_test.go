//go:build (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm) && linux

package ebpf

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cebpf "github.com/cilium/ebpf"
)

// TestObjectsCompileFromSource compiles irqcount.c again, with gen.go's own bpf2go line, where
// the clang that generated the committed objects is installed (irqcount.c.sha256's "# clang:"
// line; $BPF2GO_CC or clang, as for bpf2go), and compares each program's instructions and each
// map's shape with the committed irqcount_bpfel.o. Another clang version compiles differently, so
// the test skips then, and where there is no clang (a normal build machine: `make generate`
// installs it). The same clang, flags and source give the same instructions; the bytes of the
// object may still differ by the system headers (BTF), so they are only logged.
func TestObjectsCompileFromSource(t *testing.T) {
	s := readSourceSum(t)
	cc := os.Getenv("BPF2GO_CC")
	if cc == "" {
		cc = "clang"
	}
	ccPath, err := exec.LookPath(cc)
	if err != nil {
		t.Skipf("no %s here: irqcount.c not compiled (TestSourceSum still ties it to the objects)", cc)
	}
	out, err := exec.Command(ccPath, "--version").Output()
	if err != nil {
		t.Skipf("%s --version: %v", ccPath, err)
	}
	version, _, _ := strings.Cut(string(out), "\n")
	if version = strings.TrimSpace(version); version != s.clang {
		t.Skipf("%s is %q, the objects were generated with %q: its instructions may differ, not compared", cc, version, s.clang)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") == "" {
			t.Skip("no go command to run bpf2go with")
		}
	}

	args := bpf2goArgs(t)
	dir := t.TempDir()
	args = slices.Insert(args, 0, "tool", "bpf2go", "-output-dir", dir)
	cmd := exec.Command(goTool, args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=ebpf", "GOFILE=gen.go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	fresh := filepath.Join(dir, "irqcount_bpfel.o")
	want, err := cebpf.LoadCollectionSpec(fresh)
	if err != nil {
		t.Fatalf("the fresh compile: %v", err)
	}
	got, err := cebpf.LoadCollectionSpec("irqcount_bpfel.o")
	if err != nil {
		t.Fatalf("the committed object: %v", err)
	}

	const hint = "irqcount_bpfel.o does not hold what irqcount.c compiles to: run make generate"
	if g, w := sortedKeys(got.Programs), sortedKeys(want.Programs); !slices.Equal(g, w) {
		t.Fatalf("%s: programs %v, compiled now %v", hint, g, w)
	}
	for name, wp := range want.Programs {
		gp := got.Programs[name]
		if gp.SectionName != wp.SectionName || gp.Type != wp.Type || gp.AttachTo != wp.AttachTo {
			t.Errorf("%s: program %s in section %s (%v, %s), compiled now %s (%v, %s)", hint, name,
				gp.SectionName, gp.Type, gp.AttachTo, wp.SectionName, wp.Type, wp.AttachTo)
		}
		g, w := instructionText(gp), instructionText(wp)
		if len(g) != len(w) {
			t.Errorf("%s: program %s has %d instructions, compiled now %d", hint, name, len(g), len(w))
			continue
		}
		for i := range g {
			if g[i] != w[i] {
				t.Errorf("%s: program %s, instruction %d is %s, compiled now %s", hint, name, i, g[i], w[i])
				break
			}
		}
	}
	if g, w := sortedKeys(got.Maps), sortedKeys(want.Maps); !slices.Equal(g, w) {
		t.Fatalf("%s: maps %v, compiled now %v", hint, g, w)
	}
	for name, wm := range want.Maps {
		gm := got.Maps[name]
		if gm.Type != wm.Type || gm.KeySize != wm.KeySize || gm.ValueSize != wm.ValueSize ||
			gm.MaxEntries != wm.MaxEntries || gm.Flags != wm.Flags {
			t.Errorf("%s: map %s is %v key %d value %d max %d flags %#x, compiled now %v key %d value %d max %d flags %#x",
				hint, name, gm.Type, gm.KeySize, gm.ValueSize, gm.MaxEntries, gm.Flags,
				wm.Type, wm.KeySize, wm.ValueSize, wm.MaxEntries, wm.Flags)
		}
	}
	committed, err := os.ReadFile("irqcount_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s): %d programs, %d maps compared; the object is byte-identical: %v",
		cc, version, len(want.Programs), len(want.Maps), bytes.Equal(committed, now))
}

// bpf2goArgs returns the arguments of gen.go's `//go:generate go tool bpf2go` line after "bpf2go".
func bpf2goArgs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for ln := range strings.SplitSeq(string(src), "\n") {
		if rest, ok := strings.CutPrefix(ln, "//go:generate go tool bpf2go "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("gen.go has no //go:generate go tool bpf2go line")
	return nil
}

// instructionText is each instruction of p with what it refers to.
func instructionText(p *cebpf.ProgramSpec) []string {
	out := make([]string, len(p.Instructions))
	for i, ins := range p.Instructions {
		out[i] = fmt.Sprintf("%v (op %#x dst %d src %d off %d imm %d ref %q sym %q)",
			ins, uint32(ins.OpCode), ins.Dst, ins.Src, ins.Offset, ins.Constant, ins.Reference(), ins.Symbol())
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
