package rpc

import (
	"context"
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/mpcheck"
)

// Call ids run 1…2^32-1 and wrap to 1, skipping 0 (which means "no reply") and any id still
// waiting for its reply.
func TestCallIDWraps(t *testing.T) {
	b := bus.New()
	defer b.Close()
	raw, _ := b.RegisterClient("raw")
	conn, _ := b.RegisterClient("caller")
	c := New(conn, Options{})
	defer c.Close()

	var seen []uint32
	served := make(chan struct{})
	go func() {
		defer close(served)
		for f := range raw.Frames() {
			m, ok := parse(f.Payload)
			if !ok {
				continue
			}
			seen = append(seen, m.id)
			raw.Send(bus.QoSProcessed, f.Sender, appendReply(nil, m.id, nil))
		}
	}()
	c.mu.Lock()
	c.next = math.MaxUint32 - 1
	c.pending[1] = &call{ch: make(chan result, 1)} // id 1 is taken by a call still waiting
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 4 {
		if _, err := c.Call(ctx, "raw", "m", nil); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	<-served
	want := []uint32{math.MaxUint32 - 1, math.MaxUint32, 2, 3}
	if len(seen) != len(want) {
		t.Fatalf("ids %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("ids %v, want %v", seen, want)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	m, ok := parse(appendRequest(nil, 7, "do.it", []byte{1, 2}))
	if !ok || m.kind != kindRequest || m.id != 7 || string(m.method) != "do.it" || string(m.data) != "\x01\x02" {
		t.Fatalf("request %+v %v", m, ok)
	}
	m, ok = parse(appendError(nil, 9, -32602, []byte("x")))
	if !ok || m.kind != kindError || m.id != 9 || m.code != -32602 || string(m.data) != "x" {
		t.Fatalf("error %+v %v", m, ok)
	}
	e := appendError(nil, 1, -32113, nil)
	if binary.LittleEndian.Uint16(e[5:]) != 0x828f {
		t.Fatalf("-32113 encodes as % x", e[5:])
	}
}

type extTree struct {
	Kids []extTree
	Next *extTree
}

type extTreeOfMaps struct {
	Kids []extTreeOfMaps
	Tags map[string]string
}

func TestExtScope(t *testing.T) {
	for _, c := range []struct {
		v    any
		want mpcheck.Scope
	}{
		{new(string), mpcheck.Opaque},
		{new(any), mpcheck.Opaque},
		{new([]any), mpcheck.Opaque},
		{new(time.Time), mpcheck.Opaque},
		{new(msgpack.RawMessage), mpcheck.Opaque},
		{new(extTree), mpcheck.Opaque},
		{new(map[string]any), mpcheck.Top},
		{new(*map[string]string), mpcheck.Top},
		{new(map[string]extTree), mpcheck.Top},
		{new(map[string]map[string]any), mpcheck.Anywhere},
		{new([]map[string]any), mpcheck.Anywhere},
		{new(extTreeOfMaps), mpcheck.Anywhere},
		{nil, mpcheck.Opaque},
	} {
		if got := extScope(reflect.TypeOf(c.v)); got != c.want {
			t.Errorf("%T: scope %d, want %d", c.v, got, c.want)
		}
	}
}
