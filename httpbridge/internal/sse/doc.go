// Package sse is the HTTP bridge's stream core: a Hub that fans each publication out to the
// open streams of its tenant (or the ephemeral messages addressed to one user, to that user's
// streams and its watchers) through per-stream bounded queues, with filters, kills and
// keep-alives, whatever the transport; and the transports' encodings, which are all that
// differs between them: Serve (Server-Sent Events, AppendMessage), ServeWS (WebSocket text
// frames {"id","event","data"}, AppendJSONMessage) and Poll (long-polling, whose replies
// carry the same JSON objects).
//
// The encoding follows HTTP.md "Streams (SSE)": fields event, data, id in that order, no space
// after the colon, LF line ends, data as one line of pure-ASCII compact JSON in which every ':'
// inside a JSON string is written \u003a, so that strict parsers that split lines on the first
// ':' (broker-client) and every EventSource read the same message. Keep-alives are a named
// event, not comment lines, for the same reason.
//
// A stream never slows the publisher or its peers: Publish only appends a shared publication
// to each stream's queue, and a stream whose queue is full is ended (the client resumes with
// Last-Event-ID and loses nothing); so is one whose write has been stuck for half a
// keep-alive interval. A publication is encoded at most once per format, by the first stream
// that sends it, and every other stream writes the same bytes (a WebSocket frame included).
// PublishBatch hands over publications that are ready together (those of one sync of the
// store): a stream takes its share of them under one lock, with one wake, and writes them
// in one write.
//
// A stream writes whatever is waiting when it gets to write (the messages queued while its
// previous write was in progress, or its backlog) together, in one write, then flushes: one
// system call on a detached TCP or UNIX connection (writev), one Write and Flush on an
// attached stream, each message whole, never split across writes (HTTP.md; broker-client and
// EventSource read several messages from one chunk). A lone message goes out at once: nothing
// waits for company.
//
// Serve keeps the request's goroutine and net/http's buffers for the life of the stream
// (about 26 KB per idle stream). With StreamOptions.Detach an HTTP/1.x stream is taken over
// from net/http and lives in the hub with no goroutine while idle (about 1.5 KB with its
// connection, BenchmarkIdleStreams). A WebSocket stream is always detached; the keep-alive
// loop reads its client's control frames on a plain TCP or UNIX connection, one small
// goroutine elsewhere (TLS).
package sse
