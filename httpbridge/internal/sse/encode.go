package sse

// AppendMessage appends one SSE message in the broker-client-safe encoding of HTTP.md:
// "event:NAME\ndata:JSON\nid:SEQ\n\n" (fields in that order, no space after the colon, LF),
// where JSON is re-encoded to pure ASCII (non-ASCII as \uXXXX, surrogate pairs above the BMP)
// with every ':' inside a JSON string as \u003a. An id of 0 writes no id: field (ephemeral
// message). retry, if > 0, adds "retry:N\n" (milliseconds; the first message of a stream).
//
// json must be valid compact JSON (as encoding/json gives it).
func AppendMessage(dst []byte, event string, json []byte, id uint64, retry int) []byte {
	panic("not implemented")
}

// AppendKeepAlive appends "event:keepalive\ndata:{}\n\n": a named event rather than a comment
// line, so that clients which ignore comments still see the connection alive.
func AppendKeepAlive(dst []byte) []byte {
	return append(dst, "event:keepalive\ndata:{}\n\n"...)
}
