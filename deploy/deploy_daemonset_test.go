package deploy

// The DaemonSet against irqshift: its objects, image, security context, mounts, metrics port and
// arguments.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/irqshift/irqshift/rules"
)

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
	// Neither gives --rules: on the live system (the pod's /host/proc is)
	// both read the default rules directory.
	podRules, unitRules := rules.DefaultDir, rules.DefaultDir
	if _, ok := inv.global["rules"]; ok {
		podRules = one(t, inv.global, "rules")
	}
	if r, ok := unit["rules"]; ok {
		unitRules = r
	}

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
		{podRules, "the rules directory (--rules)", unitRules, false},
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
