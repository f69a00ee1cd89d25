package httpbridge

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// streamParams are the query parameters (and cursor header) every stream transport takes.
type streamParams struct {
	resume      bool   // a cursor was given
	after       uint64 // the cursor: the last publication id the client has
	raw         string // cluster mode: the cursor as given
	stale       bool   // cluster mode: a cursor of another epoch (resync)
	dataOnly    bool   // ?format=data
	events      []string
	collections []string
	users       []string      // ?users=: usernames or ids to watch
	wait        time.Duration // long-polling: ?wait= seconds
	conn        uint64        // long-polling: ?conn=
	cred        pollCred      // long-polling: the poll's token, as pollPrincipal found it
}

// Bounds of the stream parameters: what a client can make the server hold per stream.
const (
	maxListItems    = 64
	maxItemLen      = 256
	defaultPollWait = 25 * time.Second
)

// parseStreamParams reads the cursor (Last-Event-ID, else ?last_event_id=), ?format=,
// ?events=, ?collections=, ?users=, ?wait= and ?conn=. Anything malformed is a 400 naming it.
func parseStreamParams(r *http.Request) (streamParams, error) {
	return parseStreamParamsWith(r, func(v string) (cursorPos, error) {
		n, err := parseSeq(v)
		return cursorPos{after: n}, err
	})
}

// cursorPos is what a cursor says (streamParams' after, raw and stale).
type cursorPos struct {
	after uint64
	raw   string
	stale bool
}

// parseStreamParamsWith is parseStreamParams with the cursor parsed by cursor.
func parseStreamParamsWith(r *http.Request, cursor func(v string) (cursorPos, error)) (streamParams, error) {
	var q query
	parseQuery(r.URL.RawQuery, &q)
	return parseStreamQueryWith(r, &q, cursor)
}

// parseStreamQueryWith is parseStreamParamsWith with r's query already parsed into q.
func parseStreamQueryWith(r *http.Request, q *query, cursor func(v string) (cursorPos, error)) (streamParams, error) {
	var p streamParams
	for _, v := range []string{r.Header.Get("Last-Event-ID"), q.Get("last_event_id")} {
		if v == "" {
			continue
		}
		c, err := cursor(v)
		if err != nil {
			return p, err
		}
		p.after, p.raw, p.stale, p.resume = c.after, c.raw, c.stale, true
		break
	}
	switch f := q.Get("format"); f {
	case "", "record":
	case "data":
		p.dataOnly = true
	default:
		return p, errorf(http.StatusBadRequest, "format %q: want data or record", f)
	}
	var err error
	if p.events, err = parseList(q.values("events"), "events"); err != nil {
		return p, err
	}
	if p.collections, err = parseList(q.values("collections"), "collections"); err != nil {
		return p, err
	}
	if p.users, err = parseList(q.values("users"), "users"); err != nil {
		return p, err
	}
	p.wait = defaultPollWait
	if v := q.Get("wait"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, errorf(http.StatusBadRequest, "wait %q: want whole seconds, 0 to %d", v, int(maxPollWait/time.Second))
		}
		p.wait = min(time.Duration(n)*time.Second, maxPollWait)
	}
	if v := q.Get("conn"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return p, errorf(http.StatusBadRequest, "conn %q is not a connection id", v)
		}
		p.conn = n
	}
	return p, nil
}

// parseList reads the comma-separated lists vs of parameter name (given once or repeated);
// empty items are ignored.
func parseList(vs []string, name string) ([]string, error) {
	var out []string
	for _, v := range vs {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if len(item) > maxItemLen {
				return nil, errorf(http.StatusBadRequest, "%s: an item longer than %d bytes", name, maxItemLen)
			}
			if len(out) == maxListItems {
				return nil, errorf(http.StatusBadRequest, "%s: more than %d items", name, maxListItems)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

// query holds a request's query parameters as r.URL.Query() reads them (url.ParseQuery,
// leaving out the pairs it refuses: one with a ';' or a bad escape), the first few as pairs
// in the value itself: a poll, which a client sends again with each reply, allocates no map
// and no strings for them (but for escaped ones). The zero query has no parameters.
type query struct {
	kv   [maxQueryPairs][2]string
	n    int
	more url.Values // a query with more pairs than kv holds: all of them
}

const maxQueryPairs = 12

// parseQuery parses raw (a URL's RawQuery) into q.
func parseQuery(raw string, q *query) {
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := queryUnescape(k)
		v, err2 := queryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if q.n == len(q.kv) {
			q.more, _ = url.ParseQuery(raw)
			return
		}
		q.kv[q.n] = [2]string{k, v}
		q.n++
	}
}

func queryUnescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// Get is the first value of key, or "".
func (q *query) Get(key string) string {
	if q.more != nil {
		return q.more.Get(key)
	}
	for i := range q.n {
		if q.kv[i][0] == key {
			return q.kv[i][1]
		}
	}
	return ""
}

// values are the values of key, in order (nil: none).
func (q *query) values(key string) []string {
	if q.more != nil {
		return q.more[key]
	}
	var vs []string
	for i := range q.n {
		if q.kv[i][0] == key {
			vs = append(vs, q.kv[i][1])
		}
	}
	return vs
}
