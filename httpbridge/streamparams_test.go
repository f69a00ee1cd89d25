package httpbridge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzStreamParams: whatever the query and the Last-Event-ID header, parsing answers a 400
// naming the problem or parameters within their bounds, and a valid cursor reads back as
// given.
func FuzzStreamParams(f *testing.F) {
	f.Add("last_event_id=12&events=a,b&collections=c&users=ann&wait=30&conn=7&format=data", "")
	f.Add("events=,,a,%20b,&wait=99", "5")
	f.Add("last_event_id=-1", "")
	f.Add("last_event_id=18446744073709551616", "")
	f.Add("format=xml&conn=abc", "x")
	f.Add("events="+strings.Repeat("e,", 70), "")
	f.Fuzz(func(t *testing.T, query, lastID string) {
		r := httptest.NewRequest("GET", "/sse", nil)
		r.URL.RawQuery = query
		r.Header.Set("Last-Event-ID", strings.Map(func(c rune) rune {
			if c < ' ' || c == 0x7f {
				return -1
			}
			return c
		}, lastID))
		p, err := parseStreamParams(r)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code != http.StatusBadRequest || ae.msg == "" {
				t.Fatalf("error %v, want a 400 naming the problem", err)
			}
			return
		}
		for _, list := range [][]string{p.events, p.collections, p.users} {
			if len(list) > maxListItems {
				t.Fatalf("%d items", len(list))
			}
			for _, item := range list {
				if item == "" || len(item) > maxItemLen || strings.Contains(item, ",") {
					t.Fatalf("item %q", item)
				}
			}
		}
		if p.wait < 0 || p.wait > maxPollWait {
			t.Fatalf("wait %v", p.wait)
		}
		cursor := r.Header.Get("Last-Event-ID")
		if cursor == "" {
			q, _ := url.ParseQuery(query)
			cursor = q.Get("last_event_id")
		}
		if p.resume != (cursor != "") || (p.resume && strconv.FormatUint(p.after, 10) != strings.TrimLeft(cursor, "+0") && p.after != 0) {
			t.Fatalf("cursor %q read as %v %d", cursor, p.resume, p.after)
		}
	})
}

// FuzzQuery: the stream routes' query parsing reads what r.URL.Query() reads, for any raw
// query: the first value and every value of each key, in order.
func FuzzQuery(f *testing.F) {
	f.Add("token=a.b-c_d&last_event_id=12&conn=7", "token")
	f.Add("events=a&events=b,c&x=%zz&y=1;2&=v&k&k=", "events")
	f.Add("a+b=c%20d&a%20b=e", "a b")
	f.Add(strings.Repeat("k=v&", 20)+"k=last", "k")
	f.Fuzz(func(t *testing.T, raw, key string) {
		want := (&url.URL{RawQuery: raw}).Query()
		var q query
		parseQuery(raw, &q)
		keys := []string{key}
		for k := range want {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if got := q.Get(k); got != want.Get(k) {
				t.Fatalf("%q: Get(%q) = %q, want %q", raw, k, got, want.Get(k))
			}
			if got, w := q.values(k), want[k]; !slices.Equal(got, w) {
				t.Fatalf("%q: values(%q) = %q, want %q", raw, k, got, w)
			}
		}
	})
}
