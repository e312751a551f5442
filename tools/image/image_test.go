package main

// TestImage builds the image twice from the same static binaries (the two
// must be the same bytes), reads the OCI layout back with
// go-containerregistry and checks it against the DaemonSet
// (deploy/kubernetes/irqshift.yaml): tag, platforms, config, layer, and the
// DaemonSet's command and args run in it against a fixture.
//
// Binaries: IRQSHIFT_IMAGE_BINARIES=DIR (irqshift-linux-amd64 and
// irqshift-linux-arm64 in DIR; `make test-image` passes those `make image`
// built), else the test builds them as the Makefile does. With
// IRQSHIFT_IMAGE_LAYOUT=DIR (`make test-image` passes bin/image/irqshift-oci)
// the layout `make image` wrote, and its DIR.tar, are the first of the two
// builds, and the layout checked.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"go.yaml.in/yaml/v3"
)

const (
	manifestFile  = "deploy/kubernetes/irqshift.yaml"
	changelogFile = "packaging/debian/changelog"
	fixture       = "tests/testdata/vm-gicv3-4cpu"
	imageName     = "irqshift/irqshift"
	// hangGuard bounds every wait on the daemon; it is no pass criterion.
	hangGuard = 60 * time.Second
)

func TestImage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	version, date, err := ReadChangelog(filepath.Join(root, changelogFile))
	if err != nil {
		t.Fatal(err)
	}
	created, err := Created(date)
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t, root, version)
	spec := Spec{Version: version, Created: created, Binaries: bins}

	// Two builds, as `make image` does them: make image's own (in another
	// process, IRQSHIFT_IMAGE_LAYOUT) and one here, else two here.
	tmp := t.TempDir()
	var dirs []string
	if made := os.Getenv("IRQSHIFT_IMAGE_LAYOUT"); made != "" {
		dirs = append(dirs, made)
	}
	for len(dirs) < 2 {
		idx, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(tmp, fmt.Sprintf("build%d", len(dirs)), "irqshift-oci")
		if err := WriteLayout(dir, idx, version); err != nil {
			t.Fatal(err)
		}
		if err := WriteArchive(dir+".tar", dir, created); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}

	t.Run("Reproducible", func(t *testing.T) {
		a, b := treeFiles(t, dirs[0]), treeFiles(t, dirs[1])
		if len(a) == 0 || !equalTrees(t, a, b, dirs[1]) {
			t.Errorf("two builds of the same binaries differ: %s and %s", dirs[0], dirs[1])
		}
		if !bytes.Equal(readFile(t, dirs[0]+".tar"), readFile(t, dirs[1]+".tar")) {
			t.Errorf("two builds give different oci-archives: %s.tar and %s.tar", dirs[0], dirs[1])
		}
	})

	// Everything below reads the layout back from disk: make image's if
	// given.
	lp, err := layout.FromPath(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 {
		t.Fatalf("index.json holds %d descriptors, want the one image index", len(topManifest.Manifests))
	}
	desc := topManifest.Manifests[0]
	if desc.MediaType != types.OCIImageIndex {
		t.Errorf("index.json names a %s, want %s", desc.MediaType, types.OCIImageIndex)
	}
	if got := desc.Annotations[RefName]; got != version {
		t.Errorf("index.json tags the image %q (%s), want %q", got, RefName, version)
	}
	idx, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("go-containerregistry's validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("image index media type %s", im.MediaType)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "irqshift",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.source":   "https://github.com/irqshift/irqshift",
		"org.opencontainers.image.licenses": Licenses,
	}
	for k, v := range wantLabels {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	t.Run("Licenses", func(t *testing.T) { checkLicenses(t, root) })

	// The platforms, each image's config and its one layer.
	var plats []string
	extracted := map[string]string{} // GOARCH: the binary taken out of its layer
	var cfgs = map[string]*v1.ConfigFile{}
	var layerFiles = map[string]map[string]*tar.Header{}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		p := *d.Platform
		plats = append(plats, p.String())
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s, want %s", p, d.MediaType, types.OCIManifestSchema1)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfgs[p.Architecture] = cf
		if cf.OS != p.OS || cf.Architecture != p.Architecture || cf.Variant != p.Variant {
			t.Errorf("%s: config says %s/%s/%s", p, cf.OS, cf.Architecture, cf.Variant)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("%s: config media type %s", p, m.Config.MediaType)
		}
		if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/bin/irqshift"}) || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q, want [/usr/bin/irqshift] and none", p, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		if cf.Config.User != "" || cf.Config.WorkingDir != "" || len(cf.Config.Volumes) != 0 || len(cf.Config.ExposedPorts) != 0 {
			t.Errorf("%s: config sets more than entrypoint, PATH and labels: %+v", p, cf.Config)
		}
		if !slices.Equal(cf.Config.Env, []string{PathEnv}) {
			t.Errorf("%s: env %q, want only %s", p, cf.Config.Env, PathEnv)
		}
		for k, v := range wantLabels {
			if cf.Config.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", p, k, cf.Config.Labels[k], v)
			}
		}
		if !cf.Created.Equal(created) || len(cf.History) != 1 || !cf.History[0].Created.Equal(created) {
			t.Errorf("%s: created %v, history %+v; want %v throughout", p, cf.Created, cf.History, created)
		}

		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%s: %d layers, want 1", p, len(layers))
		}
		if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
			t.Errorf("%s: layer media type %s, want %s", p, mt, types.OCILayer)
		}
		files, bin := readLayer(t, layers[0], created)
		layerFiles[p.Architecture] = files
		var names []string
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		if want := []string{"usr/", "usr/bin/", "usr/bin/irqshift"}; !slices.Equal(names, want) {
			t.Errorf("%s: layer holds %q, want %q", p, names, want)
		}
		if h := files["usr/bin/irqshift"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 {
			t.Errorf("%s: /usr/bin/irqshift is %+v, want a regular file 0755", p, h)
		}
		checkELF(t, p, bin)
		var src string
		for _, b := range bins {
			if b.Arch == p.Architecture {
				src = b.Path
			}
		}
		if !bytes.Equal(bin, readFile(t, src)) {
			t.Errorf("%s: the layer's binary is not %s", p, src)
		}
		out := filepath.Join(t.TempDir(), "irqshift")
		if err := os.WriteFile(out, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		extracted[p.Architecture] = out
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(plats, want) {
		t.Errorf("platforms %q, want %q", plats, want)
	}

	t.Run("DaemonSet", func(t *testing.T) {
		pod := readPod(t, filepath.Join(root, manifestFile))
		c := pod.container
		name, tag, _ := strings.Cut(c.Image, ":")
		if name != imageName || tag != version {
			t.Errorf("%s runs image %s, but the image built is %s:%s (packaging/debian/changelog)", manifestFile, c.Image, imageName, version)
		}
		if runtime.GOOS != "linux" || extracted[runtime.GOARCH] == "" {
			t.Skipf("no image binary runs on %s/%s", runtime.GOOS, runtime.GOARCH)
		}
		cf := cfgs[runtime.GOARCH]
		bin := extracted[runtime.GOARCH]
		// What the runtime would exec: the command, looked up in the
		// image's PATH when relative, else the entrypoint.
		exe := resolveCommand(t, c.Command, cf, layerFiles[runtime.GOARCH])
		if exe != cf.Config.Entrypoint[0] {
			t.Fatalf("command %q runs %s, not the image's irqshift %s", c.Command, exe, cf.Config.Entrypoint[0])
		}
		if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "irqshift version "+version {
			t.Errorf("irqshift --version in the image: %q, %v; want irqshift version %s", out, err, version)
		}
		runPod(t, root, pod, bin, cf.Config.Env)
	})
}

// binaries returns the two static binaries the image is built from.
func binaries(t *testing.T, root, version string) []Binary {
	t.Helper()
	var bins []Binary
	if dir := os.Getenv("IRQSHIFT_IMAGE_BINARIES"); dir != "" {
		for _, arch := range []string{"amd64", "arm64"} {
			p := filepath.Join(dir, "irqshift-linux-"+arch)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("IRQSHIFT_IMAGE_BINARIES: %v", err)
			}
			bins = append(bins, Binary{Arch: arch, Path: p})
		}
		return bins
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, "irqshift-linux-"+arch)
		// As the Makefile's image-bins target builds them.
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-X main.version="+version, "-o", p, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building irqshift for %s: %v\n%s", arch, err, out)
		}
		bins = append(bins, Binary{Arch: arch, Path: p})
	}
	return bins
}

// readLayer returns the layer's tar headers by name and the binary's bytes;
// every entry must be root's and carry the build's time stamp.
func readLayer(t *testing.T, l v1.Layer, mtime time.Time) (map[string]*tar.Header, []byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	var bin []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if files[h.Name] != nil {
			t.Errorf("layer holds %s twice", h.Name)
		}
		files[h.Name] = h
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(mtime) {
			t.Errorf("layer entry %s: uid %d gid %d mtime %v, want 0 0 %v", h.Name, h.Uid, h.Gid, h.ModTime, mtime)
		}
		if h.Typeflag == tar.TypeDir && h.Mode != 0o755 {
			t.Errorf("layer directory %s mode %o, want 0755", h.Name, h.Mode)
		}
		if h.Name == "usr/bin/irqshift" {
			if bin, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return files, bin
}

// checkELF: a static executable of the platform's machine, with no
// program interpreter: a scratch image has no dynamic loader.
func checkELF(t *testing.T, p v1.Platform, bin []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Errorf("%s: /usr/bin/irqshift is no ELF file: %v", p, err)
		return
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if f.Machine != want || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF %v %v %v, want a 64-bit %v executable", p, f.Class, f.Machine, f.Type, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: the binary has %v: dynamically linked", p, prog.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) != 0 {
		t.Errorf("%s: the binary needs %v", p, libs)
	}
}

// checkLicenses: the licenses label names every license of
// packaging/debian/copyright (which make test-deb checks against the
// modules in the binary), in SPDX.
func checkLicenses(t *testing.T, root string) {
	data := readFile(t, filepath.Join(root, "packaging/debian/copyright"))
	spdx := map[string]string{"Expat": "MIT", "GPL-2": "GPL-2.0-only"}
	ids := strings.Split(Licenses, " AND ")
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^License: (\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		id := m[1]
		if s, ok := spdx[id]; ok {
			id = s
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if !slices.Contains(ids, id) {
			t.Errorf("packaging/debian/copyright has %s, the licenses label %q not", m[1], Licenses)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("the licenses label names %s, packaging/debian/copyright not", id)
		}
	}
}

// A DaemonSet's pod, as far as the test needs it.
type pod struct {
	container container
	volumes   []volume
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
}

// readPod returns the DaemonSet's container that runs irqshift's image.
func readPod(t *testing.T, file string) pod {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []pod
	dec := yaml.NewDecoder(f)
	for {
		var obj struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []container `yaml:"containers"`
						Volumes    []volume    `yaml:"volumes"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if obj.Kind != "DaemonSet" {
			continue
		}
		for _, c := range obj.Spec.Template.Spec.Containers {
			if name, _, _ := strings.Cut(c.Image, ":"); name == imageName {
				found = append(found, pod{container: c, volumes: obj.Spec.Template.Spec.Volumes})
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d DaemonSet containers run %s, want 1", file, len(found), imageName)
	}
	return found[0]
}

// resolveCommand returns the path the runtime executes in the container:
// the entrypoint without a command; an absolute command; or a relative one
// looked up, as runc and crun do, in the PATH of the image's env, the first
// directory of it that holds the file in the layer.
func resolveCommand(t *testing.T, command []string, cf *v1.ConfigFile, files map[string]*tar.Header) string {
	t.Helper()
	if len(command) == 0 {
		return cf.Config.Entrypoint[0]
	}
	if strings.HasPrefix(command[0], "/") {
		return command[0]
	}
	var pathVar string
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := path.Join(dir, command[0])
		if h := files[strings.TrimPrefix(p, "/")]; h != nil && h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("command %q: no executable %s in the image's PATH %q", command, command[0], pathVar)
	return ""
}

// runPod runs bin as the DaemonSet's container would run it, against a
// copy of a fixture in place of the host: the container's args with the
// env's $(VAR)s expanded (status.podIP is 127.0.0.1, the metrics port a
// free one, the only change), every absolute path in them translated
// through the pod's volume mounts to the fixture (hostPath /proc, /sys)
// or a scratch host directory (the others), and the image's env beside the
// container's. irqshift must start, settle, answer the readiness probe's
// path, keep its state in the /run/irqshift mount, and exit 0 on SIGTERM.
func runPod(t *testing.T, root string, p pod, bin string, imageEnv []string) {
	c := p.container
	host := copyFixture(t, filepath.Join(root, fixture))
	scratchHost := t.TempDir()
	hostToTest := func(hp string) string {
		for _, top := range []string{"/proc", "/sys"} {
			if hp == top || strings.HasPrefix(hp, top+"/") {
				return filepath.Join(host, hp)
			}
		}
		return filepath.Join(scratchHost, hp)
	}
	hostPaths := map[string]string{}
	for _, v := range p.volumes {
		if v.HostPath == nil {
			continue
		}
		hostPaths[v.Name] = v.HostPath.Path
		// Type Directory must exist on a node; the fixture lacks
		// /sys/kernel/tracing, which irqshift does not use on a fixture.
		if err := os.MkdirAll(hostToTest(v.HostPath.Path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// containerToTest maps a path in the container through the mount
	// holding it (the longest mountPath that prefixes it).
	containerToTest := func(cp string) string {
		best, bestHost := "", ""
		for _, vm := range c.VolumeMounts {
			hp, ok := hostPaths[vm.Name]
			if !ok {
				t.Fatalf("volume mount %s is no hostPath volume", vm.Name)
			}
			if (cp == vm.MountPath || strings.HasPrefix(cp, vm.MountPath+"/")) && len(vm.MountPath) > len(best) {
				best, bestHost = vm.MountPath, hp+strings.TrimPrefix(cp, vm.MountPath)
			}
		}
		if best == "" {
			t.Fatalf("the args name %s, which is on no volume: the image holds only %s", cp, BinaryPath)
		}
		return hostToTest(bestHost)
	}

	// The container's env, as the kubelet sets it.
	env := map[string]string{}
	var envList []string
	for _, e := range c.Env {
		var v string
		switch {
		case e.Value != nil:
			v = expand(t, *e.Value, env)
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			switch f := e.ValueFrom.FieldRef.FieldPath; f {
			case "status.podIP", "status.hostIP":
				v = "127.0.0.1" // hostNetwork: the node's address; loopback here
			case "spec.nodeName":
				v = "node"
			default:
				t.Fatalf("env %s: fieldRef %s is not emulated", e.Name, f)
			}
		default:
			t.Fatalf("env %s: neither value nor fieldRef", e.Name)
		}
		env[e.Name] = v
		envList = append(envList, e.Name+"="+v)
	}

	var args []string
	var metricsAddr, statePath string
	for _, a := range c.Args {
		a = expand(t, a, env)
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case hasVal && strings.HasPrefix(name, "--") && strings.HasPrefix(val, "/"):
			val = containerToTest(val)
			a = name + "=" + val
		case strings.HasPrefix(a, "/"):
			a = containerToTest(a)
		}
		switch name {
		case "--metrics-address":
			h, _, err := net.SplitHostPort(val)
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			metricsAddr = net.JoinHostPort(h, freePort(t, h))
			a = name + "=" + metricsAddr
		case "--state":
			statePath = val
		}
		args = append(args, a)
	}
	if metricsAddr == "" {
		t.Fatal("the args give no --metrics-address, which the probes need")
	}

	cwd := t.TempDir() // "/" of the container: empty but for the binary
	cmd := exec.Command(bin, args...)
	cmd.Dir = cwd
	cmd.Env = append(slices.Clone(imageEnv), envList...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("irqshift %s", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	settled := make(chan struct{}, 1)
	var logs strings.Builder // read only once exited has answered
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "msg=settled") {
				select {
				case settled <- struct{}{}:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	select {
	case <-settled:
	case err := <-exited:
		waited = true
		t.Fatalf("irqshift exited before its first settle: %v\n%s", err, logs.String())
	case <-time.After(hangGuard):
		t.Fatalf("no settle within %v (hang guard)", hangGuard)
	}
	probe := "/metrics"
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil {
		probe = c.ReadinessProbe.HTTPGet.Path
	}
	client := &http.Client{Timeout: hangGuard}
	resp, err := client.Get("http://" + metricsAddr + probe)
	if err != nil {
		t.Errorf("readiness probe %s: %v", probe, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "irqshift_settles_total") {
			t.Errorf("readiness probe %s: %s\n%.300s", probe, resp.Status, body)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Errorf("irqshift exited with %v on SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(hangGuard):
		t.Fatalf("irqshift did not exit within %v of SIGTERM (hang guard)", hangGuard)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("irqshift logged errors:\n%s", logs.String())
	}
	if statePath == "" {
		t.Error("the args give no --state")
	} else if _, err := os.Stat(statePath); err != nil {
		t.Errorf("no state file in the /run/irqshift mount: %v", err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("irqshift wrote %d files in its working directory (the read-only root)", len(entries))
	}
	t.Logf("irqshift's log:\n%s", logs.String())
}

// expand does the kubelet's $(VAR) expansion of command, args and env
// values: $$ is a literal $, and a reference to an unknown variable, left
// as it is by the kubelet, fails the test here.
func expand(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+end]
			v, ok := env[name]
			if !ok {
				t.Fatalf("%q names $(%s), which the container's env does not set", s, name)
			}
			b.WriteString(v)
			i += end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func freePort(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// copyFixture copies a captured /proc and /sys tree and applies its MODES
// file, so that the daemon writes only the copy.
func copyFixture(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-r", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", src, err, out)
	}
	modes := readFile(t, filepath.Join(dst, "MODES"))
	for _, line := range strings.Split(string(modes), "\n") {
		mode, p, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatalf("MODES line %q", line)
		}
		if err := os.Chmod(filepath.Join(dst, p), os.FileMode(m)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// treeFiles returns a directory's files by relative path, with their modes.
func treeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			files[rel+"/"] = info.Mode().String()
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = info.Mode().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func equalTrees(t *testing.T, a, b map[string]string, what string) bool {
	t.Helper()
	same := true
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			t.Errorf("%s: %s differs or is missing", what, k)
			same = false
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: %s is extra", what, k)
			same = false
		}
	}
	return same
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestBuildRefuses: no image from a binary that needs a dynamic loader
// (a scratch image has none) or is of another machine than its platform.
func TestBuildRefuses(t *testing.T) {
	dyn := "/bin/sh"
	f, err := elf.Open(dyn)
	if err != nil {
		t.Skipf("no ELF %s: %v", dyn, err)
	}
	machine := f.Machine
	hasInterp := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	arch, other := "", ""
	for a, p := range Platforms {
		if p.Machine == machine {
			arch = a
		} else {
			other = a
		}
	}
	if arch == "" || !hasInterp {
		t.Skipf("%s is no dynamically linked amd64 or arm64 executable", dyn)
	}
	for _, tc := range []struct {
		arch, want string
	}{
		{arch, "dynamically linked"},
		{other, "ELF machine"},
	} {
		_, err := Build(Spec{Version: "1.0", Binaries: []Binary{{Arch: tc.arch, Path: dyn}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%s as %s) = %v, want an error saying %q", dyn, tc.arch, err, tc.want)
		}
	}
}
