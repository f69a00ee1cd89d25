package procstat_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/rtbus/rtbus/internal/procstat"
)

// TestRSS: this process's resident memory grows when it touches a fresh 64 MiB, and a
// process that does not exist is an error.
func TestRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := procstat.RSS(os.Getpid()); err == nil {
			t.Fatal("no error without /proc")
		}
		return
	}
	before, err := procstat.RSS(os.Getpid())
	if err != nil || before <= 0 {
		t.Fatalf("RSS %d, %v", before, err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	after, err := procstat.RSS(os.Getpid())
	if err != nil || after-before < 32<<20 {
		t.Fatalf("RSS %d -> %d (%v) after touching 64 MiB", before, after, err)
	}
	runtime.KeepAlive(b)
	if _, err := procstat.RSS(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
