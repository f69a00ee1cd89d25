//go:build !unix

package sse

import "net"

// pollable: without raw reads, a goroutine reads a WebSocket client's frames, and an SSE
// client's hang-up is noticed when a keep-alive fails to be written.
func (s *stream) pollable(net.Conn) bool { return false }

func (s *stream) pollFrames() {}

func (s *stream) pollHangup() {}
