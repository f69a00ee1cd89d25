package ntpclock_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/ntpclock"
	"github.com/rtbus/rtbus/internal/testutil"
)

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func near(d, want time.Duration) bool { return d > want-time.Second/2 && d < want+time.Second/2 }

func TestOffsetFromServer(t *testing.T) {
	srv := testutil.StartNTPServer(t, 10*time.Second)
	c := ntpclock.New(ntpclock.Options{Servers: []string{srv.Addr}, Interval: 20 * time.Millisecond, Timeout: time.Second})
	defer c.Close()
	waitFor(t, "offset near 10 s", func() bool { return near(c.Offset(), 10*time.Second) })
	if d := time.Until(c.Now()); !near(d, 10*time.Second) {
		t.Fatalf("Now is local time + %v, want about 10 s", d)
	}
	// The clock queries again periodically and follows the server.
	srv.Skew.Store(int64(-20 * time.Second))
	waitFor(t, "offset near -20 s", func() bool { return near(c.Offset(), -20*time.Second) })
	c.Close()
	n := srv.Queries.Load()
	time.Sleep(100 * time.Millisecond) // five intervals
	if srv.Queries.Load() != n {
		t.Fatal("queries continue after Close")
	}
}

// count is how often sub was logged.
func count(logs *testutil.Buffer, sub string) int { return strings.Count(logs.String(), sub) }

func TestNoServerAnswers(t *testing.T) {
	// A port with nothing listening: take one, then free it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	// A server that never answers, to exercise the timeout too.
	mute, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()

	var logs testutil.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	start := time.Now()
	c := ntpclock.New(ntpclock.Options{Servers: []string{dead, mute.LocalAddr().String()},
		Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond, Logger: log})
	defer c.Close()
	if since := time.Since(start); since > time.Second {
		t.Fatalf("New blocked %v", since) // New must not wait for the network at all
	}
	if d := time.Until(c.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("Now is %v away from the local clock", d)
	}
	waitFor(t, "the warning", func() bool { return count(&logs, "no NTP server answered") > 0 })
	time.Sleep(300 * time.Millisecond) // several more failed rounds
	if n := count(&logs, "no NTP server answered"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if c.Offset() != 0 {
		t.Fatalf("offset %v without any answer", c.Offset())
	}
}

func TestLocalOnly(t *testing.T) {
	c := ntpclock.New(ntpclock.Options{})
	if c.Offset() != 0 {
		t.Fatal("offset without servers")
	}
	if d := time.Until(c.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("Now is %v away from the local clock", d)
	}
	c.Close()
	c.Close() // idempotent
}

// TestRetryWhileUnanswered: while no server answers, the clock asks again every Retry, not
// every Interval, and says once what it found when one answers.
func TestRetryWhileUnanswered(t *testing.T) {
	srv := testutil.StartNTPServer(t, 7*time.Second)
	srv.Mute.Store(true)
	var logs testutil.Buffer
	c := ntpclock.New(ntpclock.Options{Servers: []string{srv.Addr}, Interval: time.Hour, Retry: 20 * time.Millisecond,
		Timeout: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer c.Close()
	waitFor(t, "the warning", func() bool { return count(&logs, "no NTP server answered") > 0 })
	srv.Mute.Store(false)
	waitFor(t, "offset near 7 s", func() bool { return near(c.Offset(), 7*time.Second) })
	waitFor(t, "the offset logged", func() bool { return count(&logs, "the clock follows it") == 1 })
	// The offset measured is 7 s give or take the exchange's asymmetry (6.99995s once).
	_, rest, _ := strings.Cut(logs.String(), "the clock follows it")
	_, v, _ := strings.Cut(rest, "offset=")
	v, _, _ = strings.Cut(strings.ReplaceAll(v, "\n", " "), " ")
	if d, err := time.ParseDuration(v); err != nil || !near(d, 7*time.Second) {
		t.Errorf("the offset is not in the log:\n%s", logs.String())
	}
}
