package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// BinaryPath is where the image holds irqshift: in a directory of the
	// PATH below, since the DaemonSet's command is a bare "irqshift".
	BinaryPath = "/usr/bin/irqshift"
	// PathEnv is the image's only environment variable. A scratch image
	// has none; the runtime (runc, crun) looks a relative command up in
	// the PATH it is given, and Kubernetes passes the image's.
	PathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	// RefName is the annotation of an OCI layout's index.json that names a
	// tag: skopeo's oci:DIR:TAG and crane read it.
	RefName = "org.opencontainers.image.ref.name"

	Title       = "irqshift"
	Description = "Moves device IRQs off offline CPUs (irqshift watch, the daemon)"
	Source      = "https://github.com/irqshift/irqshift"
	// Licenses of what the binary holds, as packaging/debian/copyright
	// lists them (Expat is MIT, GPL-2 the eBPF program's GPL-2.0-only).
	Licenses = "Apache-2.0 AND GPL-2.0-only AND BSD-3-Clause AND BSD-2-Clause AND MIT"
)

// Platform is an architecture the image is built for.
type Platform struct {
	v1.Platform
	Machine elf.Machine // the binary's ELF machine
}

// Platforms are the architectures the DaemonSet runs on, by GOARCH.
var Platforms = map[string]Platform{
	"amd64": {v1.Platform{OS: "linux", Architecture: "amd64"}, elf.EM_X86_64},
	"arm64": {v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, elf.EM_AARCH64},
}

// Binary is a static irqshift built for one GOARCH.
type Binary struct {
	Arch string // a key of Platforms
	Path string
}

// Spec is what an image is built from.
type Spec struct {
	Version  string    // the tag, the version label; irqshift --version prints it
	Created  time.Time // every time stamp: config, history, files
	Binaries []Binary
}

// Labels are the image config's labels (and the index's annotations).
func (s Spec) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       Title,
		"org.opencontainers.image.description": Description,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.licenses":    Licenses,
	}
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Build builds the multi-platform image index: for each binary a FROM
// scratch image of one layer holding only it, ordered by architecture.
// The same Spec and binaries give the same digests.
func Build(spec Spec) (v1.ImageIndex, error) {
	if !tagPattern.MatchString(spec.Version) {
		return nil, fmt.Errorf("version %q is no valid image tag", spec.Version)
	}
	if len(spec.Binaries) == 0 {
		return nil, fmt.Errorf("no binaries")
	}
	bins := slices.Clone(spec.Binaries)
	slices.SortFunc(bins, func(a, b Binary) int { return strings.Compare(a.Arch, b.Arch) })
	created := v1.Time{Time: spec.Created.UTC().Truncate(time.Second)}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, b := range bins {
		p, ok := Platforms[b.Arch]
		if !ok {
			return nil, fmt.Errorf("%s: unknown architecture %q", b.Path, b.Arch)
		}
		if i > 0 && bins[i-1].Arch == b.Arch {
			return nil, fmt.Errorf("two binaries for %s", b.Arch)
		}
		data, err := os.ReadFile(b.Path)
		if err != nil {
			return nil, err
		}
		if err := CheckStatic(data, p.Machine); err != nil {
			return nil, fmt.Errorf("%s: %w", b.Path, err)
		}
		img, err := platformImage(spec, p.Platform, data, created)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Arch, err)
		}
		plat := p.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &plat},
		})
	}
	out, ok := mutate.Annotations(idx, spec.Labels()).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("annotated index is no v1.ImageIndex")
	}
	return out, nil
}

func platformImage(spec Spec, p v1.Platform, binary []byte, created v1.Time) (v1.Image, error) {
	layerTar, err := LayerTar(binary, created.Time)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression) // no name, no mtime: same bytes
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(layerTar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "tools/image: " + BinaryPath + " (static, CGO_ENABLED=0)",
			Comment:   "FROM scratch",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		Env:        []string{PathEnv},
		Labels:     spec.Labels(),
	}
	return mutate.ConfigFile(img, cf)
}

// LayerTar is the layer's file system: usr/ and usr/bin/ (0755) and the
// binary (0755), owned by root, all with the same mtime.
func LayerTar(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := strings.TrimPrefix(BinaryPath, "/")
	var dirs []string
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o755, Size: int64(len(binary)), ModTime: mtime}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckStatic returns an error unless data is a 64-bit little-endian ELF
// executable for machine that asks for no program interpreter and no
// shared library: a scratch image has no dynamic loader or libc.
func CheckStatic(data []byte, machine elf.Machine) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	defer f.Close()
	if f.Machine != machine {
		return fmt.Errorf("ELF machine %v, want %v", f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("dynamically linked (%v): build with CGO_ENABLED=0", p.Type)
		}
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC {
		return fmt.Errorf("ELF %v %v %v, want a 64-bit little-endian executable", f.Class, f.Data, f.Type)
	}
	return nil
}

// WriteLayout writes idx as a new OCI image layout at dir (replacing what
// was there), its index.json naming it by tag.
func WriteLayout(dir string, idx v1.ImageIndex, tag string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: tag})); err != nil {
		return err
	}
	// go-containerregistry writes blobs 0600 and index.json 0777 less the
	// umask: make the layout readable by whoever pushes it, and no more.
	err = filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return os.Chmod(path, 0o755)
		default:
			return os.Chmod(path, 0o644)
		}
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// WriteArchive writes the layout at dir as an oci-archive (a tar of the
// layout, as skopeo's oci-archive: transport reads): entries in lexical
// order, owned by root, directories 0755, files 0644, all with mtime.
func WriteArchive(file, dir string, mtime time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: mtime})
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		default:
			return fmt.Errorf("%s: not a regular file", path)
		}
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// Created is the time stamp of every part of the image: SOURCE_DATE_EPOCH
// if set, else fallback.
func Created(fallback time.Time) (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return fallback.UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// ReadChangelog returns the version and date of the newest entry of a
// Debian changelog (packaging/debian/changelog, whose version make deb
// uses too).
func ReadChangelog(path string) (string, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	version := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			m := regexp.MustCompile(`^irqshift \(([^)]*)\) `).FindStringSubmatch(line)
			if m == nil {
				return "", time.Time{}, fmt.Errorf("%s: first line %q names no irqshift version", path, line)
			}
			version = m[1]
			continue
		}
		if rest, ok := strings.CutPrefix(line, " -- "); ok {
			_, date, ok := strings.Cut(rest, ">  ")
			if !ok {
				return "", time.Time{}, fmt.Errorf("%s: trailer %q has no date", path, line)
			}
			t, err := time.Parse(time.RFC1123Z, date)
			if err != nil {
				return "", time.Time{}, fmt.Errorf("%s: trailer date: %w", path, err)
			}
			return version, t.UTC(), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", time.Time{}, err
	}
	return "", time.Time{}, fmt.Errorf("%s: no trailer line", path)
}
