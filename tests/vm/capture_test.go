//go:build vm

package vmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCaptureFixtures snapshots this VM's IRQ and CPU files for the fixtures under
// tests/testdata/vm-NAME. It runs only when IRQSHIFT_VM_CAPTURE=NAME[,NAME...] is set
// (run.sh --capture, i.e. `make vm-capture`). Each tree is printed as a base64 .tar.gz between
//
//	IRQSHIFT-VM-CAPTURE-BEGIN vm-NAME <md5 of the .tar.gz>
//	IRQSHIFT-VM-CAPTURE-END vm-NAME
//
// and run.sh extracts it on the host. A NAME ending in -cpuN-offline (repeatable) is taken with
// exactly those CPUs offline; names are taken in order in one boot; all CPUs end up online.
func TestCaptureFixtures(t *testing.T) {
	names := os.Getenv("IRQSHIFT_VM_CAPTURE")
	if names == "" {
		t.Skip("IRQSHIFT_VM_CAPTURE not set")
	}
	mustRoot(t)
	t.Cleanup(func() {
		if err := setOffline(nil); err != nil {
			t.Errorf("bring all CPUs online: %v", err)
		}
	})
	for _, name := range strings.Split(names, ",") {
		name = "vm-" + strings.TrimPrefix(strings.TrimSpace(name), "vm-")
		offline, err := checkCaptureName(t, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := setOffline(offline); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: online %s", name, readTrim(t, "/sys/devices/system/cpu/online"))
		tr := newTree(name)
		tr.snapshot()
		tgz, err := tr.tarGz()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		emitCapture(name, tgz)
		t.Logf("%s: %d files, %d bytes compressed", name, len(tr.modes), len(tgz))
	}
}

var offlineSuffix = regexp.MustCompile(`-cpu([0-9]+)-offline$`)

// checkCaptureName checks that NAME describes this VM (gicvN, Ncpu) and returns the CPUs
// its -cpuN-offline suffixes ask to be offline.
func checkCaptureName(t *testing.T, name string) ([]int, error) {
	var offline []int
	rest := name
	for {
		m := offlineSuffix.FindStringSubmatch(rest)
		if m == nil {
			break
		}
		n, _ := strconv.Atoi(m[1])
		offline = append(offline, n)
		rest = strings.TrimSuffix(rest, m[0])
	}
	g := gicVersion(readInterrupts(t))
	if strings.Contains(rest, "gicv3") && g != "3" || strings.Contains(rest, "gicv2") && g != "2" {
		return nil, fmt.Errorf("%s: but this VM runs GICv%s", name, g)
	}
	possible, err := parseCPUList(readTrim(t, "/sys/devices/system/cpu/possible"))
	if err != nil {
		return nil, err
	}
	if m := regexp.MustCompile(`-([0-9]+)cpu`).FindStringSubmatch(rest); m != nil && m[1] != strconv.Itoa(len(possible)) {
		return nil, fmt.Errorf("%s: but this VM has %d CPUs", name, len(possible))
	}
	return offline, nil
}

// setOffline makes exactly the given CPUs offline and every other hotpluggable CPU online.
func setOffline(offline []int) error {
	dirs, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*")
	for _, d := range dirs {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "cpu"))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "online"))
		if err != nil {
			continue // not hotpluggable
		}
		want := "1"
		for _, o := range offline {
			if o == n {
				want = "0"
			}
		}
		if strings.TrimSpace(string(b)) != want {
			if err := setCPUOnline(n, want == "1"); err != nil {
				return fmt.Errorf("cpu%d online=%s: %w", n, want, err)
			}
		}
	}
	return nil
}

type tree struct {
	root  string
	files map[string][]byte // relative path -> content
	dirs  map[string]bool   // empty action directories (they get a .keep)
	modes map[string]os.FileMode
}

func newTree(root string) *tree {
	return &tree{root: root, files: map[string][]byte{}, dirs: map[string]bool{}, modes: map[string]os.FileMode{}}
}

func (tr *tree) copy(src, rel string) {
	st, err := os.Stat(src)
	if err != nil || !st.Mode().IsRegular() {
		return
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return
	}
	tr.files[rel] = b
	tr.modes[rel] = st.Mode().Perm()
}

func globDirs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	var out []string
	for _, p := range m {
		if _, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(filepath.Base(p), "cpu"), "node")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (tr *tree) snapshot() {
	tr.copy("/proc/interrupts", "proc/interrupts")
	for _, d := range globDirs("/proc/irq/[0-9]*") {
		n := filepath.Base(d)
		for _, f := range []string{"smp_affinity", "smp_affinity_list", "effective_affinity", "effective_affinity_list", "affinity_hint", "node"} {
			tr.copy(filepath.Join(d, f), filepath.Join("proc/irq", n, f))
		}
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() {
				tr.dirs[filepath.Join("proc/irq", n, e.Name())] = true
			}
		}
	}
	for _, d := range globDirs("/sys/kernel/irq/[0-9]*") {
		n := filepath.Base(d)
		for _, f := range []string{"actions", "chip_name", "hwirq", "name", "per_cpu_count", "type", "wakeup"} {
			tr.copy(filepath.Join(d, f), filepath.Join("sys/kernel/irq", n, f))
		}
	}
	const c = "/sys/devices/system/cpu"
	for _, f := range []string{"online", "offline", "possible", "present", "isolated", "nohz_full", "kernel_max"} {
		tr.copy(filepath.Join(c, f), filepath.Join("sys/devices/system/cpu", f))
	}
	for _, d := range globDirs(c + "/cpu[0-9]*") {
		n := filepath.Base(d)
		tr.copy(filepath.Join(d, "online"), filepath.Join("sys/devices/system/cpu", n, "online"))
		for _, f := range []string{"core_id", "cluster_id", "package_id", "physical_package_id", "thread_siblings_list", "core_cpus_list"} {
			tr.copy(filepath.Join(d, "topology", f), filepath.Join("sys/devices/system/cpu", n, "topology", f))
		}
	}
	for _, d := range globDirs("/sys/devices/system/node/node[0-9]*") {
		tr.copy(filepath.Join(d, "cpulist"), filepath.Join("sys/devices/system/node", filepath.Base(d), "cpulist"))
	}
}

// tarGz renders the tree rooted at tr.root: the files, a .keep in each action directory and
// MODES ("octal-mode relative-path" per file, sorted by path).
func (tr *tree) tarGz() ([]byte, error) {
	all := map[string][]byte{}
	for p, b := range tr.files {
		all[p] = b
	}
	for d := range tr.dirs {
		all[filepath.Join(d, ".keep")] = nil
	}
	var paths []string
	for p := range tr.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var modes bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&modes, "%04o %s\n", tr.modes[p], p)
	}
	all["MODES"] = modes.Bytes()

	var names []string
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	now := time.Now().Truncate(time.Second)
	madeDir := map[string]bool{}
	var mkdirs func(string) error
	mkdirs = func(d string) error {
		if d == "." || madeDir[d] {
			return nil
		}
		if err := mkdirs(filepath.Dir(d)); err != nil {
			return err
		}
		madeDir[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: now})
	}
	for _, p := range names {
		full := filepath.Join(tr.root, p)
		if err := mkdirs(filepath.Dir(full)); err != nil {
			return nil, err
		}
		b := all[p]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: full, Mode: 0o644, Size: int64(len(b)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// emitCapture prints the tarball between the markers, straight to the console (not via t.Log,
// which would indent it), with kernel messages held back meanwhile.
func emitCapture(name string, tgz []byte) {
	const printk = "/proc/sys/kernel/printk"
	old, err := os.ReadFile(printk)
	if err == nil {
		_ = os.WriteFile(printk, []byte("1"), 0o644)
		defer func() { _ = os.WriteFile(printk, []byte(strings.Fields(string(old))[0]), 0o644) }()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nIRQSHIFT-VM-CAPTURE-BEGIN %s %x\n", name, md5.Sum(tgz))
	enc := base64.StdEncoding.EncodeToString(tgz)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	fmt.Fprintf(&b, "IRQSHIFT-VM-CAPTURE-END %s\n", name)
	os.Stdout.WriteString(b.String())
}
