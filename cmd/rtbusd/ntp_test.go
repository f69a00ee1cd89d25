package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/testutil"
)

// TestNTPOffsetLogged: the bridge's clock follows the NTP server given with -ntp (here a
// loopback one) and the daemon logs the offset.
func TestNTPOffsetLogged(t *testing.T) {
	ntp := testutil.StartNTPServer(t, 30*time.Second)
	_, logs := startDaemon(t, "-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-internal", "off", "-data-dir", t.TempDir(), "-ntp", ntp.Addr)
	waitFor(t, "the NTP offset in the log", func() bool { return strings.Contains(logs.String(), "the clock follows it") })
	// The offset is measured over a round trip, so under load it is a little less than 30 s.
	m := regexp.MustCompile(`offset=([0-9.]+s)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no offset in the log:\n%s", logs)
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d < 29*time.Second || d > 31*time.Second {
		t.Errorf("offset %s, want about 30 s:\n%s", m[1], logs)
	}
}

// TestNTPUnansweredDoesNotDelayStart: with no NTP server answering, the daemon starts at once
// and warns once that it keeps the local clock.
func TestNTPUnansweredDoesNotDelayStart(t *testing.T) {
	ntp := testutil.StartNTPServer(t, 0)
	ntp.Mute.Store(true)
	_, logs := startDaemon(t, "-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-internal", "off", "-data-dir", t.TempDir(), "-ntp", ntp.Addr)
	// The query waits 2 s for an answer; the start came before the warning.
	if strings.Contains(logs.String(), "no NTP server answered") {
		t.Errorf("the daemon waited for NTP before starting:\n%s", logs)
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "no NTP server answered") })
	if ntp.Queries.Load() == 0 {
		t.Error("the server was not asked")
	}
	if n := strings.Count(logs.String(), "no NTP server answered"); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
}

// TestNTPDefault: the public pool by default, said in -h; -ntp off asks nobody.
func TestNTPDefault(t *testing.T) {
	out, _ := exec.Command(buildDaemon(t), "-h").CombinedOutput()
	if !strings.Contains(string(out), "0.pool.ntp.org") || !strings.Contains(string(out), `(default "pool")`) {
		t.Errorf("-h does not show the NTP default:\n%s", out)
	}
	if got := ntpServers("pool"); len(got) != 4 || got[0] != "0.pool.ntp.org" {
		t.Errorf("pool = %q", got)
	}
	if got := ntpServers("off"); got != nil {
		t.Errorf("off = %q", got)
	}
	if got := ntpServers("127.0.0.1:123, pool"); len(got) != 5 || got[0] != "127.0.0.1:123" {
		t.Errorf("a list = %q", got)
	}
}
