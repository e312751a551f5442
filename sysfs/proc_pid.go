package sysfs

import (
	"os"
	"strconv"
	"strings"
)

// ProcessesNamed returns the PIDs whose /proc/PID/comm is name. The daemon
// uses it to find a running irqbalance, which would fight over the same
// smp_affinity files.
func (fs FS) ProcessesNamed(name string) ([]int, error) {
	entries, err := os.ReadDir(fs.ProcPath())
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, err := os.ReadFile(fs.ProcPath(e.Name(), "comm"))
		if err != nil {
			continue // exited meanwhile, or not ours to read
		}
		if strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ProcessNamed reports whether process pid still runs under name: false
// once it exited, also when its PID was reused by another program.
func (fs FS) ProcessNamed(pid int, name string) bool {
	comm, err := os.ReadFile(fs.ProcPath(strconv.Itoa(pid), "comm"))
	return err == nil && strings.TrimSpace(string(comm)) == name
}
