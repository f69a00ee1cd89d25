package e2e

import (
	"testing"

	"github.com/rtbus/rtbus/internal/testutil"
)

// TestMain keeps every rtbusd the tests start away from the user's files and default ports.
func TestMain(m *testing.M) { testutil.Main(m) }

// buildDaemon returns the path of rtbusd built from this module.
func buildDaemon(t testing.TB) string { return testutil.Daemon(t) }
