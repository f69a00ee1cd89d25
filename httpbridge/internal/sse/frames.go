package sse

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// encoding is how a stream writes a message: its transport times three plus its form
// (the record, the data only, the record without user_id). Every publication is encoded at
// most once per encoding and the bytes are shared by all the streams using it.
type encoding uint8

const (
	formRecord = iota // data = the event record
	formData          // data = the event's data (?format=data)
	formAnon          // data = the record without user_id (anonymous streams)
	nForms

	nEncodings = encoding(nTransports) * nForms
)

func encodingOf(t transport, dataOnly, anon bool) encoding {
	f := encoding(formRecord)
	if dataOnly {
		f = formData
	} else if anon {
		f = formAnon
	}
	return encoding(t)*nForms + f
}

// appendEncoded appends m as encoding e (retry: the SSE retry: hint, 0 for none): an SSE
// message, a WebSocket text frame {"id","event","data"}, or that JSON object alone (an
// element of a long-poll reply).
func appendEncoded(dst []byte, e encoding, m *Message, retry int) []byte {
	data := m.Record
	switch e % nForms {
	case formData:
		data = m.Data
	case formAnon:
		data = anonRecord(m)
	}
	switch transport(e / nForms) {
	case tSSE:
		return appendMessage(dst, m.Event, orNull(data), m.IDPrefix, m.Seq, retry)
	case tWS:
		return appendWSFrame(dst, opText, func(b []byte) []byte { return AppendJSONMessageID(b, m.Event, data, m.IDPrefix, m.Seq) })
	}
	return AppendJSONMessageID(dst, m.Event, data, m.IDPrefix, m.Seq)
}

// AppendJSONMessage appends the JSON object a WebSocket frame or a long-poll reply carries for
// one message: {"id":"SEQ","event":NAME,"data":DATA}, without "id" when seq is 0 (an
// ephemeral message). The id is a string, as SSE's is, so that a client keeps one cursor type
// whatever the transport. data is written as it is (it should be compact JSON; empty is
// null), with invalid UTF-8 replaced, so that the frame is valid WebSocket text.
func AppendJSONMessage(dst []byte, event string, data []byte, seq uint64) []byte {
	return AppendJSONMessageID(dst, event, data, "", seq)
}

// AppendJSONMessageID is AppendJSONMessage with the id written as prefix followed by seq (a
// cluster cursor "<epoch>.<seq>" when prefix is "<epoch>."). prefix must need no JSON escaping.
func AppendJSONMessageID(dst []byte, event string, data []byte, prefix string, seq uint64) []byte {
	dst = append(dst, '{')
	if seq != 0 {
		dst = append(dst, `"id":"`...)
		dst = append(dst, prefix...)
		dst = strconv.AppendUint(dst, seq, 10)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"event":`...)
	dst = appendJSONString(dst, event)
	dst = append(dst, `,"data":`...)
	switch {
	case len(data) == 0:
		dst = append(dst, "null"...)
	case utf8.Valid(data):
		dst = append(dst, data...)
	default:
		dst = append(dst, bytes.ToValidUTF8(data, []byte("\uFFFD"))...)
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string (UTF-8 kept, invalid bytes as U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// WebSocket close codes the streams use.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001 // the server shuts down
	CloseProtocolError = 1002
	CloseUnsupported   = 1003 // the client sent a data frame: the stream is one-way
	CloseInvalidData   = 1007 // the client's close reason is not UTF-8
	ClosePolicy        = 1008 // the stream fell too far behind (slow)
	CloseTooBig        = 1009
	CloseSessionKilled = 4001 // the session (or the user) was killed or revoked
	CloseExpired       = 4002 // the credential the stream was opened with expired
)

// appendWSFrame appends one unmasked, final server frame whose payload body appends (a
// server never masks, RFC 6455 §5.1). The header is sized after the payload is known: the
// payload is appended after room for the longest header, then moved into place.
func appendWSFrame(dst []byte, op byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 10)...)
	dst = body(dst)
	n := len(dst) - start - 10
	var h [10]byte
	hl := wsHeader(&h, op, n)
	copy(dst[start+hl:], dst[start+10:])
	copy(dst[start:], h[:hl])
	return dst[:start+hl+n]
}

func wsHeader(h *[10]byte, op byte, n int) int {
	h[0] = 0x80 | op
	switch {
	case n < 126:
		h[1] = byte(n)
		return 2
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		return 4
	}
	h[1] = 127
	binary.BigEndian.PutUint64(h[2:], uint64(n))
	return 10
}

// appendWSClose appends a close frame with code and reason (reason cut to fit 125 bytes).
func appendWSClose(dst []byte, code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return appendWSFrame(dst, opClose, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(code))
		return append(b, reason...)
	})
}

var wsPing = []byte{0x80 | opPing, 0}
