// Package deploy holds the files for running irqshift on fleets: the
// Kubernetes DaemonSet (kubernetes/) and the Prometheus scrape jobs and
// alert rules (prometheus/). Its tests check them against irqshift itself:
// the flags its CLI accepts, the paths it reads and writes, the address its
// metrics server serves and the metrics the daemon registers.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/irqshift/irqshift/daemon"
)

const (
	manifestPath      = "kubernetes/irqshift.yaml"
	kustomizationPath = "kubernetes/kustomization.yaml"
	scrapePath        = "prometheus/scrape.yaml"
	alertsPath        = "prometheus/alerts.yaml"
	unitPath          = "../systemd/irqshift.service.in"
	defaultsPath      = "../systemd/irqshift.default"
	watchSourcePath   = "../watch.go"
)

// The parts of the Kubernetes objects the tests look at.

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

type daemonSet struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		UpdateStrategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable string `yaml:"maxUnavailable"`
				MaxSurge       *int   `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"updateStrategy"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName            string            `yaml:"serviceAccountName"`
	AutomountServiceAccountToken  *bool             `yaml:"automountServiceAccountToken"`
	PriorityClassName             string            `yaml:"priorityClassName"`
	HostPID                       bool              `yaml:"hostPID"`
	HostNetwork                   bool              `yaml:"hostNetwork"`
	TerminationGracePeriodSeconds *int              `yaml:"terminationGracePeriodSeconds"`
	NodeSelector                  map[string]string `yaml:"nodeSelector"`
	Affinity                      struct {
		NodeAffinity struct {
			Required struct {
				Terms []struct {
					MatchExpressions []struct {
						Key      string   `yaml:"key"`
						Operator string   `yaml:"operator"`
						Values   []string `yaml:"values"`
					} `yaml:"matchExpressions"`
				} `yaml:"nodeSelectorTerms"`
			} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
		} `yaml:"nodeAffinity"`
	} `yaml:"affinity"`
	Tolerations []struct {
		Key      string `yaml:"key"`
		Operator string `yaml:"operator"`
		Effect   string `yaml:"effect"`
	} `yaml:"tolerations"`
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		Privileged               *bool `yaml:"privileged"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		RunAsUser                *int  `yaml:"runAsUser"`
		Capabilities             struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	VolumeMounts []volumeMount `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type volumeMount struct {
	Name              string `yaml:"name"`
	MountPath         string `yaml:"mountPath"`
	ReadOnly          bool   `yaml:"readOnly"`
	RecursiveReadOnly string `yaml:"recursiveReadOnly"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
}

// manifest is the Kubernetes file, parsed.
type manifest struct {
	objects []object
	ds      daemonSet
	c       container // the irqshift container
}

// readManifest parses every document of the Kubernetes file and its one
// DaemonSet with its one container.
func readManifest(t *testing.T) *manifest {
	t.Helper()
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	daemonSets := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestPath, err)
		}
		if len(doc.Content) == 0 {
			continue // comments only
		}
		var obj object
		if err := doc.Decode(&obj); err != nil {
			t.Fatalf("%s: %v", manifestPath, err)
		}
		if obj.Kind == "" || obj.APIVersion == "" || obj.Metadata.Name == "" {
			t.Errorf("%s: a document without kind, apiVersion or name: %+v", manifestPath, obj)
		}
		m.objects = append(m.objects, obj)
		if obj.Kind == "DaemonSet" {
			daemonSets++
			if err := doc.Decode(&m.ds); err != nil {
				t.Fatalf("%s: DaemonSet: %v", manifestPath, err)
			}
		}
	}
	if daemonSets != 1 {
		t.Fatalf("%s has %d DaemonSets, want 1", manifestPath, daemonSets)
	}
	containers := m.ds.Spec.Template.Spec.Containers
	if len(containers) != 1 {
		t.Fatalf("the DaemonSet has %d containers, want 1", len(containers))
	}
	m.c = containers[0]
	return m
}

// find returns the object of kind and name.
func (m *manifest) find(kind, name string) (object, bool) {
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return object{}, false
}

// invocation is the container's command line, split: the global flags,
// the command and its flags. Every argument is "--flag=value", "--flag"
// or the command name, so that no value is taken for the command.
type invocation struct {
	global  map[string][]string
	command string
	flags   map[string][]string
}

func parseArgs(t *testing.T, args []string) invocation {
	t.Helper()
	inv := invocation{global: map[string][]string{}, flags: map[string][]string{}}
	for _, arg := range args {
		if !strings.HasPrefix(arg, "-") {
			if inv.command != "" {
				t.Fatalf("args: %q after the command %q: write every flag as --flag=value", arg, inv.command)
			}
			inv.command = arg
			continue
		}
		if !strings.HasPrefix(arg, "--") {
			t.Fatalf("args: %q: write flags as --flag=value", arg)
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if inv.command == "" {
			inv.global[name] = append(inv.global[name], value)
		} else {
			inv.flags[name] = append(inv.flags[name], value)
		}
	}
	return inv
}

// one returns the value of a flag given once, failing t otherwise.
func one(t *testing.T, flags map[string][]string, name string) string {
	t.Helper()
	values := flags[name]
	if len(values) != 1 || values[0] == "" {
		t.Fatalf("args: --%s given %d times (%q), want once with a value", name, len(values), values)
	}
	return values[0]
}

// expand replaces $(VAR) in s with the container's env value for VAR, or
// with the stand-in for a variable from the downward API, as the kubelet
// would; a variable the container does not define fails t.
func expand(t *testing.T, c container, s string, standIns map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		for _, e := range c.Env {
			if e.Name != name {
				continue
			}
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				v, ok := standIns[e.ValueFrom.FieldRef.FieldPath]
				if !ok {
					t.Fatalf("%s comes from %s, which has no stand-in here", name, e.ValueFrom.FieldRef.FieldPath)
				}
				return v
			}
			return e.Value
		}
		t.Fatalf("args refer to $(%s), which the container does not define", name)
		return ""
	})
}

// mountFor returns the mount that holds path in the container (the one
// with the longest mount path that is path or a parent of it), the volume
// behind it, and path on the host.
func (m *manifest) mountFor(t *testing.T, path string) (volumeMount, volume, string) {
	t.Helper()
	var best *volumeMount
	for i, vm := range m.c.VolumeMounts {
		if (path == vm.MountPath || strings.HasPrefix(path, vm.MountPath+"/")) && (best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &m.c.VolumeMounts[i]
		}
	}
	if best == nil {
		t.Fatalf("%s is on no volume mount: irqshift would see the image's file system there", path)
	}
	for _, v := range m.ds.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			if v.HostPath == nil {
				t.Fatalf("volume %s (for %s) is not a hostPath", v.Name, path)
			}
			return *best, v, v.HostPath.Path + strings.TrimPrefix(path, best.MountPath)
		}
	}
	t.Fatalf("mount %s names volume %s, which does not exist", best.MountPath, best.Name)
	return volumeMount{}, volume{}, ""
}

// unitFlags returns the values of the systemd unit's ExecStart flags.
func unitFlags(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		for i := 0; i+1 < len(fields); i++ {
			if name, ok := strings.CutPrefix(fields[i], "--"); ok && !strings.HasPrefix(fields[i+1], "-") {
				out[name] = fields[i+1]
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no ExecStart flags", unitPath)
	}
	return out
}

// servedPaths returns the HTTP paths watch.go's metrics server handles.
func servedPaths(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(watchSourcePath)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([^"]+)"`).FindAllStringSubmatch(string(data), -1) {
		paths = append(paths, m[1])
	}
	if len(paths) == 0 {
		t.Fatalf("%s: found no mux.Handle path", watchSourcePath)
	}
	return paths
}

func TestKubernetesObjects(t *testing.T) {
	m := readManifest(t)
	ns := m.ds.Metadata.Namespace
	if ns == "" {
		t.Fatal("the DaemonSet names no namespace")
	}
	nsObj, ok := m.find("Namespace", ns)
	if !ok {
		t.Fatalf("no Namespace %s in %s", ns, manifestPath)
	}
	// hostPID, hostNetwork and hostPath are beyond Pod Security "baseline".
	if got := nsObj.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("namespace %s: pod-security.kubernetes.io/enforce = %q, want privileged (the pods would be refused)", ns, got)
	}
	for _, o := range m.objects {
		if o.Kind != "Namespace" && o.Metadata.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, want %s", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns)
		}
	}
	spec := m.ds.Spec.Template.Spec
	if _, ok := m.find("ServiceAccount", spec.ServiceAccountName); !ok || spec.ServiceAccountName == "" {
		t.Errorf("serviceAccountName %q names no ServiceAccount of the file", spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods mount an API token: irqshift never calls the API")
	}
	for k, v := range m.ds.Spec.Selector.MatchLabels {
		if m.ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, m.ds.Spec.Template.Metadata.Labels)
		}
	}
	if len(m.ds.Spec.Selector.MatchLabels) == 0 {
		t.Error("the DaemonSet has no selector")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q, want system-node-critical", spec.PriorityClassName)
	}
	if spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector = %v, want kubernetes.io/os=linux", spec.NodeSelector)
	}
	var arches []string
	for _, term := range spec.Affinity.NodeAffinity.Required.Terms {
		for _, e := range term.MatchExpressions {
			if e.Key == "kubernetes.io/arch" && e.Operator == "In" {
				arches = append(arches, e.Values...)
			}
		}
	}
	if !slices.Contains(arches, "arm64") || !slices.Contains(arches, "amd64") {
		t.Errorf("node affinity allows arches %v, want arm64 and amd64", arches)
	}
	tolerateAll := false
	for _, tol := range spec.Tolerations {
		if tol.Operator == "Exists" && tol.Key == "" && tol.Effect == "" {
			tolerateAll = true
		}
	}
	if !tolerateAll {
		t.Errorf("tolerations %+v do not tolerate every taint (operator Exists, no key, no effect)", spec.Tolerations)
	}
	us := m.ds.Spec.UpdateStrategy
	if us.Type != "RollingUpdate" || us.RollingUpdate.MaxUnavailable != "10%" {
		t.Errorf("updateStrategy %s maxUnavailable %q, want RollingUpdate 10%%", us.Type, us.RollingUpdate.MaxUnavailable)
	}
	if us.RollingUpdate.MaxSurge != nil && *us.RollingUpdate.MaxSurge != 0 {
		t.Errorf("maxSurge %d: two daemons would run on a node", *us.RollingUpdate.MaxSurge)
	}
	// The daemon needs 2 s to close its metrics server after SIGTERM.
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 5 {
		t.Errorf("terminationGracePeriodSeconds = %v, want at least 5", g)
	}
	if m.c.Resources.Requests["cpu"] == "" || m.c.Resources.Requests["memory"] == "" || m.c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", m.c.Resources)
	}
	if _, ok := m.c.Resources.Limits["cpu"]; ok {
		t.Error("a CPU limit: CFS throttling would delay reactions that take milliseconds")
	}
}

// TestKubernetesImage: the image names no registry host, and the
// kustomization sets the same image's tag.
func TestKubernetesImage(t *testing.T) {
	m := readManifest(t)
	name, tag, ok := strings.Cut(m.c.Image, ":")
	if !ok || tag == "" || strings.Contains(tag, "/") {
		t.Fatalf("image %q has no tag", m.c.Image)
	}
	first, _, _ := strings.Cut(name, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		t.Errorf("image %q names a registry host (%s): leave that to kustomization.yaml", m.c.Image, first)
	}
	if len(m.c.Command) == 0 || filepath.Base(m.c.Command[0]) != "irqshift" {
		t.Errorf("command %v does not run irqshift", m.c.Command)
	}

	data, err := os.ReadFile(kustomizationPath)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name   string `yaml:"name"`
			NewTag string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", kustomizationPath, err)
	}
	if !slices.Contains(k.Resources, filepath.Base(manifestPath)) {
		t.Errorf("%s: resources %v lack %s", kustomizationPath, k.Resources, filepath.Base(manifestPath))
	}
	if len(k.Images) != 1 || k.Images[0].Name != name || k.Images[0].NewTag != tag {
		t.Errorf("%s: images %+v, want %s with newTag %s", kustomizationPath, k.Images, name, tag)
	}
}

// TestKubernetesSecurity: not privileged, root without any capability but
// the two the eBPF counter needs (and SYS_RESOURCE, allowed for kernels
// before 5.11), the host namespaces irqshift needs.
func TestKubernetesSecurity(t *testing.T) {
	m := readManifest(t)
	spec := m.ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Error("hostPID is off: irqshift would not see irqbalance, and /host/proc would not be live")
	}
	if !spec.HostNetwork {
		t.Error("hostNetwork is off: CPU hotplug uevents reach only the host's network namespace")
	}
	sc := m.c.SecurityContext
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container is privileged")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	// The host's uid 0 owns /proc/irq/N/smp_affinity_list: its owner bits,
	// not a capability, let irqshift write it.
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("runAsUser = %v, want 0", sc.RunAsUser)
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	for _, want := range []string{"BPF", "PERFMON"} {
		if !slices.Contains(sc.Capabilities.Add, want) {
			t.Errorf("capabilities add %v lack %s (the eBPF counter)", sc.Capabilities.Add, want)
		}
	}
	for _, c := range sc.Capabilities.Add {
		if !slices.Contains([]string{"BPF", "PERFMON", "SYS_RESOURCE"}, c) {
			t.Errorf("capability %s is added: irqshift needs only BPF and PERFMON (SYS_RESOURCE before 5.11)", c)
		}
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile %q, want RuntimeDefault", sc.SeccompProfile.Type)
	}
}

// TestKubernetesMounts: every path irqshift is given is on a hostPath
// mount of the host's file and names the same host file as the systemd
// unit; the pod may write where irqshift writes and, like the unit's
// ReadWritePaths, nowhere else.
func TestKubernetesMounts(t *testing.T) {
	m := readManifest(t)
	inv := parseArgs(t, m.c.Args)
	if inv.command != "watch" {
		t.Fatalf("the container runs %q, want watch", inv.command)
	}
	unit := unitFlags(t)
	proc, sys := one(t, inv.global, "proc"), one(t, inv.global, "sys")

	for _, tt := range []struct {
		path     string
		what     string
		hostPath string
		writable bool
	}{
		{proc, "--proc", "/proc", false},
		{sys, "--sys", "/sys", false},
		{proc + "/irq/0/smp_affinity_list", "--proc's IRQ affinity files", "/proc/irq/0/smp_affinity_list", true},
		{sys + "/devices/system/cpu/cpu1/online", "--sys's cpuN/online (CheckWriteAccess)", "/sys/devices/system/cpu/cpu1/online", true},
		{one(t, inv.global, "state"), "--state", unit["state"], true}, // the state file and its lock
		{one(t, inv.flags, "ban-file"), "--ban-file", unit["ban-file"], false},
		{"/sys/kernel/tracing/events/irq/irq_handler_entry/id", "tracefs (cilium/ebpf)", "/sys/kernel/tracing/events/irq/irq_handler_entry/id", false},
	} {
		if tt.hostPath == "" {
			t.Fatalf("the unit sets no %s", tt.what)
		}
		vm, v, host := m.mountFor(t, tt.path)
		if host != tt.hostPath {
			t.Errorf("%s %s is %s on the host, want %s", tt.what, tt.path, host, tt.hostPath)
		}
		if tt.writable && vm.ReadOnly {
			t.Errorf("%s %s is on read-only mount %s: irqshift writes there", tt.what, tt.path, vm.MountPath)
		}
		if v.HostPath.Type == "" {
			t.Errorf("hostPath volume %s has no type", v.Name)
		}
	}
	// The proc and sys roots are read-only, their host submounts too where
	// the cluster can.
	for _, root := range []string{proc, sys} {
		vm, _, _ := m.mountFor(t, root)
		if !vm.ReadOnly || (vm.RecursiveReadOnly != "IfPossible" && vm.RecursiveReadOnly != "Enabled") {
			t.Errorf("mount %s: readOnly %v recursiveReadOnly %q, want read-only recursively", vm.MountPath, vm.ReadOnly, vm.RecursiveReadOnly)
		}
	}
	if c := inv.global["config"]; len(c) > 0 && c[0] != "none" {
		m.mountFor(t, c[0])
	}

	// Writable on the host: the unit's ReadWritePaths, each of them, and
	// nothing outside them.
	rw := unitReadWritePaths(t)
	for _, vm := range m.c.VolumeMounts {
		if vm.ReadOnly {
			continue
		}
		_, _, host := m.mountFor(t, vm.MountPath)
		if !slices.ContainsFunc(rw, func(p string) bool { return host == p || strings.HasPrefix(host, p+"/") }) {
			t.Errorf("mount %s writes host %s, outside the unit's ReadWritePaths %v", vm.MountPath, host, rw)
		}
	}
	for _, p := range rw {
		if vm, ok := m.mountOfHost(p); !ok || vm.ReadOnly {
			t.Errorf("the unit may write %s, the pod not (mount %+v)", p, vm)
		}
	}

	// No mount or volume is left over, and none is named twice.
	used := map[string]bool{}
	for _, vm := range m.c.VolumeMounts {
		if used[vm.Name] {
			t.Errorf("volume %s is mounted twice", vm.Name)
		}
		used[vm.Name] = true
	}
	for _, v := range m.ds.Spec.Template.Spec.Volumes {
		if !used[v.Name] {
			t.Errorf("volume %s is not mounted", v.Name)
		}
	}
}

// mountOfHost returns the mount through which the container sees the host
// path p: of the hostPath volumes holding p, the one with the longest path.
func (m *manifest) mountOfHost(p string) (volumeMount, bool) {
	var best volumeMount
	bestLen := -1
	for _, v := range m.ds.Spec.Template.Spec.Volumes {
		if v.HostPath == nil || !(p == v.HostPath.Path || strings.HasPrefix(p, v.HostPath.Path+"/")) || len(v.HostPath.Path) <= bestLen {
			continue
		}
		for _, vm := range m.c.VolumeMounts {
			if vm.Name == v.Name {
				best, bestLen = vm, len(v.HostPath.Path)
			}
		}
	}
	return best, bestLen >= 0
}

// unitReadWritePaths is the unit's ReadWritePaths.
func unitReadWritePaths(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "ReadWritePaths="); ok {
			out = append(out, strings.Fields(rest)...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no ReadWritePaths", unitPath)
	}
	return out
}

// TestKubernetesMetricsPort: the --metrics-address port is the container
// port named metrics, which the probes, the scrape annotations and the
// Prometheus job use, on a path the metrics server serves.
func TestKubernetesMetricsPort(t *testing.T) {
	m := readManifest(t)
	inv := parseArgs(t, m.c.Args)
	addr := expand(t, m.c, one(t, inv.flags, "metrics-address"), map[string]string{"status.podIP": "192.0.2.1"})
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--metrics-address %s: %v", addr, err)
	}
	if host == "" || host == "127.0.0.1" || host == "localhost" {
		t.Errorf("--metrics-address %s: Prometheus and the kubelet reach the pod on its (the node's) address", addr)
	}
	var named []int
	for _, p := range m.c.Ports {
		if p.Name == "metrics" {
			named = append(named, p.ContainerPort)
		}
	}
	if len(named) != 1 || strconv.Itoa(named[0]) != port {
		t.Fatalf("container ports named metrics %v, want one, %s (--metrics-address)", named, port)
	}
	served := servedPaths(t)
	for name, p := range map[string]*probe{"livenessProbe": m.c.LivenessProbe, "readinessProbe": m.c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s httpGet", name)
			continue
		}
		if got := p.HTTPGet.Port; got != "metrics" && got != named[0] {
			t.Errorf("%s port %v, want metrics (%s)", name, got, port)
		}
		if !slices.Contains(served, p.HTTPGet.Path) {
			t.Errorf("%s path %s, but the metrics server serves %v", name, p.HTTPGet.Path, served)
		}
	}
	ann := m.ds.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port || !slices.Contains(served, ann["prometheus.io/path"]) {
		t.Errorf("prometheus.io annotations %v, want scrape true, port %s, a path of %v", ann, port, served)
	}
}

// buildIrqshift builds the irqshift binary of this tree.
func buildIrqshift(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "irqshift")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKubernetesArgsParse runs the container's arguments through the real
// irqshift's flag parser (with --help, so that nothing runs): an unknown
// or misspelt flag, a bad duration or a missing command fails it. A
// misspelt copy must fail, or the check proves nothing.
func TestKubernetesArgsParse(t *testing.T) {
	m := readManifest(t)
	bin := buildIrqshift(t)
	args := make([]string, len(m.c.Args))
	for i, a := range m.c.Args {
		args[i] = expand(t, m.c, a, map[string]string{"status.podIP": "192.0.2.1"})
	}
	run := func(args []string) (string, error) {
		cmd := exec.Command(bin, append(slices.Clone(args), "--help")...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(args)
	if err != nil {
		t.Fatalf("irqshift %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	// The watch command's help, not the app's: the command was found.
	if !strings.Contains(out, "irqshift watch") || !strings.Contains(out, "--metrics-address") {
		t.Errorf("irqshift %s --help printed no watch help:\n%s", strings.Join(args, " "), out)
	}
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		bad := slices.Clone(args)
		bad[i] = "--x" + strings.TrimPrefix(a, "--")
		if out, err := run(bad); err == nil {
			t.Errorf("irqshift accepted the misspelt flag %s:\n%s", bad[i], out)
		}
	}
}

// scrapeConfig is the part of scrape.yaml the tests read.
type scrapeConfig struct {
	ScrapeConfigs []struct {
		JobName             string `yaml:"job_name"`
		MetricsPath         string `yaml:"metrics_path"`
		KubernetesSDConfigs []struct {
			Role       string `yaml:"role"`
			Namespaces struct {
				Names []string `yaml:"names"`
			} `yaml:"namespaces"`
		} `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readScrape(t *testing.T) scrapeConfig {
	t.Helper()
	data, err := os.ReadFile(scrapePath)
	if err != nil {
		t.Fatal(err)
	}
	var sc scrapeConfig
	if err := yaml.Unmarshal(data, &sc); err != nil {
		t.Fatalf("%s: %v", scrapePath, err)
	}
	return sc
}

// metaLabel is the name Prometheus's Kubernetes discovery gives a pod
// label or annotation: invalid characters become underscores.
func metaLabel(prefix, key string) string {
	return prefix + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(key, "_")
}

// TestPrometheusScrape: the Kubernetes job keeps exactly the DaemonSet's
// pods in its namespace on the port named metrics; the systemd job scrapes
// the address the unit's defaults file suggests.
func TestPrometheusScrape(t *testing.T) {
	m := readManifest(t)
	sc := readScrape(t)
	served := servedPaths(t)
	var portName string
	for _, p := range m.c.Ports {
		if p.Name == "metrics" {
			portName = p.Name
		}
	}
	pod := map[string]string{"__meta_kubernetes_pod_container_port_name": portName}
	for k, v := range m.ds.Spec.Template.Metadata.Labels {
		pod[metaLabel("__meta_kubernetes_pod_label_", k)] = v
	}
	for k, v := range m.ds.Spec.Template.Metadata.Annotations {
		pod[metaLabel("__meta_kubernetes_pod_annotation_", k)] = v
	}

	jobs := map[string]bool{}
	for _, job := range sc.ScrapeConfigs {
		jobs[job.JobName] = true
		if job.MetricsPath != "" && !slices.Contains(served, job.MetricsPath) {
			t.Errorf("job %s scrapes %s; the metrics server serves %v", job.JobName, job.MetricsPath, served)
		}
	}
	for _, want := range []string{"irqshift", "irqshift-systemd"} {
		if !jobs[want] {
			t.Errorf("%s has no job %s", scrapePath, want)
		}
	}
	for _, job := range sc.ScrapeConfigs {
		switch job.JobName {
		case "irqshift":
			if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" ||
				!slices.Equal(job.KubernetesSDConfigs[0].Namespaces.Names, []string{m.ds.Metadata.Namespace}) {
				t.Errorf("job irqshift discovers %+v, want pods of namespace %s", job.KubernetesSDConfigs, m.ds.Metadata.Namespace)
			}
			// Every keep rule must keep the DaemonSet's pod on its metrics
			// port, and some must drop a pod with another port name, and a
			// pod without the app label.
			keeps := func(labels map[string]string) bool {
				for _, r := range job.RelabelConfigs {
					if r.Action != "keep" {
						continue
					}
					var values []string
					for _, l := range r.SourceLabels {
						values = append(values, labels[l])
					}
					if !regexp.MustCompile("^(?:" + r.Regex + ")$").MatchString(strings.Join(values, ";")) {
						return false
					}
				}
				return true
			}
			if !keeps(pod) {
				t.Errorf("job irqshift drops the DaemonSet's pods (%v)", pod)
			}
			otherPort := map[string]string{}
			for k, v := range pod {
				otherPort[k] = v
			}
			otherPort["__meta_kubernetes_pod_container_port_name"] = "other"
			if keeps(otherPort) {
				t.Error("job irqshift keeps a port not named metrics")
			}
			otherPod := map[string]string{"__meta_kubernetes_pod_container_port_name": portName}
			if keeps(otherPod) {
				t.Error("job irqshift keeps pods without the DaemonSet's labels")
			}
		case "irqshift-systemd":
			want := systemdMetricsAddress(t)
			if len(job.StaticConfigs) != 1 || !slices.Equal(job.StaticConfigs[0].Targets, []string{want}) {
				t.Errorf("job irqshift-systemd targets %+v, want %s (%s)", job.StaticConfigs, want, defaultsPath)
			}
		}
	}
}

// systemdMetricsAddress is the IRQSHIFT_METRICS_ADDRESS of the unit's
// defaults file (a commented example).
func systemdMetricsAddress(t *testing.T) string {
	t.Helper()
	f, err := os.Open(defaultsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimLeft(s.Text(), "# ")
		if v, ok := strings.CutPrefix(line, "IRQSHIFT_METRICS_ADDRESS="); ok && v != "" {
			return v
		}
	}
	t.Fatalf("%s: no IRQSHIFT_METRICS_ADDRESS", defaultsPath)
	return ""
}

// alertRules is the rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// targetLabels are the labels every scraped series has from its target.
var targetLabels = []string{"job", "instance", "node", "namespace", "pod"}

var (
	metricName = regexp.MustCompile(`\birqshift_[a-z_]+\b`)
	selector   = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*$`)
	byClause   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	labelRef   = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// TestPrometheusAlerts: every alert has an expression, a for, a severity,
// a summary and a description; every irqshift metric, label and label
// value it names is one the daemon registers (taken from the daemon
// package, so a renamed metric fails here); the alerts cover misrouted
// IRQs, write errors, reaction time, resyncs and a daemon that is down.
func TestPrometheusAlerts(t *testing.T) {
	families, err := daemon.MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]daemon.MetricFamily{}
	for _, f := range families {
		for _, s := range f.Series() {
			series[s] = f
		}
	}
	jobs := map[string]bool{}
	for _, job := range readScrape(t).ScrapeConfigs {
		jobs[job.JobName] = true
	}

	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	names := map[string]bool{}
	used := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q has no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert (record %q)", g.Name, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			names[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", r.Alert)
			}
			if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}

			// Output labels of the expression, for $labels in annotations.
			outLabels := slices.Clone(targetLabels)
			for _, name := range metricName.FindAllString(r.Expr, -1) {
				f, ok := series[name]
				if !ok {
					t.Errorf("%s: %s is no series the daemon exports (%s)", r.Alert, name, seriesNames(series))
					continue
				}
				used[name] = true
				outLabels = append(outLabels, f.Labels...)
			}
			if by := byClause.FindAllStringSubmatch(r.Expr, -1); by != nil {
				outLabels = nil
				for _, b := range by {
					for l := range strings.SplitSeq(b[1], ",") {
						l = strings.TrimSpace(l)
						if l != "le" && !slices.Contains(targetLabels, l) && !labelOfAny(families, l) {
							t.Errorf("%s: aggregates by %s, a label no irqshift metric has", r.Alert, l)
						}
						outLabels = append(outLabels, l)
					}
				}
			}
			for _, ann := range r.Annotations {
				for _, ref := range labelRef.FindAllStringSubmatch(ann, -1) {
					if !slices.Contains(outLabels, ref[1]) {
						t.Errorf("%s: annotation uses $labels.%s, which %q does not keep", r.Alert, ref[1], r.Expr)
					}
				}
			}
			checkSelectors(t, r.Alert, r.Expr, series, jobs)
		}
	}
	for _, want := range []string{"irqshift_misrouted_irqs_total", "irqshift_write_errors_total", "irqshift_reaction_seconds_bucket", "irqshift_resyncs_total"} {
		if !used[want] {
			t.Errorf("no alert on %s", want)
		}
	}
	if !regexp.MustCompile(`\bup\{[^}]*job`).Match(data) {
		t.Error("no alert on up{job=...}: a daemon that is down")
	}
}

// checkSelectors checks the label matchers of the selectors in expr: an
// irqshift metric's labels must be its own or a target's, and a literal
// value of one of its own labels (or each alternative of a regex) must be
// one its help text lists; up's job must be a scrape job.
func checkSelectors(t *testing.T, alert, expr string, series map[string]daemon.MetricFamily, jobs map[string]bool) {
	t.Helper()
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		name, body := sel[1], sel[2]
		f, isIrqshift := series[name]
		for part := range strings.SplitSeq(body, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mm := matcher.FindStringSubmatch(part)
			if mm == nil {
				t.Errorf("%s: cannot read matcher %q", alert, part)
				continue
			}
			label, value := mm[1], mm[3]
			switch {
			case name == "up" && label == "job":
				for _, job := range strings.Split(value, "|") {
					if !jobs[job] {
						t.Errorf("%s: up{job} names %s, no job of %s", alert, job, scrapePath)
					}
				}
			case !isIrqshift:
			case slices.Contains(f.Labels, label):
				for _, v := range strings.Split(value, "|") {
					if !regexp.MustCompile(`\b` + regexp.QuoteMeta(v) + `\b`).MatchString(f.Help) {
						t.Errorf("%s: %s{%s} matches %q, which its help does not list: %s", alert, name, label, v, f.Help)
					}
				}
			case slices.Contains(targetLabels, label):
			default:
				t.Errorf("%s: %s has no label %s (it has %v)", alert, name, label, f.Labels)
			}
		}
	}
}

func labelOfAny(families []daemon.MetricFamily, label string) bool {
	for _, f := range families {
		if slices.Contains(f.Labels, label) {
			return true
		}
	}
	return false
}

func seriesNames(series map[string]daemon.MetricFamily) string {
	var names []string
	for s := range series {
		names = append(names, s)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// TestPromtool runs promtool's own checks of the two Prometheus files where
// promtool is installed.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	for _, args := range [][]string{{"check", "rules", alertsPath}, {"check", "config", "--syntax-only", scrapePath}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil && strings.Contains(string(out), "field kubernetes_sd_configs not found") {
			// Debian builds Prometheus without Kubernetes discovery.
			t.Logf("promtool %s: this promtool has no Kubernetes service discovery: not checked", strings.Join(args, " "))
			continue
		}
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
