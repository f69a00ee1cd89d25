// Package transport carries the bus over UNIX sockets, TCP and WebSocket (the same byte
// stream in binary messages), optionally over TLS (tls:// and wss://), in the BUS/RT wire
// protocol (docs/wire.md in the repository), byte for byte, so that existing BUS/RT clients
// work unchanged. Dial is the Go client, with the methods of an in-process client (bus.Conn);
// it parses each socket read in place and hands frames over in batches, allocating nothing
// per frame.
//
// A Server registers each connection as a bus client. Its reader decodes the client's frames
// (a length over the payload limit is refused before anything is allocated), routes them, and
// queues each ack in the client's own bus queue, so that an ack follows the frames its
// operation routed to the same client. Its writer takes what the bus queued in batches and
// writes each batch in as few system calls as the write buffer allows, at once when a frame
// is realtime. The broker pings every Timeout/2 and drops a client silent for 1.25 × Timeout
// (at most a quarter of that longer: see Server.read). On a plain socket, both sides read
// without the empty read that would end each request of a sequential caller, and on linux
// both reads and writes are raw system calls (see sock).
// A malformed frame closes that connection only, and every dropped connection is logged once
// with its reason.
//
// Memory held for a connection grows with the bytes it has sent, never with what a header
// announces: each connection reads into a 64 KiB buffer of its own, and a frame larger than
// that gets a larger buffer only once it has filled the current one, twice as large each
// time (at most the frame's size), so that a buffer is at most twice what has arrived of its
// frame (see inbuf). The bytes held in such grown buffers are counted across all the
// server's connections, on every listener, against Config.IncompleteLimit: a connection whose
// frame would pass it stops reading, and so holds no more, until other frames complete or
// other connections end, for up to Timeout; then it is closed and the reason logged. Frames
// that fit the connection's own buffer never touch the count, so the read path of small
// frames is unchanged. A client that trickles a large frame keeps only what it sent, and
// that within the cap. Once the frame is routed, the grown buffer goes (its count with it),
// and neither the server's queue of a receiver nor a Go client's inbox keeps a frame it has
// handed on: an idle connection holds its own buffer, whatever it sent or received before.
//
// A UNIX listener replaces a stale socket file at its path but refuses one that a process
// answers on (ErrAddrInUse), and removes on Close only the socket file it bound.
package transport
