package httpbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// Cursors. On a single node a stream id is the tenant's publication Seq ("42"). In cluster
// mode it is "<epoch>.<seq>": seq is a sequence of the shared stream, the same on every
// node, and epoch names the stream's incarnation, so a cursor from any node resumes on any
// other, and one from a stream made anew is recognised as such.

// maxCursorWait bounds how long a stream waits for this node's index to reach a cursor
// taken on a node that was ahead of it.
const maxCursorWait = 2 * time.Second

// maxEpochLen bounds the epoch part of a cluster cursor (ours are 16 hex digits).
const maxEpochLen = 64

// parseClusterCursor parses "<epoch>.<seq>" (epoch: 1-64 lowercase hex digits; seq: a
// decimal uint64). A plain number, a single node's cursor, parses as one of no epoch (""),
// which matches no stream: it gets a resync, as a cursor of another epoch does.
func parseClusterCursor(v string) (epoch string, seq uint64, err error) {
	bad := errorf(http.StatusBadRequest, "Last-Event-ID %q is not a cursor (want <epoch>.<seq>)", v)
	dot := strings.IndexByte(v, '.')
	num := v
	if dot >= 0 {
		epoch, num = v[:dot], v[dot+1:]
		if epoch == "" || len(epoch) > maxEpochLen {
			return "", 0, bad
		}
		for i := 0; i < len(epoch); i++ {
			if c := epoch[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return "", 0, bad
			}
		}
	}
	if num == "" || num[0] == '+' || num[0] == '-' {
		return "", 0, bad
	}
	seq, perr := strconv.ParseUint(num, 10, 64)
	if perr != nil {
		return "", 0, bad
	}
	return epoch, seq, nil
}

// parseCursor parses a cursor of this server's mode.
func (s *Server) parseCursor(v string) (cursorPos, error) {
	if s.epoch == "" {
		n, err := parseSeq(v)
		return cursorPos{after: n}, err
	}
	epoch, seq, err := parseClusterCursor(v)
	if err != nil {
		return cursorPos{}, err
	}
	return cursorPos{after: seq, raw: v, stale: epoch != s.epoch}, nil
}

// streamParamsOf is parseStreamParams with the cursor of this server's mode.
func (s *Server) streamParamsOf(r *http.Request) (streamParams, error) {
	if s.epoch == "" {
		return parseStreamParams(r)
	}
	return parseStreamParamsWith(r, s.parseCursor)
}

// message is the stream form of e, its id in this server's cursor format.
func (s *Server) message(e store.Event) sse.Message {
	m := message(e)
	m.IDPrefix = s.idPrefix
	return m
}

// cursorOK tells, in cluster mode, whether the log after prm's cursor can be replayed from
// this node's index: a cursor of another epoch, one older than the index's first record, or
// one ahead of what the stream has (after waiting a moment for this node to catch up with the
// node that gave it) cannot, and gets a resync message (returned) and the full state. On a
// single node it always can (the single-node checks are backlog's).
func (s *Server) cursorOK(ctx context.Context, prm streamParams) (ok bool, resync sse.Message) {
	if s.epoch == "" || !prm.resume {
		return true, sse.Message{}
	}
	reason := ""
	switch {
	case prm.stale:
		reason = "cursor of another event log (or of a single node): the full state follows"
	default:
		if s.db.Applied() < prm.after {
			wctx, cancel := context.WithTimeout(ctx, maxCursorWait)
			err := s.db.WaitApplied(wctx, prm.after)
			cancel()
			if err != nil {
				reason = "cursor ahead of the event log: the full state follows"
				break
			}
		}
		if cp, err := s.db.Checkpoint(); err == nil && cp.First > 1 && prm.after+1 < cp.First {
			reason = "cursor older than the event log kept: the full state follows"
		}
	}
	if reason == "" {
		return true, sse.Message{}
	}
	b, _ := json.Marshal(map[string]string{
		"reason":        reason,
		"last_event_id": prm.raw,
		"log_last_id":   s.idPrefix + strconv.FormatUint(s.db.Applied(), 10),
	})
	return false, sse.Message{Event: "resync", Record: b, Data: b}
}
