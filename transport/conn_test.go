package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// testServer starts a broker and a UNIX listener in a temporary directory.
func testServer(t testing.TB, cfg Config) (*bus.Broker, string) {
	t.Helper()
	b, addrs := testListen(t, cfg, filepath.Join(t.TempDir(), "bus.sock"))
	return b, addrs[0]
}

// testListen starts a broker listening on each address (the BUS/RT convention, port 0 for
// TCP and WebSocket) and returns the addresses to dial.
func testListen(t testing.TB, cfg Config, addrs ...string) (*bus.Broker, []string) {
	t.Helper()
	_, b, dial := testListenServer(t, cfg, addrs...)
	return b, dial
}

// testListenServer is testListen that returns the server too.
func testListenServer(t testing.TB, cfg Config, addrs ...string) (*Server, *bus.Broker, []string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := bus.New(bus.WithLogger(cfg.Logger))
	s := NewServer(b)
	t.Cleanup(func() {
		s.Close()
		b.Close()
	})
	dial := make([]string, len(addrs))
	if cfg.UnixMode == 0 {
		cfg.UnixMode = 0o600
	}
	for i, a := range addrs {
		ln, err := s.Listen(a, cfg)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case isUnixAddr(a):
			dial[i] = a
		case strings.Contains(a, "://"):
			dial[i] = a[:strings.Index(a, "://")+3] + ln.Addr().String()
		default:
			dial[i] = ln.Addr().String()
		}
	}
	return s, b, dial
}

// raw is a client speaking bytes, as the conformance tests want.
type raw struct {
	t  testing.TB
	nc net.Conn
}

// testServerB serves benchmarks, whose raw clients do not ping: a long timeout keeps them.
func testServerB(b *testing.B) (*bus.Broker, string) {
	return testServer(b, Config{Timeout: time.Minute})
}

// dialRawB connects and registers a raw client for a benchmark, with no deadline.
func dialRawB(b *testing.B, path, name string) *raw {
	r := dialRaw(b, "unix", path)
	if code := r.register(name); code != 0x01 {
		b.Fatalf("register %s: %#x", name, code)
	}
	r.nc.SetDeadline(time.Time{})
	return r
}

func dialRaw(t testing.TB, network, addr string) *raw {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second)) // only keeps a broken test from hanging
	return &raw{t, nc}
}

func (r *raw) write(b ...byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) expect(want ...byte) {
	r.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.nc, got); err != nil {
		r.t.Fatalf("reading % x: %v", want, err)
	}
	if !bytes.Equal(got, want) {
		r.t.Fatalf("got % x, want % x", got, want)
	}
}

// skipPings reads the next server frame that is not a ping: its header and body.
func (r *raw) next() (hdr [6]byte, body []byte) {
	r.t.Helper()
	for {
		if _, err := io.ReadFull(r.nc, hdr[:]); err != nil {
			r.t.Fatal(err)
		}
		if hdr[0] == kindPing {
			continue
		}
		if hdr[0] == kindAck {
			return hdr, nil
		}
		body = make([]byte, binary.LittleEndian.Uint32(hdr[1:5]))
		if _, err := io.ReadFull(r.nc, body); err != nil {
			r.t.Fatal(err)
		}
		return hdr, body
	}
}

func (r *raw) expectAck(opID uint32, code byte) {
	r.t.Helper()
	hdr, _ := r.next()
	want := [6]byte{kindAck}
	binary.LittleEndian.PutUint32(want[1:5], opID)
	want[5] = code
	if hdr != want {
		r.t.Fatalf("got % x, want ack % x", hdr, want)
	}
}

func nameBytes(name string) []byte {
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(name))), name...)
}

// register does the handshake of WIRE.md §2 and returns the final code.
func (r *raw) register(name string) byte {
	r.t.Helper()
	r.expect(0xEB, 0x01, 0x00)
	r.write(0xEB, 0x01, 0x00)
	r.expect(0x01)
	r.write(nameBytes(name)...)
	var code [1]byte
	if _, err := io.ReadFull(r.nc, code[:]); err != nil {
		r.t.Fatal(err)
	}
	return code[0]
}

func TestHandshake(t *testing.T) {
	_, path := testServer(t, Config{})
	r := dialRaw(t, "unix", path)
	if code := r.register("plugin"); code != 0x01 {
		t.Fatalf("register: %#x", code)
	}
	for _, c := range []struct {
		name string
		code byte
	}{
		{"", 0x72},
		{".broker", 0x72},
		{".mine", 0x72},
		{"plugin", 0x76},
		{"ghost%%1", 0x71},
		{"plugin%%1", 0x01},
	} {
		r := dialRaw(t, "unix", path)
		if code := r.register(c.name); code != c.code {
			t.Errorf("register %q: %#x, want %#x", c.name, code, c.code)
		}
	}
}

func TestHandshakeBadEcho(t *testing.T) {
	_, path := testServer(t, Config{})
	r := dialRaw(t, "unix", path)
	r.expect(0xEB, 0x01, 0x00)
	r.write(0xEB, 0x02, 0x00)
	r.expect(0x75)
	if _, err := r.nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after 75")
	}
}

func TestHandshakeNotUTF8ClosesWithoutByte(t *testing.T) {
	_, path := testServer(t, Config{})
	r := dialRaw(t, "unix", path)
	r.expect(0xEB, 0x01, 0x00)
	r.write(0xEB, 0x01, 0x00)
	r.expect(0x01)
	r.write(2, 0, 0xff, 0xfe)
	if n, err := r.nc.Read(make([]byte, 1)); err != io.EOF || n != 0 {
		t.Fatalf("got %d bytes, %v; want EOF", n, err)
	}
}

func TestHandshakeAccessDenied(t *testing.T) {
	m := aaa.NewMap()
	m.Set("far", aaa.Policy{Hosts: []string{"10.0.0.0/8"}})
	m.Set("near", aaa.Policy{Hosts: []string{"127.0.0.0/8"}})
	_, addrs := testListen(t, Config{Policy: m}, "127.0.0.1:0")
	for name, want := range map[string]byte{"far": 0x79, "unlisted": 0x79, "near": 0x01} {
		r := dialRaw(t, "tcp", addrs[0])
		if code := r.register(name); code != want {
			t.Errorf("%s: %#x, want %#x", name, code, want)
		}
	}
}

func clientHeader(opID uint32, flags byte, body string) []byte { return clientFrame(opID, flags, body) }

// TestAcks: every ack code of WIRE.md §5, and acks ordered after the frame's effect.
func TestAcks(t *testing.T) {
	m := aaa.NewMap()
	m.Set("p", aaa.Policy{Subscribe: aaa.Rule{Allow: []string{"ok/#"}}, P2P: aaa.Rule{Allow: []string{"p", "ghost"}}})
	_, path := testServer(t, Config{Policy: m})
	r := dialRaw(t, "unix", path)
	if code := r.register("p"); code != 0x01 {
		t.Fatalf("register: %#x", code)
	}
	// Partly refused subscribe: one 79 per refused topic, then 01, same op id.
	r.write(clientHeader(10, opSubscribe|1<<6, "ok/a\x00no/1\x00no/2")...)
	r.expectAck(10, 0x79)
	r.expectAck(10, 0x79)
	r.expectAck(10, 0x01)
	// Publishing to itself: the publication arrives before the ack.
	r.write(clientHeader(11, opPublish|3<<6, "ok/a\x00hello")...)
	hdr, body := r.next()
	if hdr[0] != 0x01 || hdr[5] != 1 || string(body) != "p\x00ok/a\x00hello" {
		t.Fatalf("publication % x %q", hdr, body)
	}
	r.expectAck(11, 0x01)
	r.write(clientHeader(12, opMessage|1<<6, "ghost\x00x")...)
	r.expectAck(12, 0x71)
	r.write(clientHeader(13, opMessage|1<<6, "other\x00x")...)
	r.expectAck(13, 0x79)
	// QoS 0: no ack; a client ping: no ack. The next ack proves nothing came between.
	r.write(clientHeader(14, opMessage, "ghost\x00x")...)
	r.write(0, 0, 0, 0, 0, 0, 0, 0, 0)
	r.write(clientHeader(15, opUnsubscribe|1<<6, "ok/a")...)
	r.expectAck(15, 0x01)
	// A message to itself, realtime off.
	r.write(clientHeader(16, opMessage|1<<6, "p\x00me")...)
	hdr, body = r.next()
	if hdr[0] != 0x12 || hdr[5] != 0 || string(body) != "p\x00me" {
		t.Fatalf("message % x %q", hdr, body)
	}
	r.expectAck(16, 0x01)
}

// TestOneBytePerWrite: frames dribbled a byte at a time route the same.
func TestOneBytePerWrite(t *testing.T) {
	_, path := testServer(t, Config{})
	r := dialRaw(t, "unix", path)
	r.register("slow")
	wire := append(clientHeader(1, opSubscribe|1<<6, "t"), clientHeader(2, opPublish|1<<6, "t\x00x")...)
	for _, b := range wire {
		r.write(b)
	}
	r.expectAck(1, 0x01)
	if hdr, body := r.next(); hdr[0] != 0x01 || string(body) != "slow\x00t\x00x" {
		t.Fatalf("got % x %q", hdr, body)
	}
	r.expectAck(2, 0x01)
}

// TestMalformedFrameClosesOnlyThatConnection.
func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	b, path := testServer(t, Config{PayloadLimit: 1024})
	good := dialRaw(t, "unix", path)
	good.register("good")
	for name, wire := range map[string][]byte{
		"unknown op":   clientHeader(1, 0x3F, "x"),
		"no separator": clientHeader(1, opPublish, "topic"),
		"too large":    {1, 0, 0, 0, opPublish, 0xff, 0xff, 0xff, 0xff},
	} {
		bad := dialRaw(t, "unix", path)
		bad.register("bad")
		bad.write(wire...)
		if _, err := io.ReadAll(bad.nc); err != nil {
			t.Fatalf("%s: %v", name, err) // EOF, not a timeout: the broker closed it
		}
		deadline := time.Now().Add(5 * time.Second)
		for registered(b, "bad") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if registered(b, "bad") {
			t.Fatalf("%s: bad client still registered", name)
		}
	}
	good.write(clientHeader(7, opMessage|1<<6, "good\x00still here")...)
	if _, body := good.next(); string(body) != "good\x00still here" {
		t.Fatalf("good client: %q", body)
	}
	good.expectAck(7, 0x01)
}

func registered(b *bus.Broker, name string) bool {
	for _, c := range b.Clients() {
		if c.Name == name {
			return true
		}
	}
	return false
}

// TestPingsAndIdleDrop: the broker pings an idle client every timeout/2 and drops one that
// sends nothing for 1.25 × timeout.
func TestPingsAndIdleDrop(t *testing.T) {
	_, path := testServer(t, Config{Timeout: 200 * time.Millisecond})
	r := dialRaw(t, "unix", path)
	r.register("idle")
	r.expect(0, 0, 0, 0, 0, 0) // a ping
	pings := 1
	buf := make([]byte, 6)
	for {
		if _, err := io.ReadFull(r.nc, buf); err != nil {
			if errors.Is(err, io.EOF) {
				break // dropped
			}
			t.Fatal(err)
		}
		if !bytes.Equal(buf, make([]byte, 6)) {
			t.Fatalf("unexpected frame % x", buf)
		}
		pings++
	}
	if pings < 1 {
		t.Fatal("no pings before the drop")
	}
}

// TestManyFramesInOneWrite, over TCP: a burst of frames in one write, with realtime and
// non-realtime ones, arrives whole and flagged as sent.
func TestManyFramesInOneWrite(t *testing.T) {
	_, addrs := testListen(t, Config{}, "127.0.0.1:0")
	r := dialRaw(t, "tcp", addrs[0])
	if code := r.register("burst"); code != 0x01 {
		t.Fatalf("register: %#x", code)
	}
	var wire []byte
	for i := range 100 {
		qos := byte(i%2) << 7 // alternate QoS 0 and QoS 2 (realtime)
		wire = append(wire, clientHeader(uint32(i), opMessage|qos, "burst\x00"+string(rune('a'+i%26)))...)
	}
	wire = append(wire, clientHeader(1000, opMessage|1<<6, "burst\x00end")...)
	r.write(wire...)
	for i := range 100 {
		hdr, body := r.next()
		if want := "burst\x00" + string(rune('a'+i%26)); hdr[0] != 0x12 || string(body) != want || hdr[5] != byte(i%2) {
			t.Fatalf("frame %d: % x %q, want realtime %d %q", i, hdr, body, i%2, want)
		}
	}
	r.next() // "end"
	r.expectAck(1000, 0x01)
}

// TestSecondariesAndAnnouncements: a secondary connection registers beside its primary,
// frames carry the full sender name, and .broker/info announces primaries only.
func TestSecondariesAndAnnouncements(t *testing.T) {
	_, path := testServer(t, Config{})
	watch := dialRaw(t, "unix", path)
	watch.register("watch")
	watch.write(clientHeader(1, opSubscribe|1<<6, ".broker/info")...)
	watch.expectAck(1, 0x01)

	app := dialRaw(t, "unix", path)
	if code := app.register("app"); code != 0x01 {
		t.Fatalf("app: %#x", code)
	}
	hdr, body := watch.next()
	if hdr[0] != 0x01 || !bytes.HasPrefix(body, []byte(".broker\x00.broker/info\x00\x83\xa1s\xa3reg\xa1d\xa3app\xa1t")) {
		t.Fatalf("announcement % x %q", hdr, body)
	}
	sec := dialRaw(t, "unix", path)
	if code := sec.register("app%%2"); code != 0x01 {
		t.Fatalf("secondary: %#x", code)
	}
	sec.write(clientHeader(2, opMessage|1<<6, "watch\x00from a secondary")...)
	sec.expectAck(2, 0x01)
	// The secondary's registration was not announced: the next frame is its message.
	if _, body := watch.next(); string(body) != "app%%2\x00from a secondary" {
		t.Fatalf("got %q", body)
	}
	// The primary goes, its secondary with it, and the unreg is announced.
	app.nc.Close()
	if _, err := io.ReadAll(sec.nc); err != nil {
		t.Fatalf("secondary: %v", err)
	}
	if _, body := watch.next(); !bytes.Contains(body, []byte("\xa5unreg\xa1d\xa3app")) {
		t.Fatalf("unreg announcement %q", body)
	}
}

// TestBusyClientIsNotIdle: a client that streams without pause for longer than 1.25 ×
// timeout, with frames straddling its writes, is active, not idle, and stays connected.
func TestBusyClientIsNotIdle(t *testing.T) {
	// The idle limit is far above a scheduling stall of a loaded machine (the writer below
	// must not look idle for want of a processor), and far below the time between two frame
	// boundaries of the stream (len(one) writes, over a second apart).
	b, path := testServer(t, Config{Timeout: 500 * time.Millisecond})
	r := dialRaw(t, "unix", path)
	r.register("busy")
	go io.Copy(io.Discard, r.nc) // drain pings so the broker's writes never block
	one := clientHeader(0, opMessage, "nobody\x00"+strings.Repeat("x", 1000))
	// Writes one byte longer than a frame: a write ends on a frame boundary only once
	// per len(one) writes, far apart in time, so the read buffer is rarely empty.
	chunk := len(one) + 1
	var pending []byte
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		for len(pending) < chunk {
			pending = append(pending, one...)
		}
		r.write(pending[:chunk]...)
		pending = pending[chunk:]
		time.Sleep(time.Millisecond)
	}
	if !registered(b, "busy") {
		t.Fatal("a client streaming frames was dropped as idle")
	}
}
