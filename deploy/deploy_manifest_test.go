package deploy

// Reading kubernetes/irqshift.yaml: the parts of its objects the tests look at, the container's
// command line, and the mounts through which it sees host paths.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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
