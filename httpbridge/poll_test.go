package httpbridge_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestPollFromHoldBounded: publications held for a connection between its polls that exceed
// one reply come in two replies, each within the bound, nothing lost or doubled.
func TestPollFromHoldBounded(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	poll := func(cursor, conn string) (ids []string, last, connOut string, size int) {
		t.Helper()
		q := "/poll/acme?wait=0"
		if cursor != "" {
			q += "&last_event_id=" + cursor + "&conn=" + conn
		}
		r := e.expect(e.do("GET", q, u.bearer(), nil), 200)
		var pb struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
			LastEventID string `json:"last_event_id"`
			Conn        string `json:"conn"`
		}
		r.json(t, &pb)
		for _, m := range pb.Messages {
			ids = append(ids, m.ID)
		}
		return ids, pb.LastEventID, pb.Conn, len(r.body)
	}
	_, cursor, conn, _ := poll("", "")
	_, cursor, conn, _ = poll(cursor, conn) // polled again: the connection keeps what follows
	big := strings.Repeat("x", 100<<10)
	const n = 14 // 1.4 MB: more than one reply holds
	for range n {
		e.insert(u, map[string]any{"event": "x", "data": big})
	}
	var got []string
	for replies := 0; len(got) < n; replies++ {
		if replies == 3 {
			t.Fatalf("%d of %d publications after %d replies", len(got), n, replies)
		}
		ids, last, _, size := poll(cursor, conn)
		if size > 1<<20+(110<<10) {
			t.Fatalf("reply of %d bytes, want about 1 MiB at most", size)
		}
		if len(ids) == 0 || ids[len(ids)-1] != last {
			t.Fatalf("reply %v with cursor %s", ids, last)
		}
		got = append(got, ids...)
		cursor = last
	}
	for i, id := range got {
		if id != strconv.Itoa(i+1) {
			t.Fatalf("publications %v, want 1 to %d once each", got, n)
		}
	}
}
