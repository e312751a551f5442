package sysfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestClassifyErrno(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		want  error
		name  string
	}{
		{syscall.EIO, ErrUnmovable, "unmovable"},
		{syscall.EPERM, ErrUnmovable, "unmovable"},
		{syscall.EACCES, ErrUnmovable, "unmovable"},
		{syscall.EINVAL, ErrStaleMask, "stale-mask"},
		{syscall.ENOSPC, ErrNoSpace, "no-space"},
		{syscall.ENOENT, ErrGone, "gone"},
		{syscall.EBUSY, ErrTransient, "transient"},
		{syscall.EAGAIN, ErrTransient, "transient"},
		{syscall.EXDEV, nil, "other"},
	}
	for _, tt := range tests {
		pathErr := &os.PathError{Op: "write", Path: "/proc/irq/11/smp_affinity_list", Err: tt.errno}
		err := writeError(11, NewCPUSet(2), pathErr)
		if got := WriteClass(err); got != tt.want {
			t.Errorf("%v: class %v, want %v", tt.errno, got, tt.want)
		}
		if got := WriteClassName(err); got != tt.name {
			t.Errorf("%v: name %q, want %q", tt.errno, got, tt.name)
		}
		if !errors.Is(err, ErrWrite) || !errors.Is(err, tt.errno) {
			t.Errorf("%v: %v does not wrap ErrWrite and the errno", tt.errno, err)
		}
	}
	if WriteClass(fmt.Errorf("x: %w", os.ErrNotExist)) != nil {
		t.Error("WriteClass of a non-write error should be nil")
	}
}

func TestWriteAffinityFixture(t *testing.T) {
	fs := writeTree(t, map[string]string{"proc/irq/13/smp_affinity_list": "0-3\n"})
	if err := fs.WriteAffinity(13, NewCPUSet(2)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(fs.AffinityListPath(13)); string(data) != "2\n" {
		t.Errorf("file holds %q, want 2", data)
	}
	if err := fs.WriteAffinity(13, CPUSet{}); !errors.Is(err, ErrWrite) {
		t.Errorf("empty mask: err = %v", err)
	}
	if data, _ := os.ReadFile(fs.AffinityListPath(13)); string(data) != "2\n" {
		t.Errorf("empty mask changed the file to %q", data)
	}
	if err := fs.WriteAffinity(99, NewCPUSet(1)); !errors.Is(err, ErrGone) {
		t.Errorf("missing IRQ: err = %v, want ErrGone", err)
	}
}
