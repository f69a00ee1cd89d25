package transport

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// TestWireOpsAndAcks (WIRE.md §3-§5): the ops TestAcks leaves out, byte for byte: exclude and
// unexclude, publish-for, broadcast, and the ack codes of publish and broadcast (01 even
// without receivers, 79 when refused).
func TestWireOpsAndAcks(t *testing.T) {
	m := aaa.NewMap()
	m.Set("p", aaa.Policy{Publish: aaa.Rule{Allow: []string{"ok/#", "quiet/#"}}, Broadcast: aaa.Rule{Allow: []string{"r.*"}}})
	m.Set("r.1", aaa.Policy{})
	m.Set("r.2", aaa.Policy{})
	_, path := testServer(t, Config{Policy: m})
	p := dialRaw(t, "unix", path)
	p.register("p")
	r1, r2 := dialRaw(t, "unix", path), dialRaw(t, "unix", path)
	r1.register("r.1")
	r2.register("r.2")
	for _, r := range []*raw{r1, r2} {
		r.write(clientHeader(1, opSubscribe|1<<6, "ok/#")...)
		r.expectAck(1, 0x01)
	}

	// Publish with no subscriber: 01. Publish refused: 79.
	p.write(clientHeader(2, opPublish|1<<6, "quiet/x\x00none")...)
	p.expectAck(2, 0x01)
	p.write(clientHeader(3, opPublish|1<<6, "no/x\x00refused")...)
	p.expectAck(3, 0x79)

	// Publish-for reaches the named receiver's subscription only.
	p.write(clientHeader(4, opPublishFor|1<<6, "ok/a\x00r.2\x00for two")...)
	p.expectAck(4, 0x01)
	expectFrame(t, r2, 0x01, false, "p\x00ok/a\x00for two")

	// r.1 excludes ok/b: a publication on ok/b reaches r.2 only; after unexclude, both.
	r1.write(clientHeader(5, opExclude|1<<6, "ok/b")...)
	r1.expectAck(5, 0x01)
	p.write(clientHeader(6, opPublish|3<<6, "ok/b\x00one")...) // realtime
	p.expectAck(6, 0x01)
	expectFrame(t, r2, 0x01, true, "p\x00ok/b\x00one")
	r1.write(clientHeader(7, opUnexclude|1<<6, "ok/b")...)
	r1.expectAck(7, 0x01)
	p.write(clientHeader(8, opPublish|1<<6, "ok/b\x00two")...)
	p.expectAck(8, 0x01)
	expectFrame(t, r1, 0x01, false, "p\x00ok/b\x00two") // r.1 got nothing in between
	expectFrame(t, r2, 0x01, false, "p\x00ok/b\x00two")

	// Broadcast: kind 13, sender \0 payload; a mask with no match is still 01; refused 79.
	p.write(clientHeader(9, opBroadcast|1<<6, "r.*\x00all")...)
	p.expectAck(9, 0x01)
	expectFrame(t, r1, 0x13, false, "p\x00all")
	expectFrame(t, r2, 0x13, false, "p\x00all")
	p.write(clientHeader(10, opBroadcast|1<<6, "r.nobody\x00x")...)
	p.expectAck(10, 0x01)
	p.write(clientHeader(11, opBroadcast|1<<6, "*\x00x")...)
	p.expectAck(11, 0x79)
}

func expectFrame(t *testing.T, r *raw, kind byte, realtime bool, body string) {
	t.Helper()
	hdr, got := r.next()
	want := [6]byte{kind}
	binary.LittleEndian.PutUint32(want[1:5], uint32(len(body)))
	if realtime {
		want[5] = 1
	}
	if hdr != want || string(got) != body {
		t.Fatalf("got % x %q, want % x %q", hdr, got, want, body)
	}
}

// TestAckNotDelivered (WIRE.md §5, §7): a one-to-one frame that finds its target's queue full
// is acked 77, the slow target is dropped (later sends: 71), and the sender goes on.
func TestAckNotDelivered(t *testing.T) {
	b := bus.New(bus.WithQueueSize(16), bus.WithLogger(slog.New(slog.DiscardHandler)))
	s := NewServer(b)
	t.Cleanup(func() {
		s.Close()
		b.Close()
	})
	path := filepath.Join(t.TempDir(), "bus.sock")
	cfg := Config{Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if _, err := s.Listen(path, cfg); err != nil {
		t.Fatal(err)
	}
	slow := dialRaw(t, "unix", path)
	slow.register("slow") // and never reads
	tx := dialRaw(t, "unix", path)
	tx.register("tx")
	const n = 64
	big := strings.Repeat("x", 64<<10) // the socket's buffers fill after a few
	var codes []byte
	for i := range n {
		// One at a time, so that tx's own queue of 16 never holds more than its one ack.
		tx.write(clientHeader(uint32(i), opMessage|1<<6, "slow\x00"+big)...)
		hdr, _ := tx.next()
		if hdr[0] != kindAck || binary.LittleEndian.Uint32(hdr[1:5]) != uint32(i) {
			t.Fatalf("ack %d: % x", i, hdr)
		}
		codes = append(codes, hdr[5])
	}
	// 01…01 77 71…71
	i := bytes.IndexByte(codes, 0x77)
	if i < 1 || bytes.Count(codes[:i], []byte{0x01}) != i || bytes.Count(codes[i+1:], []byte{0x71}) != n-i-1 {
		t.Fatalf("ack codes % x, want 01s, one 77, then 71s", codes)
	}
}
