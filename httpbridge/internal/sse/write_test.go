package sse_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// writeLog wraps a listener: it records every write the server makes on its connections and
// can hold them (as a client that stops reading would), so that messages queue up meanwhile.
// Its connections are not *net.TCPConn: detached streams join their messages into one
// buffer for them, as they do for TLS, instead of writev.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes []string
	hold   chan struct{} // non-nil: writes wait until it is closed
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return loggedConn{c, l}, nil
}

func (c loggedConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(b))
	hold := c.l.hold
	c.l.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return c.Conn.Write(b)
}

func (l *writeLog) holdWrites() {
	l.mu.Lock()
	l.hold = make(chan struct{})
	l.mu.Unlock()
}

func (l *writeLog) release() {
	l.mu.Lock()
	if l.hold != nil {
		close(l.hold)
		l.hold = nil
	}
	l.mu.Unlock()
}

// waitWrite waits until a write containing sub has been made; it returns its index.
func (l *writeLog) waitWrite(t *testing.T, sub string) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		l.mu.Lock()
		for i, w := range l.writes {
			if strings.Contains(w, sub) {
				l.mu.Unlock()
				return i
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no write contains %q", sub)
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *writeLog) write(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes[i]
}

func newLoggedServer(t *testing.T, m mode) (*server, *writeLog) {
	t.Helper()
	wl := &writeLog{}
	s := newServerOn(t, sse.HubOptions{}, m, func(l net.Listener) net.Listener {
		wl.Listener = l
		return wl
	})
	t.Cleanup(wl.release) // before the server closes (cleanups run last first)
	return s, wl
}

// wantWhole checks that w holds exactly the messages of seqs, each whole, in order (and
// nothing else but chunk framing on attached streams).
func wantWhole(t *testing.T, w string, msgs map[uint64]string, seqs ...uint64) {
	t.Helper()
	if n := strings.Count(w, "\nid:"); n != len(seqs) {
		t.Fatalf("write holds %d messages, want %d: %q", n, len(seqs), w)
	}
	at := 0
	for _, seq := range seqs {
		i := strings.Index(w[at:], msgs[seq])
		if i < 0 {
			t.Fatalf("write lacks whole message %d (or has it out of order): %q", seq, w)
		}
		at += i + len(msgs[seq])
	}
}

// TestQueuedMessagesInOneWrite: messages that queued while the stream was writing go out
// together, each whole, in the stream's next single write; a lone message goes out at once,
// in a write of its own.
func TestQueuedMessagesInOneWrite(t *testing.T) { bothModes(t, testQueuedMessagesInOneWrite) }

func testQueuedMessagesInOneWrite(t *testing.T, m mode) {
	s, wl := newLoggedServer(t, m)
	c := s.connect(t, "tenant=a")
	s.waitStreams(t, 1)
	msgs := map[uint64]string{}
	publish := func(seq uint64) {
		pm := s.log.publish("a", "e", fmt.Sprintf(`{"n":%d}`, seq))
		msgs[seq] = string(sse.AppendMessage(nil, pm.Event, pm.Record, pm.Seq, 0))
	}

	// A lone message is written at once, though nothing follows it; its write is held.
	wl.holdWrites()
	publish(1)
	first := wl.waitWrite(t, "\nid:1\n")
	if n := strings.Count(wl.write(first), "\nid:"); n != 1 {
		t.Fatalf("the first write holds %d messages: %q", n, wl.write(first))
	}
	// Meanwhile more are queued; released, they go out in the next write, together.
	const n = 20
	for seq := uint64(2); seq <= n; seq++ {
		publish(seq)
	}
	wl.release()
	for seq := 1; seq <= n; seq++ {
		if e := c.next(t); e.id != fmt.Sprint(seq) {
			t.Fatalf("got id %s, want %d", e.id, seq)
		}
	}
	batch := wl.waitWrite(t, "\nid:2\n")
	if batch != first+1 {
		t.Fatalf("message 2 in write %d, want %d (right after the first)", batch, first+1)
	}
	seqs := make([]uint64, 0, n-1)
	for seq := uint64(2); seq <= n; seq++ {
		seqs = append(seqs, seq)
	}
	wantWhole(t, wl.write(batch), msgs, seqs...)

	// A lone message after the burst: at once, on its own.
	publish(n + 1)
	if e := c.next(t); e.id != fmt.Sprint(n+1) {
		t.Fatalf("got id %s, want %d", e.id, n+1)
	}
	wantWhole(t, wl.write(wl.waitWrite(t, fmt.Sprintf("\nid:%d\n", n+1))), msgs, n+1)
}

// TestBacklogInOneWrite: a backlog that is all waiting at once goes out in one write, each
// message whole.
func TestBacklogInOneWrite(t *testing.T) { bothModes(t, testBacklogInOneWrite) }

func testBacklogInOneWrite(t *testing.T, m mode) {
	s, wl := newLoggedServer(t, m)
	const n = 10
	msgs := map[uint64]string{}
	for seq := uint64(1); seq <= n; seq++ {
		pm := s.log.publish("a", "e", fmt.Sprintf(`{"n":%d}`, seq))
		retry := 0
		if seq == 1 {
			retry = 3000 // the default Retry, on the stream's first message
		}
		msgs[seq] = string(sse.AppendMessage(nil, pm.Event, pm.Record, pm.Seq, retry))
	}
	c := s.connect(t, "tenant=a&after=0")
	for seq := 1; seq <= n; seq++ {
		if e := c.next(t); e.id != fmt.Sprint(seq) {
			t.Fatalf("got id %s, want %d", e.id, seq)
		}
	}
	seqs := make([]uint64, 0, n)
	for seq := uint64(1); seq <= n; seq++ {
		seqs = append(seqs, seq)
	}
	wantWhole(t, wl.write(wl.waitWrite(t, "\nid:1\n")), msgs, seqs...)
}

// TestPublishBatchInOneWrite: the messages of a PublishBatch that go to a stream are written
// together, whole and in order, in one write; each stream gets only its tenant's, and those
// addressed to its user.
func TestPublishBatchInOneWrite(t *testing.T) { bothModes(t, testPublishBatchInOneWrite) }

func testPublishBatchInOneWrite(t *testing.T, m mode) {
	s, wl := newLoggedServer(t, m)
	a := s.connect(t, "tenant=a&user=u1")
	b := s.connect(t, "tenant=b")
	f := s.connect(t, "tenant=a&events=f") // a filter: event f only
	s.waitStreams(t, 3)
	s.log.publish("a", "e", `{"n":1}`) // the first message, with its retry: hint, on its own
	if e := a.next(t); e.id != "1" {
		t.Fatalf("got id %s, want 1", e.id)
	}
	msgs := map[uint64]string{}
	var batch []sse.Message
	for seq := uint64(2); seq <= 5; seq++ {
		ev := "e"
		if seq == 4 {
			ev = "f"
		}
		rec := fmt.Sprintf(`{"n":%d}`, seq)
		batch = append(batch, sse.Message{Tenant: "a", Seq: seq, Event: ev, Record: []byte(rec), Data: []byte(rec)})
		msgs[seq] = string(sse.AppendMessage(nil, ev, []byte(rec), seq, 0))
	}
	batch = append(batch,
		sse.Message{Tenant: "a", User: "u1", Event: "to-u1", Record: []byte(`{}`), Data: []byte(`{}`)},
		sse.Message{Tenant: "a", User: "u2", Event: "to-u2", Record: []byte(`{}`), Data: []byte(`{}`)},
		sse.Message{Tenant: "b", Seq: 1, Event: "e", Record: []byte(`{"b":1}`), Data: []byte(`{"b":1}`)})
	if n := s.hub.PublishBatch(batch); n != 7 {
		t.Fatalf("PublishBatch queued %d copies, want 7", n)
	}
	for _, want := range []string{"2", "3", "4", "5", "to-u1"} {
		if e := a.next(t); e.id != want && e.name != want {
			t.Fatalf("stream a got %q (id %s), want %s", e.name, e.id, want)
		}
	}
	if e := b.next(t); e.id != "1" || e.data != `{"b":1}` {
		t.Fatalf("stream b got id %s data %s", e.id, e.data)
	}
	if e := f.next(t); e.id != "4" || e.name != "f" {
		t.Fatalf("filtered stream got %q (id %s), want f (id 4)", e.name, e.id)
	}
	wantWhole(t, wl.write(wl.waitWrite(t, "\nid:2\n")), msgs, 2, 3, 4, 5)
	// Nothing more reached the filtered stream: the next it gets is the next f.
	s.hub.Publish(sse.Message{Tenant: "a", Seq: 6, Event: "f", Record: []byte(`{}`), Data: []byte(`{}`)})
	if e := f.next(t); e.id != "6" {
		t.Fatalf("filtered stream got id %s (%q), want 6", e.id, e.name)
	}
}
