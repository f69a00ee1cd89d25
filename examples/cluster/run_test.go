// Package cluster_test runs examples/cluster/run.sh, so that the example keeps working.
package cluster_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/testutil"
)

// TestMain keeps the nodes off the user's files and RTBUS_* settings.
func TestMain(m *testing.M) { testutil.Main(m) }

// The script builds rtbusd, starts three nodes on loopback, streams from node 2 while node 1
// dies (one time in three it leads the event log), and must end by itself with both events on
// the stream. It bounds each of its waits; the test bounds the whole.
func TestRunScript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh")
	cmd.Env = append(cmd.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"hello from node 1", "hello from node 3, node 1 is gone", "done: the stream went on"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
