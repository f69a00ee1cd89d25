// Package procstat reads what Linux says of a process's memory, for the tests and load tools
// that measure rtbusd from outside.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS is the resident memory of process pid, in bytes (VmRSS in /proc/PID/status). It fails
// where there is no /proc (other systems) or no such process.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("procstat: VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("procstat: no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
