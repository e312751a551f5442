package sysfs

import (
	"encoding/binary"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirents encodes names as getdents64 records.
func dirents(names ...string) []byte {
	nameOff := int(unsafe.Offsetof(unix.Dirent{}.Name))
	var b []byte
	for i, name := range names {
		reclen := (nameOff + len(name) + 1 + 7) &^ 7
		rec := make([]byte, reclen)
		binary.NativeEndian.PutUint64(rec, uint64(i+1))
		binary.NativeEndian.PutUint16(rec[unsafe.Offsetof(unix.Dirent{}.Reclen):], uint16(reclen))
		copy(rec[nameOff:], name)
		b = append(b, rec...)
	}
	return b
}

func TestDirentNumbers(t *testing.T) {
	b := dirents(".", "..", "13", "default_smp_affinity", "0", "007", "4096", "-1", "+2", "99999999999", "2")
	if got, want := appendDirentNumbers(nil, b), []int{13, 0, 4096, 2}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A torn record ends the parse; it does not read past the buffer.
	if got := appendDirentNumbers(nil, b[:len(b)-3]); !slices.Equal(got, []int{13, 0, 4096}) {
		t.Errorf("torn: got %v", got)
	}
}

func TestIRQDirs(t *testing.T) {
	fs := writeTree(t, map[string]string{"proc/irq/13/node": "0\n", "proc/irq/2/node": "0\n", "proc/irq/default_smp_affinity": "f\n", "proc/irq/100/node": "0\n"})
	got, err := fs.irqDirs()
	if err != nil || !slices.Equal(got, []int{2, 13, 100}) {
		t.Errorf("irqDirs = %v, %v", got, err)
	}
	links, err := fs.irqDirLinks()
	if err != nil || links != 2+3 {
		t.Errorf("irqDirLinks = %d, %v; want 5 (2 + 3 directories)", links, err)
	}
}

func FuzzDirentNumbers(f *testing.F) {
	f.Add(dirents("13", "default_smp_affinity", "0"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range appendDirentNumbers(nil, b) {
			if n < 0 {
				t.Fatalf("negative IRQ %d", n)
			}
		}
	})
}
