package testutil

import (
	"encoding/json"
	"testing"
)

// Record is an event record as the HTTP bridge answers it.
type Record struct {
	ID           string          `json:"id"`
	Event        string          `json:"event"`
	TenantID     string          `json:"tenant_id"`
	CollectionID string          `json:"collection_id"`
	UserID       string          `json:"user_id"`
	Timestamp    int64           `json:"timestamp"`
	Published    bool            `json:"published"`
	Cancelled    bool            `json:"cancelled"`
	Data         json.RawMessage `json:"data"`
	Seq          uint64          `json:"seq"`
}

// DecodeReply decodes a reply's JSON body into v; it fails the test, showing the reply,
// when the body is not that JSON.
func DecodeReply(t testing.TB, code int, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("reply %d %q: %v", code, body, err)
	}
}

// ReplyField returns the string field name of a reply's JSON object ("" if it has none).
func ReplyField(t testing.TB, code int, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	DecodeReply(t, code, body, &m)
	s, _ := m[name].(string)
	return s
}

// ExpectStatus fails the test unless the reply's status is want and, for an error status,
// its body is a JSON {"error": "<a message>"}, as every error of the bridge is.
func ExpectStatus(t testing.TB, code int, body []byte, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("status %d, want %d: %s", code, want, body)
	}
	if want >= 400 {
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil || m["error"] == "" {
			t.Fatalf("error reply is not {\"error\": …}: %s", body)
		}
	}
}
