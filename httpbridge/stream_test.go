package httpbridge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/rpc"
)

func TestStreamStateLiveResume(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	now := e.clock.Now().Unix()
	e.insert(u, map[string]any{"event": "temp", "data": 1, "collection_id": "r1", "timestamp": now - 10})
	t1 := e.insert(u, map[string]any{"event": "temp", "data": 2, "collection_id": "r1", "timestamp": now - 5})
	t2 := e.insert(u, map[string]any{"event": "temp", "data": 3, "collection_id": "r2", "timestamp": now - 20})
	n1 := e.insert(u, map[string]any{"event": "note", "data": "é: ok", "collection_id": "r1"})
	e.insert(u, map[string]any{"event": "temp", "data": 99, "collection_id": "r1", "timestamp": now + 50}) // not yet

	// State: the latest published event per (name, collection), oldest first; only the last
	// message carries an id, the tenant's sequence (4 publications so far).
	st := e.openStream("/events/acme", u.bearer(), nil)
	want := []record{t2, t1, n1}
	var last sseMsg
	for i, w := range want {
		m := st.next(t)
		r := m.record(t)
		if r.ID != w.ID || m.event != w.Event {
			t.Fatalf("state message %d: %s %s, want %s", i, m.event, m.data, w.ID)
		}
		if i == 0 && !m.retry {
			t.Error("no retry: field on the first message")
		}
		if (i == len(want)-1) != (m.id != "") {
			t.Fatalf("state message %d has id %q", i, m.id)
		}
		last = m
	}
	if last.id != "4" {
		t.Fatalf("last state id %q, want 4", last.id)
	}
	// Non-ASCII text and ':' inside strings are escaped on the wire.
	if want := `"data":"\u00e9\u003a ok"`; !contains(last.data, want) {
		t.Fatalf("state data %s lacks %s", last.data, want)
	}
	st.quiet(t, 50*time.Millisecond)

	// Live.
	l1 := e.insert(u, map[string]any{"event": "temp", "data": 5, "collection_id": "r1"})
	m := st.next(t)
	if m.record(t).ID != l1.ID || m.id != "5" {
		t.Fatalf("live message %+v", m)
	}
	st.close()

	// Resume from id 4 (header and query): exactly what followed, then live.
	for _, how := range []string{"header", "query"} {
		path, hdr := "/sse", map[string]string{"Last-Event-ID": "4"}
		if how == "query" {
			path, hdr = "/sse?last_event_id=4&token="+u.token, nil
		}
		auth := u.bearer()
		if how == "query" {
			auth = ""
		}
		rs := e.openStream(path, auth, hdr)
		if m := rs.next(t); m.id != "5" || m.record(t).ID != l1.ID {
			t.Fatalf("%s resume: %+v", how, m)
		}
		rs.quiet(t, 50*time.Millisecond)
		rs.close()
	}
	// Resume from 0 replays every publication in order.
	rs := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": "0"})
	for i := 1; i <= 5; i++ {
		if m := rs.next(t); m.id != strconv.Itoa(i) {
			t.Fatalf("replay %d: id %q", i, m.id)
		}
	}
	rs.close()
	e.expect(e.do("GET", "/sse?last_event_id=x", u.bearer(), nil), 400)

	// ?format=data sends the data only.
	ds := e.openStream("/sse?format=data", u.bearer(), map[string]string{"Last-Event-ID": "4"})
	if m := ds.next(t); m.data != "5" || m.event != "temp" || m.id != "5" {
		t.Fatalf("format=data: %+v", m)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestStreamResumeUnderLoad: a client that disconnects while events are inserted and resumes
// from its last id gets every event exactly once.
func TestStreamResumeUnderLoad(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": "0"})
	const n = 60
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			e.insert(u, map[string]any{"event": "tick", "data": i})
		}
	}()
	seen := map[string]int{}
	lastID := ""
	for len(seen) < n/3 {
		m := st.next(t)
		seen[m.record(t).ID]++
		lastID = m.id
	}
	st.close()
	<-done
	rs := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": lastID})
	for len(seen) < n {
		m := rs.next(t)
		seen[m.record(t).ID]++
	}
	rs.quiet(t, 50*time.Millisecond)
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %s delivered %d times", id, c)
		}
	}
}

func TestScheduling(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), nil)
	now := e.clock.Now().Unix()
	at10 := e.insert(u, map[string]any{"event": "alarm", "data": 10, "timestamp": now + 10})
	at20 := e.insert(u, map[string]any{"event": "alarm", "data": 20, "timestamp": now + 20})
	at5 := e.insert(u, map[string]any{"event": "alarm", "data": 5, "timestamp": now + 5}) // earlier: resets the timer

	e.clock.Advance(4 * time.Second)
	st.quiet(t, 50*time.Millisecond)
	e.clock.Advance(time.Second)
	if m := st.next(t); m.record(t).ID != at5.ID || !m.record(t).Published {
		t.Fatalf("at +5: %+v", m)
	}
	// Cancel before its time: never published.
	e.expect(e.do("GET", "/cancel/"+at10.ID, u.bearer(), nil), 200)
	e.clock.Advance(10 * time.Second)
	st.quiet(t, 50*time.Millisecond)
	// The state does not show future events before their time (a broker bug).
	var col struct{ Events []record }
	e.expect(e.do("GET", "/collections/"+at20.CollectionID, u.bearer(), nil), 200).json(t, &col)
	if len(col.Events) != 0 {
		t.Fatalf("future event listed before its time: %+v", col.Events)
	}
	e.clock.Advance(5 * time.Second)
	if m := st.next(t); m.record(t).ID != at20.ID {
		t.Fatalf("at +20: %+v", m)
	}
	e.clock.Advance(time.Minute)
	st.quiet(t, 50*time.Millisecond)

	// Restart with due events: published at start, once.
	due := e.insert(u, map[string]any{"event": "wake", "data": 1, "timestamp": e.clock.Now().Unix() + 30})
	e.stop()
	e.clock.Advance(time.Hour)
	e.start()
	u.token = e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}), 200).field(t, "jwt")
	rs := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": "0"})
	counts := map[string]int{}
	for i := 0; i < 3; i++ { // at5, at20, due: every publication of the tenant
		counts[rs.next(t).record(t).ID]++
	}
	rs.quiet(t, 100*time.Millisecond)
	if counts[due.ID] != 1 || counts[at5.ID] != 1 || counts[at20.ID] != 1 || counts[at10.ID] != 0 {
		t.Fatalf("publications after restart: %v", counts)
	}
	e.restart()
	rs2 := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": "3"})
	rs2.quiet(t, 100*time.Millisecond)
}

func TestBusLink(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	bob := e.signup("bob", "acme")
	zed := e.signup("zed", "other/tenant")

	watcher, err := e.bus.RegisterClient("watcher")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if err := watcher.Subscribe(bus.QoSProcessed, httpbridge.TopicPrefix+"#"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Each publication reaches the bus, on the tenant's and event's topic.
	rec := e.insert(ann, map[string]any{"event": "door/open", "data": map[string]int{"n": 1}})
	f, err := watcher.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Topic != "rtbus/http/acme/events/door%2Fopen" || f.Topic != httpbridge.EventTopic("acme", "door/open") {
		t.Fatalf("topic %q", f.Topic)
	}
	var got record
	json.Unmarshal(f.Payload, &got)
	if got.ID != rec.ID || got.Seq != rec.Seq {
		t.Fatalf("bus payload %s", f.Payload)
	}

	// Pushes reach the streams of the tenant, or of one user, and nobody else.
	sAnn := e.openStream("/sse", ann.bearer(), nil)
	sBob := e.openStream("/sse", bob.bearer(), nil)
	// A tenant with a "/" in its id, escaped in the path.
	sZed := e.openStream("/events/other%2Ftenant", zed.bearer(), nil)
	sAnn.next(t) // the state: door/open
	sBob.next(t)
	plugin, _ := e.bus.RegisterClient("plugin")
	defer plugin.Close()
	plugin.Publish(bus.QoSProcessed, "rtbus/http/acme/push", []byte(`{"event":"hello","data":{"to":"all"}}`))
	plugin.Publish(bus.QoSProcessed, "rtbus/http/acme/push/"+bob.id, []byte(`{"event":"hello","data":{"to":"bob"}}`))
	plugin.Publish(bus.QoSProcessed, "rtbus/http/acme/push", []byte(`not json`))
	if m := sAnn.next(t); m.event != "hello" || m.id != "" || !contains(m.data, `"to":"all"`) {
		t.Fatalf("ann got %+v", m)
	}
	sAnn.quiet(t, 50*time.Millisecond)
	if m := sBob.next(t); !contains(m.data, `all`) {
		t.Fatalf("bob got %+v", m)
	}
	if m := sBob.next(t); !contains(m.data, `bob`) {
		t.Fatalf("bob got %+v", m)
	}
	sZed.quiet(t, 50*time.Millisecond)

	// A plugin inserts an event by RPC, and is answered once it is durable.
	caller := rpc.New(plugin, rpc.Options{})
	defer caller.Close()
	call := func(params map[string]any) (map[string]any, error) {
		var reply struct {
			Event map[string]any `msgpack:"event"`
		}
		p, _ := rpc.Marshal(params)
		res, err := caller.Call(ctx, httpbridge.BusClientName, httpbridge.InsertMethod, p)
		if err != nil {
			return nil, err
		}
		if err := rpc.Unmarshal(res, &reply); err != nil {
			t.Fatalf("insert reply % x: %v", res, err)
		}
		return reply.Event, nil
	}
	ev, err := call(map[string]any{"tenant_id": "other/tenant", "event": "from-bus", "data": []int{1, 2}, "timestamp": 5})
	if err != nil {
		t.Fatal(err)
	}
	if ev["tenant_id"] != "other/tenant" || ev["published"] != true || fmt.Sprint(ev["timestamp"]) != "5" || ev["user_id"] != "" {
		t.Fatalf("rpc insert reply %v", ev)
	}
	if d, _ := ev["data"].([]any); len(d) != 2 || fmt.Sprint(d[0]) != "1" {
		t.Fatalf("rpc insert data %#v", ev["data"])
	}
	if m := sZed.next(t); m.event != "from-bus" || !contains(m.data, `"data":[1,2]`) {
		t.Fatalf("zed got %+v", m)
	}
	ev, err = call(map[string]any{"tenant_id": "acme", "event": "by-ann", "data": map[string]any{"x": "y"}, "user_id": ann.id})
	if err != nil || ev["user_id"] != ann.id {
		t.Fatalf("rpc insert on behalf of ann: %v %v", ev, err)
	}
	for _, bad := range []map[string]any{
		{"tenant_id": "acme", "event": "x", "data": 1, "user_id": zed.id}, // another tenant's user
		{"tenant_id": "acme", "data": 1},                                  // no event name
		{"event": "x", "data": 1},                                         // no tenant
		{"tenant_id": "acme", "event": "x"},                               // no data
		{"tenant_id": "acme", "event": "x", "data": 1, "timestamp": "now"},
		{"tenant_id": 7, "event": "x", "data": 1},
	} {
		_, err := call(bad)
		var re *rpc.Error
		if !errors.As(err, &re) || re.Code != rpc.CodeInvalidParams || len(re.Data) == 0 {
			t.Fatalf("rpc insert %v: %v, want invalid params naming the problem", bad, err)
		}
	}
	if _, err := caller.Call(ctx, httpbridge.BusClientName, httpbridge.InsertMethod, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}); !errors.Is(err, rpc.Errorf(rpc.CodeInvalidParams, "")) {
		t.Fatalf("malformed params: %v", err)
	}
}

// TestStreamInjection: text that looks like SSE fields inside event data or names cannot
// forge a field: the message keeps its own id, and the data decodes back to the text.
func TestStreamInjection(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), nil)
	text := "x\nid:99\nretry:1\r\nevent:evil\n\ndata:ü"
	e.insert(u, map[string]any{"event": "ev: id:7", "data": text})
	m := st.next(t)
	if m.id != "1" || m.event != "ev\\u003a id\\u003a7" && m.event != "ev: id:7" || m.retry != true {
		t.Fatalf("message %+v", m)
	}
	for _, c := range m.data {
		if c > 127 {
			t.Fatalf("non-ASCII on the wire: %q", m.data)
		}
	}
	if r := m.record(t); string(r.Data) == "" {
		t.Fatal("no data")
	} else {
		var got string
		json.Unmarshal(r.Data, &got)
		if got != text {
			t.Fatalf("data decoded to %q", got)
		}
	}
	st.quiet(t, 50*time.Millisecond)
}

// TestStreamEndsWhenTokenExpires: a stream opened with a JWT ends once the server's clock
// passes the token's expiry (checked at keep-alive ticks); one opened with Basic credentials,
// which do not expire, goes on. The client reconnects with a fresh token and resumes.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.KeepAlive = 40 * time.Millisecond })
	u := e.signup("ada", "acme")
	jwtStream := e.openStream("/events/acme", u.bearer(), nil)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:pw-ada"))
	basicStream := e.openStream("/events/acme", basic, nil)
	e.clock.Advance(30 * time.Minute) // the token (one hour) is still good
	r := e.insert(u, map[string]any{"event": "e1", "collection_id": "c", "data": 1})
	for _, st := range []*stream{jwtStream, basicStream} {
		if got := nextRecord(t, st); got.ID != r.ID {
			t.Fatalf("got %+v, want %s", got, r.ID)
		}
	}
	e.clock.Advance(31 * time.Minute)
	jwtStream.ended(t)
	var out struct{ Event record }
	e.expect(e.do("POST", "/insert", basic, map[string]any{"event": "e2", "collection_id": "c", "data": 2}), 200).json(t, &out)
	if got := nextRecord(t, basicStream); got.ID != out.Event.ID {
		t.Fatalf("basic stream got %+v, want %s", got, out.Event.ID)
	}
}

// nextRecord returns the record of the next message that is not a keep-alive.
func nextRecord(t *testing.T, st *stream) record {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if m := st.next(t); m.event != "keepalive" {
			return m.record(t)
		}
	}
	t.Fatal("only keep-alives for 10 s")
	return record{}
}
