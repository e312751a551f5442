// Command sourcesum writes the file that ties the committed bpf2go output of ebpf/ to the source
// it was generated from. `make generate` (go generate ./ebpf, gen.go) runs it in ebpf/ right after
// bpf2go:
//
//	go run ./internal/sourcesum irqcount.c.sha256 irqcount.c -- irqcount_bpfel.o irqcount_bpfel.go
//
// The file lists, as sha256sum prints them (so `sha256sum -c` checks it too), the SHA-256 of the
// source and of every header it includes with quotes that exists here (followed recursively),
// then, after a "# generated:" line, of the generated files; a "# clang:" line records the first
// line of `clang --version` ($BPF2GO_CC when set, as for bpf2go). TestSourceSum (source_test.go)
// checks the hashes on every test run; TestObjectsCompileFromSource compares the instructions
// with a fresh compile where that same clang is installed.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sourcesum: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: sourcesum OUT SOURCE [-- GENERATED...]")
	}
	out, source, generated := args[0], args[1], []string(nil)
	if rest := args[2:]; len(rest) > 0 {
		if rest[0] != "--" {
			return fmt.Errorf("want -- before the generated files, got %q", rest[0])
		}
		generated = rest[1:]
	}
	sources, err := withIncludes(source)
	if err != nil {
		return err
	}
	cc := os.Getenv("BPF2GO_CC")
	if cc == "" {
		cc = "clang"
	}
	version, err := exec.Command(cc, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", cc, err)
	}
	first, _, _ := strings.Cut(string(version), "\n")

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by `make generate` (go generate ./ebpf, see gen.go) right after bpf2go: the SHA-256\n")
	fmt.Fprintf(&b, "# of %s and of the headers of this tree it includes, then of what bpf2go made of them.\n", source)
	fmt.Fprintf(&b, "# Checked by TestSourceSum (ebpf/source_test.go) and by `sha256sum -c`. Do not edit.\n")
	fmt.Fprintf(&b, "# clang: %s\n", strings.TrimSpace(first))
	for _, f := range sources {
		if err := line(&b, f); err != nil {
			return err
		}
	}
	if len(generated) > 0 {
		fmt.Fprintf(&b, "# generated:\n")
	}
	for _, f := range generated {
		if err := line(&b, f); err != nil {
			return err
		}
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// line writes f's sha256sum line.
func line(b *bytes.Buffer, f string) error {
	data, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	fmt.Fprintf(b, "%s  %s\n", hex.EncodeToString(sum[:]), filepath.ToSlash(f))
	return nil
}

var quotedInclude = regexp.MustCompile(`^\s*#\s*include\s*"([^"]+)"`)

// withIncludes returns source and, recursively, every file it includes with quotes that exists
// relative to the including file (a quoted name found nowhere there is one of the compiler's
// include path: a system header), each once, in the order first met.
func withIncludes(source string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	var walk func(string) error
	walk = func(f string) error {
		f = path.Clean(filepath.ToSlash(f))
		if seen[f] {
			return nil
		}
		seen[f] = true
		out = append(out, f)
		file, err := os.Open(f)
		if err != nil {
			return err
		}
		defer file.Close()
		s := bufio.NewScanner(file)
		for s.Scan() {
			m := quotedInclude.FindStringSubmatch(s.Text())
			if m == nil {
				continue
			}
			inc := path.Join(path.Dir(f), m[1])
			if _, err := os.Stat(inc); err != nil {
				continue
			}
			if err := walk(inc); err != nil {
				return err
			}
		}
		return s.Err()
	}
	if err := walk(source); err != nil {
		return nil, err
	}
	return out, nil
}
