// Command image builds irqshift's container image: a multi-platform
// (linux/amd64, linux/arm64/v8) OCI image, FROM scratch with only the
// static binary at /usr/bin/irqshift, written as an OCI image layout (and
// optionally an oci-archive) with go-containerregistry. No container
// daemon, no registry, no base image: `make image` runs it.
//
//	go run . -version 0.11.0 -out DIR [-archive FILE] [-changelog FILE] amd64=BIN arm64=BIN
//
// Time stamps are SOURCE_DATE_EPOCH, else the date of the newest entry of
// -changelog, else 0, so the same binaries give the same digests.
//
// It is a module of its own so that irqshift's go.mod does not carry
// go-containerregistry and its dependencies.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	version := fl.String("version", "", "image tag and version label (default: the changelog's)")
	out := fl.String("out", "", "OCI image layout directory to write (replaced)")
	archive := fl.String("archive", "", "also write the layout as this oci-archive tar file")
	changelog := fl.String("changelog", "", "Debian changelog whose newest entry gives the default version and date")
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "usage: image -out DIR [-version V] [-archive FILE] [-changelog FILE] ARCH=BINARY...")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || fl.NArg() == 0 {
		fl.Usage()
		return fmt.Errorf("-out and at least one ARCH=BINARY are needed")
	}
	spec := Spec{Version: *version}
	if *changelog != "" {
		v, date, err := ReadChangelog(*changelog)
		if err != nil {
			return err
		}
		if spec.Version == "" {
			spec.Version = v
		}
		spec.Created = date
	} else {
		spec.Created = time.Unix(0, 0)
	}
	var err error
	if spec.Created, err = Created(spec.Created); err != nil {
		return err
	}
	for _, a := range fl.Args() {
		arch, path, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q is not ARCH=BINARY", a)
		}
		spec.Binaries = append(spec.Binaries, Binary{Arch: arch, Path: path})
	}

	idx, err := Build(spec)
	if err != nil {
		return err
	}
	if err := WriteLayout(*out, idx, spec.Version); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: %s: OCI layout, tag %s, index %s\n", *out, spec.Version, digest)
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		fmt.Printf("image:   %s %s\n", d.Platform, d.Digest)
	}
	if *archive != "" {
		if err := WriteArchive(*archive, *out, spec.Created); err != nil {
			return err
		}
		fmt.Printf("image: %s: oci-archive\n", *archive)
	}
	fmt.Printf("image: push with: skopeo copy --all oci:%s:%s docker://REGISTRY/irqshift/irqshift:%s\n", *out, spec.Version, spec.Version)
	fmt.Printf("image:        or: crane push %s REGISTRY/irqshift/irqshift:%s\n", *out, spec.Version)
	return nil
}
