// Package transport carries the bus over UNIX sockets, TCP and WebSocket in the BUS/RT wire
// protocol (WIRE.md), byte for byte, so that existing BUS/RT clients work unchanged.
//
// This first part holds the frame codec: client frames are decoded from a stream with their
// length checked before any allocation, and broker frames, acks and pings are appended to a
// reusable buffer.
package transport
