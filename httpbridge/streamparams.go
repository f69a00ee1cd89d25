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
	return parseStreamQueryWith(r, r.URL.Query(), cursor)
}

// parseStreamQueryWith is parseStreamParamsWith with r's query already parsed into q.
func parseStreamQueryWith(r *http.Request, q url.Values, cursor func(v string) (cursorPos, error)) (streamParams, error) {
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
	if p.events, err = parseList(q, "events"); err != nil {
		return p, err
	}
	if p.collections, err = parseList(q, "collections"); err != nil {
		return p, err
	}
	if p.users, err = parseList(q, "users"); err != nil {
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

// parseList reads a comma-separated list (also given as repeated parameters); empty items
// are ignored.
func parseList(q map[string][]string, name string) ([]string, error) {
	var out []string
	for _, v := range q[name] {
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
