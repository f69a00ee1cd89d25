package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
)

func serveBroker(t *testing.T, e *env) {
	t.Helper()
	s, err := rpc.ServeBroker(e.b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
}

// mp builds expected MessagePack by hand: strings get a fixstr header, the rest is literal.
func mp(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, 0xa0|byte(len(v)))
			out = append(out, v...)
		case byte:
			out = append(out, v)
		case int:
			out = append(out, byte(v))
		case []byte:
			out = append(out, v...)
		}
	}
	return out
}

func TestBrokerMethodsBytes(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		serveBroker(t, e)
		c := e.rpc(t, "caller")
		ctx := ctxT(t)
		call := func(method string, params []byte) []byte {
			t.Helper()
			res, err := c.Call(ctx, bus.BrokerName, method, params)
			if err != nil {
				t.Fatalf("%s: %v", method, err)
			}
			return res
		}
		wantCode := func(method string, params []byte, code int16) {
			t.Helper()
			_, err := c.Call(ctx, bus.BrokerName, method, params)
			var re *rpc.Error
			if !errors.As(err, &re) || re.Code != code {
				t.Errorf("%s(% x): %v, want code %d", method, params, err, code)
			}
		}

		if got := call("test", nil); !bytes.Equal(got, []byte{0x81, 0xa2, 0x6f, 0x6b, 0xc3}) {
			t.Errorf("test = % x", got)
		}
		wantCode("test", []byte{0x80}, rpc.CodeInvalidParams)

		want := mp(0x82, "author", "rtbus", "version", rpc.BrokerVersion)
		if got := call("info", nil); !bytes.Equal(got, want) {
			t.Errorf("info = % x, want % x", got, want)
		}
		wantCode("info", []byte{0xc0}, rpc.CodeInvalidParams)

		// stats: five keys in this order, each an unsigned integer.
		st := call("stats", nil)
		d := msgpack.NewDecoder(bytes.NewReader(st))
		if n, err := d.DecodeMapLen(); err != nil || n != 5 {
			t.Fatalf("stats % x: map of %d, %v", st, n, err)
		}
		for _, k := range []string{"uptime", "r_frames", "r_bytes", "w_frames", "w_bytes"} {
			key, err := d.DecodeString()
			if err != nil || key != k {
				t.Fatalf("stats key %q, want %q (% x)", key, k, st)
			}
			v, err := d.DecodeUint64()
			if err != nil || (k != "uptime" && v == 0) {
				t.Errorf("stats %s = %d, %v", k, v, err)
			}
		}
		wantCode("stats", []byte{1}, rpc.CodeInvalidParams)

		// client.list: an idle in-process client has a fully predictable entry.
		idle, _ := e.b.RegisterClient("idle")
		defer idle.Close()
		sec, _ := e.b.RegisterClient("idle%%x")
		defer sec.Close()
		entry := mp(0x8a, "name", "idle", "kind", "internal", "source", 0xc0, "port", 0xc0,
			"r_frames", 0, "r_bytes", 0, "w_frames", 0, "w_bytes", 0, "queue", 0, "instances", 2)
		filter, _ := msgpack.Marshal(map[string]string{"filter": "^idle"})
		want = append(mp(0x81, "clients", 0x91), entry...)
		if got := call("client.list", filter); !bytes.Equal(got, want) {
			t.Errorf("client.list(^idle) =\n% x, want\n% x", got, want)
		}

		// Unfiltered: primaries only, sorted, .broker included.
		var all struct {
			Clients []struct {
				Name   string  `msgpack:"name"`
				Kind   string  `msgpack:"kind"`
				Source *string `msgpack:"source"`
				Port   *string `msgpack:"port"`
			} `msgpack:"clients"`
		}
		if err := msgpack.Unmarshal(call("client.list", nil), &all); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ci := range all.Clients {
			names = append(names, ci.Name)
			if ci.Name == "caller" {
				wantKind := "internal"
				if e.addr != "" {
					wantKind = "local_ipc"
					if ci.Port == nil || *ci.Port != e.addr || ci.Source != nil {
						t.Errorf("socket client port %v source %v", ci.Port, ci.Source)
					}
				}
				if ci.Kind != wantKind {
					t.Errorf("caller kind %q, want %q", ci.Kind, wantKind)
				}
			}
		}
		if got := strings.Join(names, " "); got != ".broker caller idle" {
			t.Errorf("client.list names %q", got)
		}

		bad, _ := msgpack.Marshal(map[string]string{"filter": "("})
		wantCode("client.list", bad, rpc.CodeParse)
		wrong, _ := msgpack.Marshal(map[string]int{"filter": 1})
		wantCode("client.list", wrong, rpc.CodeInvalidParams)
		other, _ := msgpack.Marshal(map[string]string{"x": "y"})
		wantCode("client.list", other, rpc.CodeInvalidParams)
		wantCode("client.list", []byte{0xc1}, rpc.CodeInvalidParams)
		// An extension whose data a map decoder would read as an array of two billion
		// elements: refused, and the broker goes on.
		extArray := []byte("\xd8\xc4\x89\xa6f\xc2\xc2\xc2\xc2\xc2\xddter\xe3\x00.*")
		wantCode("client.list", extArray, rpc.CodeInvalidParams)
		wantCode(rpc.MethodClientKill, extArray, rpc.CodeInvalidParams)

		payload := bytes.Repeat([]byte{0xab}, 100)
		if got := call("benchmark.test", payload); !bytes.Equal(got, payload) {
			t.Errorf("benchmark.test did not echo")
		}
		if got := call("benchmark.test", nil); len(got) != 0 {
			t.Errorf("benchmark.test(nothing) = % x", got)
		}
		wantCode("no.such.method", nil, rpc.CodeMethodNotFound)
	})
}

func TestServeBrokerTwice(t *testing.T) {
	e := inProcess(t)
	serveBroker(t, e)
	if _, err := rpc.ServeBroker(e.b); !errors.Is(err, bus.ErrBusy) {
		t.Errorf("second ServeBroker: %v", err)
	}
}

// A peer cannot make .broker allocate what a few bytes declare.
func TestBrokerRefusesHugeDeclaredLengths(t *testing.T) {
	e := inProcess(t)
	serveBroker(t, e)
	c := e.rpc(t, "caller")
	for _, p := range [][]byte{
		append(mp(0x81, "filter"), 0xdd, 0xdd, 0xdd, 0xdd, 0xdd),
		{0xde, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd},
	} {
		_, err := c.Call(ctxT(t), bus.BrokerName, "client.list", p)
		if !errors.Is(err, &rpc.Error{Code: rpc.CodeInvalidParams}) {
			t.Errorf("% x: %v", p, err)
		}
	}
}

// A host that forgot ServeBroker: a call to .broker fails at once with the not-registered
// code, in-process with a text that says why, rather than waiting for the caller's timeout.
func TestBrokerNotServed(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		c := e.rpc(t, "caller")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		_, err := c.Call(ctx, bus.BrokerName, "test", nil)
		if !errors.Is(err, bus.ErrNotRegistered) || !errors.Is(err, &rpc.Error{Code: rpc.CodeNotRegistered}) {
			t.Fatalf("call to .broker not served: %v", err)
		}
		if e.addr == "" && !strings.Contains(err.Error(), "rpc.ServeBroker") {
			t.Errorf("in-process error does not say why: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the refusal took %v", d)
		}
	})
}
