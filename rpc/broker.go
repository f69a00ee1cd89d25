package rpc

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/bus"
)

// Identity that .broker reports to the info method.
const (
	BrokerAuthor  = "rtbus"
	BrokerVersion = "0.1.0"
)

// ServeBroker makes .broker of b answer the core methods of WIRE.md §9: test, info, stats,
// client.list (with an optional regex filter) and benchmark.test, and rtbus's own
// MethodClientKill; other methods get CodeMethodNotFound. A caller whose access rules do
// not admit a method (aaa.Rules.AllowBroker) gets CodeAccessDenied. It returns the RPC client serving them: close it to stop (which
// unregisters .broker). Without ServeBroker, a call to .broker fails at once with CodeNotRegistered
// (in-process, with a text saying so) and the bus logs a warning once. It
// fails if b is closed or .broker is already served.
//
// Replies are MessagePack maps with the field order of the reference broker and integers in
// their shortest encoding, as the reference broker's encoder writes them.
func ServeBroker(b *bus.Broker) (*Client, error) {
	// The core methods never wait (the in-process reply is queued with blocking senders at
	// worst), so requests are answered in the goroutine that routes them: a socket client's
	// call costs the broker one goroutine, which reads the request and queues the reply and
	// the ack, and no hand-off. Requests that come before the handlers below are in place
	// are dropped, as .broker dropped everything before it was served.
	var served atomic.Pointer[Client]
	self, err := b.ServeSelfFunc(func(f bus.Frame) {
		if c := served.Load(); c != nil {
			c.dispatch(&f)
		}
	})
	if err != nil {
		return nil, err
	}
	c := newClient(self, Options{})
	c.inline = true
	defer func() {
		c.start() // publications and broadcasts to .broker are still queued
		served.Store(c)
	}()
	// Every method is subject to the caller's access rules ("broker" in a policy file).
	handle := func(method string, h HandlerFunc) {
		c.Handle(method, func(ctx context.Context, r Request) ([]byte, error) {
			// A sender no longer registered (just disconnected, or dropped by a policy
			// reload) has no rules to allow anything.
			if rules, ok := b.ClientRules(r.Sender); !ok || !rules.AllowBroker(r.Method) {
				return nil, &Error{Code: CodeAccessDenied, Data: []byte(r.Method + ": not allowed by the access policy")}
			}
			return h(ctx, r)
		})
	}
	handle("test", func(_ context.Context, r Request) ([]byte, error) {
		if len(r.Params) > 0 {
			return nil, &Error{Code: CodeInvalidParams}
		}
		return []byte{0x81, 0xa2, 'o', 'k', 0xc3}, nil
	})
	handle("info", func(_ context.Context, r Request) ([]byte, error) {
		if len(r.Params) > 0 {
			return nil, &Error{Code: CodeInvalidParams}
		}
		return encodeInfo(), nil
	})
	handle("stats", func(_ context.Context, r Request) ([]byte, error) {
		if len(r.Params) > 0 {
			return nil, &Error{Code: CodeInvalidParams}
		}
		return encodeStats(b.Stats()), nil
	})
	handle("client.list", func(_ context.Context, r Request) ([]byte, error) {
		filter, err := listFilter(r.Params)
		if err != nil {
			return nil, err
		}
		return encodeClients(b.Clients(), filter), nil
	})
	handle("benchmark.test", func(_ context.Context, r Request) ([]byte, error) {
		return r.Params, nil
	})
	handle(MethodClientKill, func(_ context.Context, r Request) ([]byte, error) {
		name, err := killTarget(r.Params)
		if err != nil {
			return nil, err
		}
		if err := b.ForceDisconnect(name); err != nil {
			return nil, &Error{Code: CodeNotRegistered, Data: []byte("no client named " + strconv.Quote(name))}
		}
		return []byte{0x81, 0xa2, 'o', 'k', 0xc3}, nil
	})
	return c, nil
}

// MethodClientKill is the .broker method that disconnects a client, and its secondaries, at
// once: params {"name": NAME}, result {"ok": true}, or CodeNotRegistered when no client of
// that name is registered. It is an rtbus extension, for operators (rtbus client kill); an
// access policy keeps it from plugins with a "broker" list that leaves it out.
const MethodClientKill = "rtbus.client.kill"

// killTarget reads rtbus.client.kill's params: {"name": NAME}.
func killTarget(p []byte) (string, error) {
	var params map[string]any
	if err := Unmarshal(p, &params); err != nil {
		return "", err
	}
	name, ok := params["name"].(string)
	if len(params) != 1 || !ok || name == "" {
		return "", Errorf(CodeInvalidParams, "params: want {\"name\": client name}")
	}
	if name == bus.BrokerName {
		return "", Errorf(CodeInvalidParams, "%s cannot be disconnected", bus.BrokerName)
	}
	return name, nil
}

// listFilter reads client.list's params: none, or {"filter": regex}.
func listFilter(p []byte) (*regexp.Regexp, error) {
	if len(p) == 0 {
		return nil, nil
	}
	var params map[string]any
	if err := Unmarshal(p, &params); err != nil {
		return nil, err
	}
	var expr string
	for k, v := range params {
		s, ok := v.(string)
		if k != "filter" || !ok {
			return nil, Errorf(CodeInvalidParams, "params: want {\"filter\": regex}")
		}
		expr = s
	}
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, Errorf(CodeParse, "filter: %v", err)
	}
	return re, nil
}

func newEncoder(buf *bytes.Buffer) *msgpack.Encoder {
	e := msgpack.NewEncoder(buf)
	e.UseCompactInts(true)
	return e
}

// Writes to a bytes.Buffer do not fail, so the encoders' errors are not checked below.

func encodeInfo() []byte {
	var buf bytes.Buffer
	e := newEncoder(&buf)
	e.EncodeMapLen(2)
	e.EncodeString("author")
	e.EncodeString(BrokerAuthor)
	e.EncodeString("version")
	e.EncodeString(BrokerVersion)
	return buf.Bytes()
}

func encodeStats(s bus.Stats) []byte {
	var buf bytes.Buffer
	e := newEncoder(&buf)
	e.EncodeMapLen(5)
	for _, kv := range []struct {
		k string
		v uint64
	}{
		{"uptime", uint64(s.Uptime.Seconds())},
		{"r_frames", s.RFrames},
		{"r_bytes", s.RBytes},
		{"w_frames", s.WFrames},
		{"w_bytes", s.WBytes},
	} {
		e.EncodeString(kv.k)
		e.EncodeUint(kv.v)
	}
	return buf.Bytes()
}

func encodeClients(list []bus.ClientInfo, filter *regexp.Regexp) []byte {
	if filter != nil {
		kept := list[:0]
		for _, ci := range list {
			if filter.MatchString(ci.Name) {
				kept = append(kept, ci)
			}
		}
		list = kept
	}
	var buf bytes.Buffer
	e := newEncoder(&buf)
	e.EncodeMapLen(1)
	e.EncodeString("clients")
	e.EncodeArrayLen(len(list))
	optional := func(s string) {
		if s == "" {
			e.EncodeNil()
		} else {
			e.EncodeString(s)
		}
	}
	for _, ci := range list {
		e.EncodeMapLen(10)
		e.EncodeString("name")
		e.EncodeString(ci.Name)
		e.EncodeString("kind")
		e.EncodeString(ci.Kind)
		e.EncodeString("source")
		optional(ci.Source)
		e.EncodeString("port")
		optional(ci.Port)
		for _, kv := range []struct {
			k string
			v uint64
		}{
			{"r_frames", ci.RFrames}, {"r_bytes", ci.RBytes},
			{"w_frames", ci.WFrames}, {"w_bytes", ci.WBytes},
			{"queue", uint64(ci.Queue)}, {"instances", uint64(ci.Instances)},
		} {
			e.EncodeString(kv.k)
			e.EncodeUint(kv.v)
		}
	}
	return buf.Bytes()
}
