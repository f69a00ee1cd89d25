package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Main is the TestMain of a package whose tests start daemons: it isolates them from the
// user's files and settings (Isolate), runs the tests, removes what Daemon built, and exits.
func Main(m *testing.M) {
	cleanup, err := Isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	if daemon.dir != "" {
		os.RemoveAll(daemon.dir)
	}
	os.Exit(code)
}

// daemon is rtbusd built once per test binary: each build links the whole daemon.
var daemon struct {
	once      sync.Once
	dir, path string
	err       error
}

// Daemon returns the path of rtbusd built from this module, building it on the first call;
// Main removes it.
func Daemon(t testing.TB) string {
	t.Helper()
	daemon.once.Do(func() {
		if daemon.dir, daemon.err = os.MkdirTemp("", "rtbusd-test"); daemon.err != nil {
			return
		}
		daemon.path = filepath.Join(daemon.dir, "rtbusd")
		out, err := exec.Command("go", "build", "-o", daemon.path, "github.com/rtbus/rtbus/cmd/rtbusd").CombinedOutput()
		if err != nil {
			daemon.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if daemon.err != nil {
		t.Fatal(daemon.err)
	}
	return daemon.path
}
