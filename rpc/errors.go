package rpc

import (
	"errors"
	"fmt"

	"github.com/rtbus/rtbus/bus"
)

// RPC error codes (WIRE.md §8). A bus result code c travels as -32000 - c: CodeNotRegistered
// is bus.ErrNotRegistered (0x71).
const (
	CodeNotFound       int16 = -32001
	CodeParse          int16 = -32700
	CodeInvalidRequest int16 = -32600
	CodeMethodNotFound int16 = -32601
	CodeInvalidParams  int16 = -32602
	CodeInternal       int16 = -32603
	CodeNotRegistered  int16 = -32000 - int16(bus.ErrNotRegistered) // -32113
	CodeAccessDenied   int16 = -32000 - int16(bus.ErrAccessDenied)
)

// Error is an RPC error: the code and data of an error frame. Handlers return one to answer
// with a code of their choice; Call returns one when the target answered with an error, or
// when the bus refused the request (a bus code c as -32000 - c). Test it with errors.As, or
// with errors.Is against another *Error of the same code or, for bus codes, the bus error
// value (errors.Is(err, bus.ErrNotRegistered)).
type Error struct {
	Code int16
	Data []byte // often a MessagePack value or UTF-8 text; may be empty
}

// Errorf returns an *Error with code and a formatted text as its data.
func Errorf(code int16, format string, args ...any) *Error {
	return &Error{Code: code, Data: []byte(fmt.Sprintf(format, args...))}
}

var codeText = map[int16]string{
	CodeNotFound:       "not found",
	CodeParse:          "parse error",
	CodeInvalidRequest: "invalid request",
	CodeMethodNotFound: "method not found",
	CodeInvalidParams:  "invalid params",
	CodeInternal:       "internal error",
}

func (e *Error) Error() string {
	text, ok := codeText[e.Code]
	if be, isBus := e.busError(); isBus {
		text, ok = be.Error(), true
	}
	if !ok {
		text = "error"
	}
	if len(e.Data) > 0 && printable(e.Data) {
		return fmt.Sprintf("rpc: %s (%d): %s", text, e.Code, e.Data)
	}
	return fmt.Sprintf("rpc: %s (%d)", text, e.Code)
}

// Is matches another *Error with the same code and, for codes that carry a bus result code,
// that bus error value.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t != nil && t.Code == e.Code
	case bus.Error:
		be, ok := e.busError()
		return ok && be == t
	}
	return false
}

func (e *Error) busError() (bus.Error, bool) {
	c := -32000 - int(e.Code)
	if c > 0 && c < 0x100 && c != int(bus.CodeOK) {
		return bus.Error(c), true
	}
	return 0, false
}

// errorOf turns what a handler or the bus returned into the code and data of an error frame:
// an *Error as is, a bus error as -32000 - its code, anything else as CodeInternal with the
// error's text.
func errorOf(err error) (int16, []byte) {
	var re *Error
	if errors.As(err, &re) {
		return re.Code, re.Data
	}
	var be bus.Error
	if errors.As(err, &be) {
		return -32000 - int16(be), nil
	}
	return CodeInternal, []byte(err.Error())
}

// busErr maps a bus error returned by a send to the *Error a caller sees; other errors (the
// client stopped) pass through.
func busErr(err error) error {
	be, ok := err.(bus.Error) // what the bus returns, without errors.As's allocation
	if !ok {
		if be, ok = wrappedBusErr(err); !ok {
			return err
		}
		// A wrapped bus error says more than its code (.broker not served, for one).
		return &Error{Code: -32000 - int16(be), Data: []byte(err.Error())}
	}
	return &Error{Code: -32000 - int16(be)}
}

func wrappedBusErr(err error) (be bus.Error, ok bool) {
	ok = errors.As(err, &be)
	return be, ok
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' {
			return false
		}
	}
	return true
}

// ErrClientClosed is returned by calls on an RPC client that has stopped; it wraps why its
// connection ended, which matches bus.ErrClosed.
var ErrClientClosed = errors.New("rpc: client stopped")
