package ebpf

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// sourceSumFile ties the committed bpf2go output to the source it was generated from; `make
// generate` writes it (internal/sourcesum, run by gen.go right after bpf2go).
const sourceSumFile = "irqcount.c.sha256"

// sourceSum is sourceSumFile read: sha256sum lines, those after "# generated:" being bpf2go's
// output, and the "# clang:" line.
type sourceSum struct {
	clang     string     // the first line of `clang --version` at generation time
	sources   []sumEntry // irqcount.c first, then the headers of this tree it includes
	generated []sumEntry // irqcount_bpfel.o, irqcount_bpfel.go
}

type sumEntry struct{ sum, name string }

func readSourceSum(t *testing.T) sourceSum {
	t.Helper()
	f, err := os.Open(sourceSumFile)
	if err != nil {
		t.Fatalf("%v: run make generate", err)
	}
	defer f.Close()
	var s sourceSum
	inGenerated := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ln := sc.Text()
		if v, ok := strings.CutPrefix(ln, "# clang:"); ok {
			s.clang = strings.TrimSpace(v)
			continue
		}
		if ln == "# generated:" {
			inGenerated = true
			continue
		}
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		sum, name, ok := strings.Cut(ln, "  ")
		if !ok || len(sum) != 64 || name == "" {
			t.Fatalf("%s: bad line %q: run make generate", sourceSumFile, ln)
		}
		if inGenerated {
			s.generated = append(s.generated, sumEntry{sum, name})
		} else {
			s.sources = append(s.sources, sumEntry{sum, name})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(s.sources) == 0 || s.sources[0].name != "irqcount.c" || len(s.generated) == 0 {
		t.Fatalf("%s lists sources %v and generated files %v, want irqcount.c first and the generated files: run make generate",
			sourceSumFile, s.sources, s.generated)
	}
	return s
}

func fileSHA256(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (%s lists it): run make generate", err, sourceSumFile)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestSourceSum: the committed objects (irqcount_bpfel.o, irqcount_bpfel.go) are what `make
// generate` made of irqcount.c as it is now. Regenerating them here would need clang and a
// byte-identical compiler (see TestObjectsCompileFromSource for where there is one); instead the
// source, the headers of this tree it includes and the generated files must hash as irqcount.c.sha256
// recorded when they were generated. A header added to irqcount.c changes irqcount.c, so an
// unlisted header is caught too.
func TestSourceSum(t *testing.T) {
	s := readSourceSum(t)
	for _, e := range s.sources {
		if got := fileSHA256(t, e.name); got != e.sum {
			t.Errorf("%s changed since the objects were generated: run make generate (its SHA-256 is %s, %s recorded %s)",
				e.name, got, sourceSumFile, e.sum)
		}
	}
	for _, e := range s.generated {
		if got := fileSHA256(t, e.name); got != e.sum {
			t.Errorf("%s is not the file `make generate` wrote from %s: run make generate (its SHA-256 is %s, %s recorded %s)",
				e.name, s.sources[0].name, got, sourceSumFile, e.sum)
		}
	}
	hasObject := false
	for _, e := range s.generated {
		hasObject = hasObject || e.name == "irqcount_bpfel.o"
	}
	if !hasObject {
		t.Errorf("%s does not list irqcount_bpfel.o: run make generate", sourceSumFile)
	}
}
