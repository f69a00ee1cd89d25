package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rtbus/rtbus/internal/testutil"
)

// TestMain keeps every rtbusd the tests start away from the user's files and default ports
// (testutil.Isolate) and removes the binary built for them.
func TestMain(m *testing.M) {
	cleanup, err := testutil.Isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	if daemonBin.dir != "" {
		os.RemoveAll(daemonBin.dir)
	}
	os.Exit(code)
}

// daemonBin is rtbusd built once for all the tests of the binary.
var daemonBin struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildDaemon returns the path of rtbusd built from this module.
func buildDaemon(t testing.TB) string {
	t.Helper()
	daemonBin.once.Do(func() {
		if daemonBin.dir, daemonBin.err = os.MkdirTemp("", "rtbusd-e2e"); daemonBin.err != nil {
			return
		}
		daemonBin.path = filepath.Join(daemonBin.dir, "rtbusd")
		cmd := exec.Command("go", "build", "-o", daemonBin.path, "github.com/rtbus/rtbus/cmd/rtbusd")
		if out, err := cmd.CombinedOutput(); err != nil {
			daemonBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if daemonBin.err != nil {
		t.Fatal(daemonBin.err)
	}
	return daemonBin.path
}
