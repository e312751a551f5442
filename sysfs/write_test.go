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
		name  WriteErrorClass
	}{
		{syscall.EIO, ErrUnmovable, "unmovable"},
		{syscall.EPERM, ErrUnmovable, "unmovable"},
		{syscall.EACCES, ErrPermission, "permission"},
		{syscall.EINVAL, ErrStaleMask, "stale-mask"},
		{syscall.ENOSPC, ErrNoSpace, "no-space"},
		{syscall.ENOENT, ErrGone, "gone"},
		{syscall.EBUSY, ErrTransient, "transient"},
		{syscall.EAGAIN, ErrTransient, "transient"},
		{syscall.EXDEV, nil, "other"},
	}
	for _, tt := range tests {
		pathErr := &os.PathError{Op: "write", Path: "/proc/irq/11/smp_affinity_list", Err: tt.errno}
		if got := ClassifyErrno(pathErr); got != tt.want {
			t.Errorf("ClassifyErrno(%v) = %v, want %v", tt.errno, got, tt.want)
		}
		err := WriteError(11, NewCPUSet(2), pathErr)
		if got := WriteClass(err); got != tt.want {
			t.Errorf("%v: class %v, want %v", tt.errno, got, tt.want)
		}
		if got := WriteClassName(err); got != tt.name {
			t.Errorf("%v: name %q, want %q", tt.errno, got, tt.name)
		}
		if !errors.Is(err, ErrWrite) || !errors.Is(err, tt.errno) {
			t.Errorf("%v: %v does not wrap ErrWrite and the errno", tt.errno, err)
		}
		if tt.want != ErrPermission && errors.Is(err, ErrPermission) || tt.want != ErrUnmovable && errors.Is(err, ErrUnmovable) {
			t.Errorf("%v: %v wraps a second class", tt.errno, err)
		}
	}
	if WriteClass(fmt.Errorf("x: %w", os.ErrNotExist)) != nil {
		t.Error("WriteClass of a non-write error should be nil")
	}
	if ClassifyErrno(fmt.Errorf("x: %w", os.ErrNotExist)) != ErrGone || ClassifyErrno(errors.New("x")) != nil {
		t.Error("ClassifyErrno without an errno: want ErrGone for not-exist, else nil")
	}
	if WriteClassName(ErrPermission) != "permission" {
		t.Errorf("WriteClassName(ErrPermission) = %q", WriteClassName(ErrPermission))
	}
}

// fakeAccess makes accessWrite answer err for every path for the rest of
// the test, and records the paths asked about.
func fakeAccess(t *testing.T, err error) *[]string {
	t.Helper()
	var asked []string
	saved := accessWrite
	accessWrite = func(path string) error {
		asked = append(asked, path)
		return err
	}
	t.Cleanup(func() { accessWrite = saved })
	return &asked
}

// TestEPERMWithoutPrivilege: EPERM is the kernel's refusal (unmovable) only
// when faccessat says this process may write the file; else it is the
// process that lacks the privilege. EACCES and EIO do not depend on it.
func TestEPERMWithoutPrivilege(t *testing.T) {
	const path = "/proc/irq/24/smp_affinity_list"
	for _, tt := range []struct {
		errno  syscall.Errno
		access error
		want   error
	}{
		{syscall.EPERM, nil, ErrUnmovable},
		{syscall.EPERM, syscall.EACCES, ErrPermission},
		{syscall.EPERM, syscall.EPERM, ErrPermission},
		{syscall.EPERM, syscall.ENOENT, ErrUnmovable}, // freed meanwhile: keep the kernel's word
		{syscall.EACCES, nil, ErrPermission},
		{syscall.EIO, syscall.EACCES, ErrUnmovable},
	} {
		asked := fakeAccess(t, tt.access)
		err := &os.PathError{Op: "write", Path: path, Err: tt.errno}
		if got := writeClass(path, err); got != tt.want {
			t.Errorf("%v with access %v: class %v, want %v", tt.errno, tt.access, got, tt.want)
		}
		if tt.errno == syscall.EPERM && (len(*asked) != 1 || (*asked)[0] != path) {
			t.Errorf("%v: asked about %v, want %s", tt.errno, *asked, path)
		}
		online := "/sys/devices/system/cpu/cpu1/online"
		onlineWant := tt.want
		if tt.want == ErrUnmovable {
			onlineWant = nil
		}
		if got := onlineClass(online, err); got != onlineWant {
			t.Errorf("CPU online %v with access %v: class %v, want %v", tt.errno, tt.access, got, onlineWant)
		}
	}
}

func TestSetCPUOnlineErrors(t *testing.T) {
	fs := writeTree(t, map[string]string{"sys/devices/system/cpu/cpu2/online": "1\n"})
	err := fs.SetCPUOnline(3, false)
	if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.ENOENT) || WriteClass(err) == ErrPermission {
		t.Errorf("CPU without online file: %v, want ErrWrite and ENOENT, no permission", err)
	}
	// The open error of a non-root process (TestUnprivileged makes a real one).
	err = CPUOnlineError(2, &os.PathError{Op: "open", Path: fs.CPUOnlinePath(2), Err: syscall.EACCES})
	if !errors.Is(err, ErrPermission) || !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("EACCES: %v, want ErrWrite, ErrPermission and the errno", err)
	}
	if err := CPUOnlineError(2, syscall.EBUSY); errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EBUSY) {
		t.Errorf("EBUSY: %v, want the errno and no permission class", err)
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

// TestWriteErrorClasses: WriteErrorClasses lists each class once, every
// class sentinel has one of them and every listed class but "other" is a
// sentinel's; WriteClassName of any errno's write error, or of any error,
// is one of them.
func TestWriteErrorClasses(t *testing.T) {
	listed := map[WriteErrorClass]bool{}
	for _, c := range WriteErrorClasses {
		if c == "" || listed[c] {
			t.Errorf("WriteErrorClasses %v: %q empty or twice", WriteErrorClasses, c)
		}
		listed[c] = true
	}
	named := map[WriteErrorClass]bool{WriteClassOther: true}
	for _, c := range writeClasses {
		if !listed[c.name] {
			t.Errorf("the class of %v, %q, is not in WriteErrorClasses %v", c.class, c.name, WriteErrorClasses)
		}
		if got := WriteClassName(fmt.Errorf("%w: %w", ErrWrite, c.class)); got != c.name {
			t.Errorf("WriteClassName(%v) = %q, want %q", c.class, got, c.name)
		}
		named[c.name] = true
	}
	for _, c := range WriteErrorClasses {
		if !named[c] {
			t.Errorf("WriteErrorClasses lists %q, which WriteClassName never returns", c)
		}
	}
	errs := []error{nil, errors.New("x"), os.ErrNotExist, ErrWrite}
	for errno := syscall.Errno(1); errno < 256; errno++ {
		pathErr := &os.PathError{Op: "write", Path: "/proc/irq/11/smp_affinity_list", Err: errno}
		errs = append(errs, WriteError(11, NewCPUSet(2), pathErr), CPUOnlineError(1, pathErr))
	}
	for _, err := range errs {
		if c := WriteClassName(err); !listed[c] {
			t.Errorf("WriteClassName(%v) = %q, not in WriteErrorClasses %v", err, c, WriteErrorClasses)
		}
	}
}
