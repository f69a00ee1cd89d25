//go:build !unix

package sse

import "net"

// pollable: without raw reads, a goroutine reads the client's frames.
func (s *stream) pollable(net.Conn) bool { return false }

func (s *stream) pollFrames() {}
