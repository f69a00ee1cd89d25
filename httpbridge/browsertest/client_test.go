package browsertest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtbus/rtbus/httpbridge"
)

// transports are those the client offers, each tested end to end.
var transports = []string{"sse", "ws", "poll"}

// harness loads the client module into the page (the demo page's own copy) and keeps, per
// named subscription, every message it delivered, its state and its errors.
const harness = `(async () => {
  const rt = await import(MODULE);
  window.T = {
    rt, subs: {}, logs: {}, states: {}, errors: {}, statuses: {},
    open(name, token, opts) {
      const c = new rt.Client({ token });
      const s = c.subscribe({ backoff: { initial: 50, max: 400 }, ...opts });
      T.subs[name] = s; T.logs[name] = []; T.statuses[name] = [];
      s.on("*", (m) => T.logs[name].push(m));
      s.onState((records) => { T.states[name] = records; });
      s.onStatus((st) => T.statuses[name].push(st.status + ":" + st.transport));
      s.onError((e) => { T.errors[name] = e.code + ": " + e.message; });
      return true;
    },
    dump() {
      const o = {};
      for (const k in T.subs) {
        const s = T.subs[k];
        o[k] = { status: s.status, transport: s.transport, lastEventId: s.lastEventId, stats: s.stats,
          error: T.errors[k], log: T.logs[k].map((m) => (m.id ?? "-") + " " + m.event), statuses: T.statuses[k].slice(-12) };
      }
      return o;
    },
  };
  return true;
})()`

func loadHarness(t *testing.T, e *env) *tab {
	return loadHarnessAt(t, e.url+"/demo/", "/client/rtbus.js")
}

// loadHarnessAt loads the page at pageURL, then the client from moduleURL.
func loadHarnessAt(t *testing.T, pageURL, moduleURL string) *tab {
	tb := newTab(t)
	tb.do(chromedp.Navigate(pageURL))
	tb.eval(strings.Replace(harness, "MODULE", js(moduleURL), 1), nil)
	return tb
}

func (tb *tab) open(name string, u user, opts map[string]any) {
	tb.t.Helper()
	tb.eval(fmt.Sprintf("T.open(%s, %s, %s)", js(name), js(u.token), js(opts)), nil)
}

// msg is a message as the client delivers it.
type msg struct {
	ID    string          `json:"id"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func (tb *tab) log(name string) []msg {
	tb.t.Helper()
	var out []msg
	tb.eval("T.logs["+js(name)+"]", &out)
	return out
}

// tricky is data that an SSE encoder or a client parser could get wrong.
var tricky = map[string]any{
	"text":   "héllo wörld ✓ 日本語 🎉 Ω",
	"colons": "a:b id:7 event:x data:y retry:1",
	"lines":  "one\nid: 2\n\nevent:evil\r\ndata:{}",
	"url":    "http://127.0.0.1:1/a?b=c#d",
	"nested": []any{"id:", map[string]any{"k:ü": "v:é"}},
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// checkLog checks that a subscription delivered exactly want, in order: the records the
// server stored, whole, each once.
func checkLog(t *testing.T, name string, got []msg, want []record, firstIDs []string) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, m := range got {
			names = append(names, m.ID+" "+m.Event)
		}
		t.Fatalf("%s: %d messages, want %d: %q", name, len(got), len(want), names)
	}
	for i, m := range got {
		var rec record
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			t.Fatalf("%s: message %d data %s: %v", name, i, m.Data, err)
		}
		w := want[i]
		wantID := fmt.Sprint(w.Seq)
		if i < len(firstIDs) {
			wantID = firstIDs[i]
		}
		if m.Event != w.Event || rec.ID != w.ID || rec.Event != w.Event || rec.CollectionID != w.CollectionID || m.ID != wantID {
			t.Errorf("%s: message %d is %s %s (record %s), want %s %s (record %s)", name, i, m.ID, m.Event, rec.ID, wantID, w.Event, w.ID)
		}
		if !sameJSON(rec.Data, w.Data) {
			t.Errorf("%s: message %d data %s, want %s", name, i, rec.Data, w.Data)
		}
	}
}

// Every transport, in one page at once: the state on connect, live events, a network cut
// with events published meanwhile, a server restart likewise; each subscription delivers
// every record once, in order, the same message objects on every transport.
func TestTransports(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signup("alice", "tenant-ü:1")
	want := []record{
		e.insert(alice, "chat:été", "room:1", tricky),
		e.insert(alice, "profile", "people", map[string]any{"name": "Zoë", "bio": "id:1\n"}),
	}
	stateID := fmt.Sprint(want[1].Seq) // only the last state message carries the id
	first := []string{"", stateID}

	tb := loadHarness(t, e)
	for _, tr := range transports {
		tb.open(tr, alice, map[string]any{"tenant": alice.tenant, "transport": tr})
	}
	all := func(cond string) string {
		var parts []string
		for _, tr := range transports {
			parts = append(parts, strings.ReplaceAll(cond, "$", js(tr)))
		}
		return strings.Join(parts, " && ")
	}
	received := func(n int) {
		t.Helper()
		tb.waitFor(all(fmt.Sprintf(`T.subs[$].status === "open" && T.logs[$].length >= %d`, n)), "T.dump()")
	}
	received(2)
	for _, tr := range transports {
		var state []record
		tb.eval("T.states["+js(tr)+"]", &state)
		if len(state) != 2 || state[0].ID != want[0].ID || state[1].ID != want[1].ID || !sameJSON(state[0].Data, want[0].Data) {
			t.Errorf("%s: state %+v, want the two records", tr, state)
		}
	}

	want = append(want, e.insert(alice, "chat:été", "room:1", map[string]any{"text": "live ✓"}))
	received(3)

	// A network cut: every connection drops, and events are published while the clients
	// cannot reach the server; they resume from their last id.
	e.proxy.setDown(true)
	tb.waitFor(all(`T.subs[$].status !== "open"`), "T.dump()")
	for i := range 5 {
		want = append(want, e.insert(alice, "chat:été", "room:1", map[string]any{"n": i, "text": fmt.Sprintf("while cut %d: id:%d", i, i)}))
	}
	e.proxy.setDown(false)
	received(len(want))

	// A restart: the server ends every stream itself, and a new one on the same store
	// publishes before the clients reach it.
	e.restart(func() {
		for i := range 3 {
			want = append(want, e.insert(alice, "profile", "people", map[string]any{"n": i, "name": "Zoë " + fmt.Sprint(i)}))
		}
	})
	received(len(want))
	want = append(want, e.insert(alice, "chat:été", "room:1", map[string]any{"text": "after the restart"}))
	received(len(want))

	logs := map[string][]msg{}
	for _, tr := range transports {
		logs[tr] = tb.log(tr)
		checkLog(t, tr, logs[tr], want, first)
		var v struct {
			Transport string
			Stats     struct{ Connects, Duplicates int }
		}
		tb.eval("(s => ({transport: s.transport, stats: s.stats}))(T.subs["+js(tr)+"])", &v)
		// At least three connections: the first, after the cut, after the restart (a loaded
		// machine may see a slow-client disconnect too).
		if v.Transport != tr || v.Stats.Connects < 3 || v.Stats.Duplicates != 0 {
			t.Errorf("%s: transport %s, %d connections (want 3: start, cut, restart), %d duplicates dropped", tr, v.Transport, v.Stats.Connects, v.Stats.Duplicates)
		}
	}
	var same bool
	tb.eval(all(`JSON.stringify(T.logs[$]) === JSON.stringify(T.logs[`+js(transports[0])+`])`), &same)
	if !same {
		t.Errorf("the transports delivered different message objects:\n%+v", logs)
	}
	var state []record
	tb.eval("T.states["+js(transports[0])+"]", &state)
	if len(state) != 2 || state[0].ID != want[len(want)-2].ID || state[1].ID != want[len(want)-1].ID {
		t.Errorf("final state %+v, want the latest of each (event, collection)", state)
	}
}

// A page of another origin imports the client from the rtbus server and uses it there, as
// the README shows: CORS lets the module, the requests and every transport through.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kim := e.signup("kim", "tenant-cors")
	want := []record{e.insert(kim, "x", "c", map[string]any{"à": "b:c"})}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>another origin</title>")
	}))
	defer page.Close()
	tb := loadHarnessAt(t, page.URL+"/", e.url+"/client/rtbus.js")
	var base string
	tb.eval(`new T.rt.Client().url`, &base)
	if base != e.url+"/" {
		t.Errorf("the client's default server is %s, want %s/, the server that served it", base, e.url)
	}
	for _, tr := range transports {
		tb.open(tr, kim, map[string]any{"transport": tr})
		tb.waitFor(`T.subs[`+js(tr)+`].status === "open" && T.logs[`+js(tr)+`].length >= 1`, "T.dump()")
	}
	var ins record
	tb.eval(`new T.rt.Client({token: `+js(kim.token)+`}).insert({event: "x", collection_id: "c", data: "from another origin"})`, &ins)
	want = append(want, ins)
	// An insert with an Idempotency-Key (allowed by the preflight), and its retry: one event.
	var keyed [2]record
	for i := range keyed {
		tb.eval(`new T.rt.Client({token: `+js(kim.token)+`}).insert({event: "x", collection_id: "c", data: "keyed", key: "k-1"})`, &keyed[i])
	}
	if keyed[0].ID == "" || keyed[1].ID != keyed[0].ID || keyed[1].Seq != keyed[0].Seq {
		t.Fatalf("a keyed insert and its retry: %+v, %+v", keyed[0], keyed[1])
	}
	want = append(want, keyed[0])
	for _, tr := range transports {
		tb.waitFor(`T.logs[`+js(tr)+`].length >= 3`, "T.dump()")
		checkLog(t, tr, tb.log(tr), want, []string{fmt.Sprint(want[0].Seq)})
	}
}

// auto takes WebSocket, falls back to SSE when a proxy refuses the upgrade, and to
// long-polling when it refuses streams too.
func TestAutoFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.signup("bob", "tenant-auto")
	want := []record{e.insert(bob, "greeting", "c", map[string]any{"text": "Grüß Gott: id:1"})}
	tb := loadHarness(t, e)

	cases := []struct {
		name, transport string
		refuse          func(*http.Request) bool
	}{
		{"open", "ws", func(*http.Request) bool { return false }},
		{"no-websocket", "sse", isUpgrade},
		{"no-streams", "poll", func(r *http.Request) bool {
			return isUpgrade(r) || strings.HasPrefix(r.URL.Path, "/events/") || r.URL.Path == "/sse"
		}},
	}
	for _, c := range cases {
		e.refuseWhen(c.refuse)
		tb.open(c.name, bob, map[string]any{"transport": "auto"})
		tb.waitFor(`T.subs[`+js(c.name)+`].status === "open" && T.logs[`+js(c.name)+`].length >= 1`, "T.dump()")
		var got string
		tb.eval(`T.subs[`+js(c.name)+`].transport`, &got)
		if got != c.transport {
			t.Errorf("%s: auto chose %s, want %s", c.name, got, c.transport)
		}
	}
	e.refuseWhen(func(*http.Request) bool { return false })
	want = append(want, e.insert(bob, "greeting", "c", map[string]any{"text": "live: ünïcode"}))
	for _, c := range cases {
		tb.waitFor(`T.logs[`+js(c.name)+`].length >= 2`, "T.dump()")
		checkLog(t, c.name, tb.log(c.name), want, []string{fmt.Sprint(want[0].Seq)})
	}
}

// Filters narrow the state and the live events alike; a cursor the server does not have
// brings a resync and the full state, after which the subscription goes on from the real
// cursor. On every transport.
func TestFiltersAndResync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fay := e.signup("fay", "tenant-filters")
	a := e.insert(fay, "chat", "room-a", map[string]any{"text": "à"})
	b := e.insert(fay, "chat", "room-b", map[string]any{"text": "b:"})
	c := e.insert(fay, "topic", "room-a", map[string]any{"text": "ç"})
	tb := loadHarness(t, e)
	for _, tr := range transports {
		tb.open("room-a "+tr, fay, map[string]any{"transport": tr, "collections": []string{"room-a"}})
		tb.open("chat "+tr, fay, map[string]any{"transport": tr, "events": "chat"})
		tb.open("resync "+tr, fay, map[string]any{"transport": tr, "lastEventId": "999999"})
	}
	for _, tr := range transports {
		tb.waitFor(`T.logs[`+js("room-a "+tr)+`].length >= 2 && T.logs[`+js("chat "+tr)+`].length >= 2 && T.logs[`+js("resync "+tr)+`].length >= 4`, "T.dump()")
	}
	d := e.insert(fay, "topic", "room-b", map[string]any{"text": "d"})
	f := e.insert(fay, "chat", "room-a", map[string]any{"text": "f"})
	for _, tr := range transports {
		tb.waitFor(`T.logs[`+js("room-a "+tr)+`].length >= 3 && T.logs[`+js("chat "+tr)+`].length >= 3 && T.logs[`+js("resync "+tr)+`].length >= 6`, "T.dump()")
		checkLog(t, "room-a "+tr, tb.log("room-a "+tr), []record{a, c, f}, []string{"", fmt.Sprint(c.Seq)})
		checkLog(t, "chat "+tr, tb.log("chat "+tr), []record{a, b, f}, []string{"", fmt.Sprint(c.Seq)})

		got := tb.log("resync " + tr)
		if got[0].Event != "resync" || got[0].ID != "" {
			t.Fatalf("resync %s: first message %+v, want an id-less resync", tr, got[0])
		}
		checkLog(t, "resync "+tr, got[1:], []record{a, b, c, d, f}, []string{"", "", fmt.Sprint(c.Seq)})
		var v struct {
			LastEventID string
			State       []record
		}
		tb.eval(`({lastEventId: T.subs[`+js("resync "+tr)+`].lastEventId, state: T.states[`+js("resync "+tr)+`]})`, &v)
		if v.LastEventID != fmt.Sprint(f.Seq) || len(v.State) != 4 {
			t.Errorf("resync %s: cursor %s and %d state records, want %d and 4", tr, v.LastEventID, len(v.State), f.Seq)
		}
	}
}

// Ephemeral messages pushed by a backend reach every open subscription of the tenant, or
// every one of the user (all devices, whatever their transport), with no id, the pushed
// JSON as it is; they change neither the state nor the cursor.
func TestEphemeral(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gus := e.signup("gus", "tenant-eph")
	hal := e.signup("hal", "tenant-eph")
	e.insert(gus, "chat", "c", "first")
	tb := loadHarness(t, e)
	for _, tr := range transports {
		tb.open("gus "+tr, gus, map[string]any{"transport": tr})
	}
	tb.open("hal", hal, map[string]any{"transport": "sse"})
	names := append([]string{"hal"}, func() (n []string) {
		for _, tr := range transports {
			n = append(n, "gus "+tr)
		}
		return n
	}()...)
	for _, n := range names {
		tb.waitFor(`T.subs[`+js(n)+`].status === "open" && T.logs[`+js(n)+`].length >= 1`, "T.dump()")
	}
	notice := map[string]any{"text": "maintenance à 22:00, id:5", "list": []any{1, "é"}}
	if got := e.push(gus.tenant, "", "notice", notice); got != len(names) {
		t.Errorf("a push to the tenant reached %d streams, want %d", got, len(names))
	}
	if got := e.push(gus.tenant, "gus", "private", "pour gus: ✓"); got != len(transports) {
		t.Errorf("a push to gus reached %d streams, want %d (one per device)", got, len(transports))
	}
	r2 := e.insert(hal, "chat", "c", "second")
	for _, n := range names {
		want := 4
		if n == "hal" {
			want = 3
		}
		tb.waitFor(fmt.Sprintf(`T.logs[%s].length >= %d`, js(n), want), "T.dump()")
		var v struct {
			Log         []map[string]json.RawMessage
			LastEventID string
			State       []record
		}
		tb.eval(`({log: T.logs[`+js(n)+`], lastEventId: T.subs[`+js(n)+`].lastEventId, state: T.states[`+js(n)+`]})`, &v)
		// Publications keep their order; a long poll may bring ephemeral messages after the
		// publications of the same reply.
		var published, ephemeral []string
		for _, m := range v.Log {
			var ev string
			json.Unmarshal(m["event"], &ev)
			if (ev == "notice" || ev == "private") == (m["id"] != nil) {
				t.Errorf("%s: message %s has id %s: want an id on publications only", n, ev, m["id"])
			}
			if m["id"] != nil {
				published = append(published, ev)
				continue
			}
			ephemeral = append(ephemeral, ev)
			if ev == "notice" && !pushed(m["data"], notice) {
				t.Errorf("%s: notice data %s, want %s", n, m["data"], js(notice))
			}
		}
		wantEph := "notice private"
		if n == "hal" {
			wantEph = "notice"
		}
		if strings.Join(published, " ") != "chat chat" || strings.Join(ephemeral, " ") != wantEph {
			t.Errorf("%s: publications %q and ephemeral messages %q, want [chat chat] and %q", n, published, ephemeral, wantEph)
		}
		if v.LastEventID != fmt.Sprint(r2.Seq) || len(v.State) != 1 || v.State[0].ID != r2.ID {
			t.Errorf("%s: cursor %s, state %+v; want %d and the one chat record", n, v.LastEventID, v.State, r2.Seq)
		}
	}
}

// pushed tells whether an ephemeral message's data is the pushed value, as it is.
func pushed(data json.RawMessage, want any) bool {
	return sameJSON(data, json.RawMessage(js(want)))
}

// A revoked user's subscriptions get session_killed, end with that error and do not
// reconnect, on every transport.
func TestSessionEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := e.signup("carol", "tenant-end")
	e.insert(carol, "x", "c", 1)
	tb := loadHarness(t, e)
	for _, tr := range transports {
		tb.open(tr, carol, map[string]any{"transport": tr})
		tb.waitFor(`T.subs[`+js(tr)+`].status === "open" && T.logs[`+js(tr)+`].length >= 1`, "T.dump()")
	}
	e.must(200, "POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "carol"})
	for _, tr := range transports {
		tb.waitFor(`T.subs[`+js(tr)+`].status === "closed" && T.errors[`+js(tr)+`]`, "T.dump()")
		var v struct {
			Error string
			Stats struct{ Connects int }
		}
		tb.eval(`({error: T.errors[`+js(tr)+`], stats: T.subs[`+js(tr)+`].stats})`, &v)
		if !strings.HasPrefix(v.Error, "session_killed:") {
			t.Errorf("%s: error %q, want session_killed", tr, v.Error)
		}
		if log := tb.log(tr); log[len(log)-1].Event != "session_killed" || log[len(log)-1].ID != "" {
			t.Errorf("%s: last message %+v, want session_killed", tr, log[len(log)-1])
		}
		if v.Stats.Connects != 1 {
			t.Errorf("%s: %d connections, want 1: a refused session does not reconnect", tr, v.Stats.Connects)
		}
	}
}

// A stream the server refuses (another tenant, another user's messages without the role, a
// bad token) ends the subscription with that error at once, without retrying, on every
// transport: even over WebSocket, whose refused handshake hides its status from scripts.
func TestRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hank := e.signup("hank", "tenant-refused")
	e.signup("ivy", "tenant-refused")
	bad := hank
	bad.token = hank.token[:len(hank.token)-4] + "AAAA"
	tb := loadHarness(t, e)
	cases := []struct {
		name string
		u    user
		opts map[string]any
		code string
	}{
		{"tenant", hank, map[string]any{"tenant": "someone-else"}, "forbidden"},
		{"users", hank, map[string]any{"users": []string{"ivy"}}, "forbidden"},
		{"token", bad, map[string]any{}, "unauthorized"},
	}
	for _, tr := range append([]string{"auto"}, transports...) {
		for _, c := range cases {
			opts := map[string]any{"transport": tr}
			for k, v := range c.opts {
				opts[k] = v
			}
			tb.open(c.name+" "+tr, c.u, opts)
		}
	}
	for _, tr := range append([]string{"auto"}, transports...) {
		for _, c := range cases {
			n := js(c.name + " " + tr)
			tb.waitFor(`T.subs[`+n+`].status === "closed"`, "T.dump()")
			var v struct {
				Error string
				Log   []msg
				Stats struct{ Connects int }
			}
			tb.eval(`({error: T.errors[`+n+`], log: T.logs[`+n+`], stats: T.subs[`+n+`].stats})`, &v)
			if !strings.HasPrefix(v.Error, c.code+":") || len(v.Log) != 0 || v.Stats.Connects != 0 {
				t.Errorf("%s %s: error %q, %d messages, %d connections; want %s and nothing else", c.name, tr, v.Error, len(v.Log), v.Stats.Connects, c.code)
			}
		}
	}
}

// A stream lasts no longer than its token: when it expires, the subscription ends with
// "token expired" (WebSocket's close 4002, long-polling's 401, SSE's refused reconnection)
// rather than retrying with a dead token.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *httpbridge.Config) {
		c.JWTExpiry = 5 * time.Second
		c.Leeway = -1
	})
	tb := loadHarness(t, e)
	jo := e.signup("jo", "tenant-expiry") // the token's five seconds start now
	e.insert(jo, "x", "c", "ü")
	for _, tr := range transports {
		tb.open(tr, jo, map[string]any{"transport": tr})
	}
	for _, tr := range transports {
		n := js(tr)
		tb.waitFor(`T.subs[`+n+`].status === "closed"`, "T.dump()")
		var v struct {
			Error string
			Log   []msg
			Stats struct{ Connects int }
		}
		tb.eval(`({error: T.errors[`+n+`], log: T.logs[`+n+`], stats: T.subs[`+n+`].stats})`, &v)
		if v.Error != "unauthorized: token expired" || len(v.Log) != 1 || v.Stats.Connects != 1 {
			t.Errorf("%s: error %q, %d messages, %d connections; want the state, then token expired", tr, v.Error, len(v.Log), v.Stats.Connects)
		}
	}
}

// The demo page, driven as a person would: sign up, connect, watch a collection, insert now
// and later, cancel a scheduled event.
func TestDemoPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tb := newTab(t)
	tb.do(
		chromedp.Navigate(e.url+"/demo/"),
		chromedp.SetValue(chromedp.ID("username"), "dora"),
		chromedp.SetValue(chromedp.ID("password"), "pässwörd:1"),
		chromedp.SetValue(chromedp.ID("tenant"), "tenant-demo"),
		chromedp.Click(chromedp.ID("signup")),
	)
	tb.waitFor(`document.getElementById("who").textContent.includes("dora")`, `document.getElementById("log").textContent`)
	tb.do(
		chromedp.SetValue(chromedp.ID("collection"), "salle-été"),
		chromedp.Click(chromedp.ID("connect")),
	)
	tb.waitFor(`document.getElementById("status").textContent.startsWith("open")`, `document.getElementById("log").textContent`)

	text := func(id string) string {
		var s string
		tb.eval(`document.getElementById(`+js(id)+`).textContent`, &s)
		return s
	}
	// Insert now, from the page.
	tb.do(
		chromedp.SetValue(chromedp.ID("event"), "chat"),
		chromedp.SetValue(chromedp.ID("data"), `{"text": "Grüße: id:1 🎉"}`),
		chromedp.Click(chromedp.ID("insert")),
	)
	tb.waitFor(`document.getElementById("state").textContent.includes("Grüße: id:1 🎉")`, `document.getElementById("log").textContent`)

	// Another user of the tenant writes: the view follows live.
	erin := e.signup("erin", "tenant-demo")
	e.insert(erin, "topic", "salle-été", map[string]any{"title": "ordre du jour: café"})
	e.insert(erin, "topic", "elsewhere", map[string]any{"title": "not in this view"})
	tb.waitFor(`document.getElementById("state").textContent.includes("ordre du jour: café")`, `document.getElementById("log").textContent`)
	tb.waitFor(`document.getElementById("log").textContent.includes("not in this view")`, `document.getElementById("log").textContent`)
	if strings.Contains(text("state"), "not in this view") {
		t.Errorf("the view of salle-été shows another collection's event: %q", text("state"))
	}

	// Insert two seconds from now: scheduled, then published into the view.
	const later = `(() => { const d = new Date(Date.now() + %d), p = (n) => String(n).padStart(2, "0");
	  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()); })()`
	var at string
	tb.eval(fmt.Sprintf(later, 2000), &at)
	tb.do(
		chromedp.SetValue(chromedp.ID("event"), "reminder"),
		chromedp.SetValue(chromedp.ID("at"), at),
		chromedp.SetValue(chromedp.ID("data"), `{"text": "plus tard"}`),
		chromedp.Click(chromedp.ID("insert")),
	)
	// "scheduled": the server did not publish it at insert.
	tb.waitFor(`document.getElementById("inserted").textContent.startsWith("scheduled")`, `document.getElementById("log").textContent`)
	tb.waitFor(`document.getElementById("state").textContent.includes("plus tard")`, `document.getElementById("log").textContent`)

	// Insert a minute from now, then cancel it from the page.
	tb.eval(fmt.Sprintf(later, 60000), &at)
	tb.do(
		chromedp.SetValue(chromedp.ID("event"), "never"),
		chromedp.SetValue(chromedp.ID("at"), at),
		chromedp.Click(chromedp.ID("insert")),
	)
	tb.waitFor(`document.getElementById("inserted").textContent.startsWith("scheduled") && document.querySelector("#inserted button")`, `document.getElementById("log").textContent`)
	tb.do(chromedp.Click(chromedp.CSS("#inserted button")))
	tb.waitFor(`document.getElementById("inserted").textContent.startsWith("cancelled")`, `document.getElementById("log").textContent`)

	// Each transport of the selector: a new connection shows the same state, then live events.
	topic := "ordre du jour: café" // the latest topic of the collection, its current state
	for i, tr := range transports {
		tb.do(
			chromedp.Click(chromedp.ID("disconnect")),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("state").replaceChildren()`),
			chromedp.SetValue(chromedp.ID("transport"), tr),
			chromedp.Click(chromedp.ID("connect")),
		)
		tb.waitFor(`document.getElementById("status").textContent === "open (`+tr+`)"`, `document.getElementById("log").textContent`)
		tb.waitFor(`["Grüße: id:1 🎉", "plus tard", `+js(topic)+`].every((s) => document.getElementById("state").textContent.includes(s))`,
			`document.getElementById("state").textContent`)
		topic = fmt.Sprintf("over %s: ünïcode %d", tr, i)
		e.insert(erin, "topic", "salle-été", map[string]any{"title": topic})
		tb.waitFor(`document.getElementById("state").textContent.includes(`+js(topic)+`)`, `document.getElementById("log").textContent`)
	}

	var errs []string
	tb.eval(`demo.errors`, &errs)
	if len(errs) != 0 {
		t.Errorf("the page reported errors: %q", errs)
	}

	// Log out: the session ends, and the open stream with it.
	tb.do(chromedp.Click(chromedp.ID("logout")))
	tb.waitFor(`document.getElementById("status").textContent.startsWith("closed")`, `document.getElementById("log").textContent`)
	tb.eval(`demo.errors`, &errs)
	if len(errs) != 1 || errs[0] != "session killed" {
		t.Errorf("after logout the page reported %q, want the session killed", errs)
	}
}
