package bus

import "strings"

// QoS is the quality of service of an operation (WIRE.md §5). Bit 0 asks for an
// acknowledgement, bit 1 marks the frame realtime.
type QoS uint8

// The four QoS levels.
const (
	QoSNo                QoS = 0 // no acknowledgement, may be batched
	QoSProcessed         QoS = 1 // acknowledged after routing, may be batched
	QoSRealtime          QoS = 2 // no acknowledgement, flushed at once
	QoSRealtimeProcessed QoS = 3 // acknowledged after routing, flushed at once
)

// NeedsAck reports whether the sender waits for the routing result.
func (q QoS) NeedsAck() bool { return q&1 != 0 }

// Realtime reports whether frames of this QoS are flushed at once rather than batched.
func (q QoS) Realtime() bool { return q&2 != 0 }

// Kind is the kind of a delivered frame; the values are the wire kind bytes (WIRE.md §4).
type Kind uint8

// Frame kinds.
const (
	KindPublish   Kind = 0x01
	KindMessage   Kind = 0x12 // one-to-one
	KindBroadcast Kind = 0x13
	// KindAck frames are acknowledgements a transport queued for its own client with
	// Client.PushAck; in-process clients never receive them otherwise.
	KindAck Kind = 0xFE
)

func (k Kind) String() string {
	switch k {
	case KindPublish:
		return "publish"
	case KindMessage:
		return "message"
	case KindBroadcast:
		return "broadcast"
	case KindAck:
		return "ack"
	}
	return "unknown"
}

// SecondarySep separates a secondary client's primary name from its suffix: "NAME%%X".
const SecondarySep = "%%"

// Frame is one delivered frame. Frames are values: receiving one allocates nothing, and the
// Payload is the very slice the sender passed, shared by every receiver of a publication or
// broadcast. Receivers must treat it as read-only, and senders must not modify a payload after
// handing it to the bus (a transport that reuses its buffers counts their holders with a Ref).
type Frame struct {
	Sender   string // the sender's full name, with any "%%X" suffix
	Topic    string // the publication topic; empty for messages and broadcasts
	Payload  []byte
	Kind     Kind
	Realtime bool   // the originating frame was sent with a realtime QoS
	code     byte   // KindAck: the result code
	opID     uint32 // KindAck: the op id being acknowledged
	ref      *Ref   // held while queued; see Client.Hold and Frame.Release
}

// Ack returns the op id and result code of a KindAck frame.
func (f *Frame) Ack() (opID uint32, code byte) { return f.opID, f.code }

// PrimarySender returns the sender's primary name: Sender without any "%%X" suffix.
func (f *Frame) PrimarySender() string { return PrimaryName(f.Sender) }

// PrimaryName returns the primary part of a client name, before the first "%%".
func PrimaryName(name string) string {
	if i := strings.Index(name, SecondarySep); i >= 0 {
		return name[:i]
	}
	return name
}
