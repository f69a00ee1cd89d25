package e2e

import (
	"testing"
	"time"
)

// Helpers of the schedule, cancel and partition fault tests.

// settle reads f's stream for d more, failing at once on an event delivered twice: what a
// test does to see that no repeat comes after the events it waited for.
func (f *follower) settle(d time.Duration) {
	f.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-f.st.msgs:
			f.take(m)
			if len(f.dups) > 0 {
				f.t.Fatalf("%s follower on %s: delivered twice: %v", f.tr.name, f.on.name, f.dups)
			}
		case <-deadline:
			return
		}
	}
}

// userEvents returns what n's index holds of the events u inserted, by id.
func userEvents(t testing.TB, n *node, u user) map[string]record {
	t.Helper()
	var out struct{ Events []record }
	expect(t, do(t, n, "GET", "/user_events", u.bearer(), nil), 200).json(t, &out)
	m := map[string]record{}
	for _, e := range out.Events {
		if _, dup := m[e.ID]; dup {
			t.Fatalf("user_events on %s lists %s twice", n.name, e.ID)
		}
		m[e.ID] = e
	}
	return m
}

// replay opens an SSE stream on n from cursor and returns the messages it replays until
// count of them have come and the stream then stays quiet for quiet; it fails on more.
func replay(t testing.TB, n *node, u user, cursor string, count int, bound, quiet time.Duration) []msg {
	t.Helper()
	st := mustOpen(t, transports[0], n, "", u.token, cursor)
	defer st.close()
	var got []msg
	for len(got) < count {
		got = append(got, st.next(t, bound))
	}
	select {
	case m := <-st.msgs:
		t.Fatalf("replay on %s from %s: %d messages wanted, then %+v", n.name, cursor, count, m)
	case <-time.After(quiet):
	}
	return got
}
