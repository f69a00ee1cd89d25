// Package httpbridge is rtbus's HTTP bridge: a real-time backend for web and mobile front
// ends, with users, durable events, scheduling and Server-Sent Events streams, over the
// routes of the broker BaaS (described in docs/http.md in the repository), linked to a bus.
//
// A Server stores users and events in an embedded pebble store under Config.DataDir, signs
// JWTs for its users, publishes each event when its timestamp is reached (at insert, or later
// by a scheduler waiting on the next due event), and hands every publication to the tenant's
// open streams and to the bus (topic EventTopic). Bus clients push ephemeral messages to
// streams through the topics documented at TopicPrefix, and insert events by calling the RPC
// method InsertMethod of the bridge's bus client, BusClientName.
//
// POST /insert takes an optional IdempotencyKeyHeader: the event's id is then derived from
// the tenant, the user and the key, so that a client retrying an insert whose answer it did
// not get stores it once and is answered with the stored record (422 if the retry asks for
// another event), in single-node and cluster mode alike.
//
//	b := bus.New()
//	srv, err := httpbridge.New(b, httpbridge.Config{DataDir: dir})
//	…
//	http.ListenAndServe("127.0.0.1:8080", srv.Handler())
//	…
//	srv.Shutdown(ctx) // streams closed, store flushed and closed
package httpbridge
