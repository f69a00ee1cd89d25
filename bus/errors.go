package bus

import (
	"errors"
	"fmt"
)

// Error is a BUS/RT result code carried as an error value (WIRE.md §5). The routing results of
// an operation that asked for an acknowledgement are returned as these values, so callers test
// them with errors.Is(err, bus.ErrNotRegistered) and friends, and a socket transport turns them
// back into the code byte of an ack.
type Error uint8

// Result codes of the wire protocol. OK (0x01) is not an error and has no value here: an
// operation that succeeded returns nil.
const (
	ErrNotRegistered Error = 0x71 // the target is not registered
	ErrBadData       Error = 0x72 // malformed input: a bad name, topic or frame
	ErrIO            Error = 0x73 // an I/O failure
	ErrOther         Error = 0x74 // any other failure
	ErrNotSupported  Error = 0x75 // the operation or protocol version is not supported
	ErrBusy          Error = 0x76 // the name is already registered
	ErrNotDelivered  Error = 0x77 // the target's queue is full
	ErrTimeout       Error = 0x78 // an operation timed out
	ErrAccessDenied  Error = 0x79 // refused by the access policy
)

// CodeOK is the result code of a successful operation.
const CodeOK byte = 0x01

var errorText = map[Error]string{
	ErrNotRegistered: "not registered",
	ErrBadData:       "bad data",
	ErrIO:            "I/O error",
	ErrOther:         "error",
	ErrNotSupported:  "not supported",
	ErrBusy:          "busy",
	ErrNotDelivered:  "not delivered",
	ErrTimeout:       "timeout",
	ErrAccessDenied:  "access denied",
}

func (e Error) Error() string {
	if s, ok := errorText[e]; ok {
		return s
	}
	return fmt.Sprintf("result code 0x%02x", uint8(e))
}

// Code returns the wire result code of e.
func (e Error) Code() byte { return byte(e) }

// ErrorFromCode returns the error for a wire result code: nil for CodeOK.
func ErrorFromCode(code byte) error {
	if code == CodeOK {
		return nil
	}
	return Error(code)
}

// CodeOf returns the wire result code that reports err: CodeOK for nil, the code of a wrapped
// Error, and ErrOther's code for anything else.
func CodeOf(err error) byte {
	if err == nil {
		return CodeOK
	}
	var e Error
	if errors.As(err, &e) {
		return byte(e)
	}
	return byte(ErrOther)
}

// DeniedError reports the topics of one Subscribe call that the access policy refused; the
// other topics of the call were subscribed. It matches ErrAccessDenied under errors.Is. A socket
// transport acks each refused topic with 0x79 and then the call with 0x01 (WIRE.md §5).
type DeniedError struct {
	Topics []string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("bus: subscribe: access denied to %q", e.Topics)
}

// Is makes errors.Is(err, ErrAccessDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Reasons a client stops. All of them match ErrClosed under errors.Is, so a reader loop can
// test for the end with one comparison and for the cause with another.
var (
	// ErrClosed: the client was closed by its owner (Client.Close). Every other reason below
	// also matches it.
	ErrClosed error = &closeReason{"client closed"}
	// ErrDisconnected: the broker disconnected the client (ForceDisconnect).
	ErrDisconnected error = &closeReason{"client disconnected by the broker"}
	// ErrQueueOverflow: the client's queue was full when a frame was routed to it, so the
	// broker disconnected it as a slow receiver (WIRE.md §7).
	ErrQueueOverflow error = &closeReason{"client disconnected: queue full (slow receiver)"}
	// ErrPrimaryGone: a secondary client's primary unregistered.
	ErrPrimaryGone error = &closeReason{"client disconnected: its primary unregistered"}
	// ErrBrokerClosed: the broker is shut down.
	ErrBrokerClosed error = &closeReason{"broker closed"}
)

type closeReason struct{ s string }

func (e *closeReason) Error() string { return "bus: " + e.s }

func (e *closeReason) Is(target error) bool { return target == ErrClosed }
