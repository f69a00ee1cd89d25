package sse

import "errors"

// Reasons Serve ends a stream, testable with errors.Is.
var (
	// ErrSlow: the stream's queue filled (the client reads slower than the tenant publishes).
	ErrSlow = errors.New("sse: stream too slow, disconnected")
	// ErrClosed: the hub was closed.
	ErrClosed = errors.New("sse: hub closed")
	// ErrUserClosed: CloseUser ended the streams of the stream's user.
	ErrUserClosed = errors.New("sse: user's streams closed")
	// ErrExpired: the stream outlived StreamOptions.Expires, the expiry of the credential it
	// was opened with.
	ErrExpired = errors.New("sse: stream's credential expired")
	// ErrKilled: KillSession or KillUser ended the stream after its final KillEvent message.
	ErrKilled = errors.New("sse: session killed")
)

// ErrNoPong: a WebSocket client left a ping unanswered for two KeepAlive periods.
var ErrNoPong = errors.New("sse: websocket ping unanswered")
