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
)
