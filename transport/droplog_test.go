package transport

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/testutil"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct{ testutil.Buffer }

// lines returns the logged lines at level Info and above that mention client.
func (b *lockedBuffer) lines(client string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, client) && !strings.Contains(l, "level=DEBUG") {
			out = append(out, l)
		}
	}
	return out
}

// TestDropLoggedOnce: each way a connection is dropped logs exactly one line naming the
// reason, and an orderly hang-up logs nothing at Info.
func TestDropLoggedOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string // in the one line
		drop func(t *testing.T, r *raw, path string)
	}{
		{"malformed frame", Config{}, "unknown op code", func(t *testing.T, r *raw, _ string) {
			r.register("victim")
			r.write(clientFrame(1, 0x3F, "x")...)
		}},
		{"oversized frame", Config{PayloadLimit: 16}, "payload limit", func(t *testing.T, r *raw, _ string) {
			r.register("victim")
			r.write(clientFrame(1, opPublish, "t\x00"+strings.Repeat("x", 100))...)
		}},
		{"idle", Config{Timeout: 100 * time.Millisecond}, "idle", func(t *testing.T, r *raw, _ string) {
			r.register("victim")
		}},
		{"stalled mid-frame", Config{Timeout: 100 * time.Millisecond}, "idle", func(t *testing.T, r *raw, _ string) {
			r.register("victim")
			r.write(clientFrame(1, opPublish, "t\x00payload")[:12]...) // and nothing more
		}},
		{"handshake refusal", Config{}, "handshake", func(t *testing.T, r *raw, _ string) {
			r.expect(0xEB, 0x01, 0x00)
			r.write(0xEB, 0x02, 0x00) // wrong version
		}},
		// A long timeout: the victim sends nothing, and on a loaded machine routing the flood
		// can take longer than the default idle limit, which would drop it for silence first.
		{"queue overflow", Config{Timeout: time.Minute}, "queue full", func(t *testing.T, r *raw, path string) {
			// The bus logs the overflow of a client that never reads; the transport adds
			// nothing. The victim's queue holds 8192 frames; a sender floods it with more than its
			// queue and socket buffers hold.
			r.register("victim")
			tx := dialRaw(t, "unix", path)
			tx.register("flooder")
			burst := bytes.Repeat(clientFrame(0, opMessage, "victim\x00"+strings.Repeat("x", 100)), 30000)
			tx.write(burst...)
		}},
		{"write timeout", Config{Timeout: time.Second}, "write timeout", func(t *testing.T, r *raw, path string) {
			// A client that pings but never reads: the socket fills, a write times out. The
			// limit is well above the pings' spacing even on a loaded machine, so that the
			// victim is never dropped as idle first.
			r.register("victim")
			tx := dialRaw(t, "unix", path)
			tx.register("flooder")
			big := clientFrame(0, opMessage, "victim\x00"+strings.Repeat("x", 256<<10))
			stop := time.Now().Add(8 * time.Second)
			for i := 0; time.Now().Before(stop); i++ {
				r.nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := r.nc.Write(make([]byte, clientHeaderLen)); err != nil {
					return // dropped
				}
				if i < 40 {
					tx.write(big...)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			c.cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			b, path := testServer(t, c.cfg)
			r := dialRaw(t, "unix", path)
			c.drop(t, r, path)
			// The broker closes the connection: reading ends.
			r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, r.nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection not closed by the broker: %v", err)
			}
			who := "victim"
			if c.name == "handshake refusal" {
				who = "peer=" // unregistered: named by its address
			}
			waitLogged(t, logs, who)
			time.Sleep(50 * time.Millisecond) // a second line, if any, would come now
			lines := logs.lines(who)
			if c.name == "handshake refusal" {
				lines = filter(lines, "dropped")
			}
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Fatalf("want one line naming %q, got %d:\n%s", c.want, len(lines), strings.Join(lines, "\n"))
			}
			if registered(b, "victim") {
				t.Fatal("victim still registered")
			}
		})
	}
}

func TestOrderlyCloseLogsNoDrop(t *testing.T) {
	logs := &lockedBuffer{}
	_, path := testServer(t, Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := dialTest(t, path, "polite")
	if err := c.Publish(bus.QoSProcessed, "t", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logsAll(logs), "connection closed") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if l := logs.lines("polite"); len(l) != 0 {
		t.Fatalf("an orderly close logged at Info:\n%s", strings.Join(l, "\n"))
	}
	if !strings.Contains(logsAll(logs), "connection closed") {
		t.Fatal("no debug line for the orderly close")
	}
}

func logsAll(b *lockedBuffer) string { return b.String() }

func waitLogged(t *testing.T, logs *lockedBuffer, who string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.lines(who)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged about %q:\n%s", who, logsAll(logs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func filter(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// A peer that connects and closes before its first byte (a health check, another rtbusd
// probing whether the socket is live) is logged at Debug only.
func TestSilentPeerLoggedAtDebug(t *testing.T) {
	logs := &lockedBuffer{}
	_, path := testServer(t, Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logsAll(logs), "connection dropped") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	all := logsAll(logs)
	if !strings.Contains(all, "level=DEBUG msg=\"transport: connection dropped\"") {
		t.Fatalf("no debug line for the silent peer:\n%s", all)
	}
	if strings.Contains(all, "level=INFO msg=\"transport: connection dropped\"") {
		t.Fatalf("a silent peer logged at Info:\n%s", all)
	}
}
