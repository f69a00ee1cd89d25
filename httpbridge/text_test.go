package httpbridge_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestInvalidTextRefused: invalid UTF-8, or half a surrogate pair as a \u escape, anywhere in
// a request body is refused with 400 naming the field, on every route that takes a body;
// valid text, U+FFFD itself and escaped pairs included, passes.
func TestInvalidTextRefused(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	for _, c := range []struct {
		path, auth, body, field string
	}{
		{"/users", "", `{"username":"b\xffob","password":"pw","tenant_id":"acme"}`, "username"},
		{"/users", "", `{"username":"bob","password":"pw","tenant_id":"ac\xc3me"}`, "tenant_id"},
		{"/users", "", `{"username":"bob","password":"p\xe2\x82w","tenant_id":"acme"}`, "password"},
		{"/users", "", `{"username":"bob","password":"pw","tenant_id":"acme","collection_id":"c\xed\xa0\x80"}`, "collection_id"},
		{"/users", "", `{"username":"bob","password":"pw","tenant_id":"acme","info":{"a":["\xc0\xaf"]}}`, "info"},
		{"/users", "", `{"username":"b\ud800ob","password":"pw","tenant_id":"acme"}`, "username"},
		{"/users", "", `{"username":"bob","password":"pw","tenant_id":"\udc00acme"}`, "tenant_id"},
		{"/create_user", "", `{"username":"bob","password":"pw","admin_token":"` + adminToken + `","tenant_name":"a\xffb"}`, "tenant_name"},
		{"/login", "", `{"username":"an\xffn","password":"pw-ann"}`, "username"},
		{"/insert", u.bearer(), `{"event":"ev\xfe","data":1}`, "event"},
		{"/insert", u.bearer(), `{"event":"ev","data":{"name":"x\xff"}}`, "data"},
		{"/insert", u.bearer(), `{"event":"ev","data":"\ud83d"}`, "data"},
		{"/insert", u.bearer(), `{"event":"ev","data":["\ude00\ud83d"]}`, "data"},
		{"/insert", u.bearer(), `{"event":"ev","data":1,"collection_id":"\x80"}`, "collection_id"},
		{"/insert", u.bearer(), `{"event":"ev","data":1,"tenant_id":"acme\xff"}`, "tenant_id"},
		{"/insert", u.bearer(), `{"event":"ev","data":1,"unknown":"\xff"}`, "unknown"},
		{"/revoke_user", "", `{"admin_token":"` + adminToken + `","username":"ann\xff"}`, "username"},
		{"/get_user", "", `{"admin_token":"` + adminToken + `","username":"\xffann"}`, "username"},
	} {
		r := e.expect(e.do("POST", c.path, c.auth, rawBytes(c.body)), 400)
		if msg := r.field(t, "error"); !strings.Contains(msg, `"`+c.field+`"`) || !strings.Contains(msg, "UTF-8") {
			t.Errorf("%s %q: error %q does not name %q and UTF-8", c.path, c.body, msg, c.field)
		}
	}
	r := e.expect(e.do("POST", "/insert", u.bearer(), rawBytes(`{"ev\xffent":"ev","data":1}`)), 400)
	if msg := r.field(t, "error"); !strings.Contains(msg, "field name") {
		t.Errorf("bad key: %q", msg)
	}
	// Nothing was created by the refused sign-ups.
	var users []map[string]any
	e.expect(e.do("POST", "/list_users", "", map[string]string{"admin_token": adminToken}), 200).json(t, &users)
	if len(users) != 1 {
		t.Fatalf("%d users after refused sign-ups, want 1", len(users))
	}

	// Valid text passes: U+FFFD itself, escaped pairs, escapes of every kind, multi-byte UTF-8.
	for _, body := range []string{
		`{"event":"caf\u00e9 \ud83d\ude00 \uFFFD ` + "\uFFFD é 😀" + `","data":{"s":"\"\\\\u\ud83d\ude00\\ud800","k\u00e9":["\u2028"]}}`,
		`{"event":"e","data":"\\udc00"}`, // a backslash, then the text "udc00"
	} {
		rec := e.insert(u, jsonObj(t, body))
		if !strings.HasPrefix(rec.Event, "caf") && rec.Event != "e" {
			t.Fatalf("event %q", rec.Event)
		}
		var raw map[string]json.RawMessage
		e.expect(e.do("POST", "/insert", u.bearer(), []byte(body)), 200).json(t, &raw)
	}
}

var hexByte = regexp.MustCompile(`\\x[0-9a-f]{2}`)

// rawBytes turns each \xHH of s into that byte (JSON's own escapes stay as they are).
func rawBytes(s string) []byte {
	return hexByte.ReplaceAllFunc([]byte(s), func(m []byte) []byte {
		b, _ := strconv.ParseUint(string(m[2:]), 16, 8)
		return []byte{byte(b)}
	})
}

func jsonObj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTimestampNumberOnly: a timestamp given as a JSON string is refused, naming the field;
// numbers and null pass.
func TestTimestampNumberOnly(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	now := e.clock.Now().Unix()
	for _, ts := range []string{`"1800000000"`, `"soon"`, `true`, `[1]`, `{"s":1}`} {
		r := e.expect(e.do("POST", "/insert", u.bearer(), []byte(`{"event":"ev","data":1,"timestamp":`+ts+`}`)), 400)
		if msg := r.field(t, "error"); !strings.Contains(msg, `"timestamp"`) || !strings.Contains(msg, "number") {
			t.Errorf("timestamp %s: error %q", ts, msg)
		}
	}
	for ts, want := range map[string]int64{"1800000000": 1_800_000_000, "1.8e9": 1_800_000_000, "null": now} {
		var out struct{ Event record }
		e.expect(e.do("POST", "/insert", u.bearer(), []byte(`{"event":"ev","data":1,"timestamp":`+ts+`}`)), 200).json(t, &out)
		if out.Event.Timestamp != want {
			t.Errorf("timestamp %s stored as %d, want %d", ts, out.Event.Timestamp, want)
		}
	}
}
