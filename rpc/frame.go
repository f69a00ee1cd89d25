package rpc

import (
	"bytes"
	"encoding/binary"
)

// Payload kinds of RPC frames carried in p2p messages (WIRE.md §8).
const (
	kindNotification byte = 0x00
	kindRequest      byte = 0x01
	kindReply        byte = 0x11
	kindError        byte = 0x12
)

// message is one decoded RPC payload. Its byte fields alias the payload they were parsed
// from.
type message struct {
	kind   byte
	id     uint32
	method []byte // requests
	data   []byte // notification data, request params, reply result, error data
	code   int16  // errors
}

// parse decodes an RPC payload; ok is false for a payload that is no RPC frame: empty, an
// unknown kind, too short for its header, or a request without the zero byte ending its
// method.
func parse(p []byte) (m message, ok bool) {
	if len(p) == 0 {
		return m, false
	}
	m.kind = p[0]
	switch m.kind {
	case kindNotification:
		m.data = p[1:]
		return m, true
	case kindRequest, kindReply, kindError:
	default:
		return m, false
	}
	if len(p) < 5 {
		return m, false
	}
	m.id = binary.LittleEndian.Uint32(p[1:5])
	p = p[5:]
	switch m.kind {
	case kindRequest:
		i := bytes.IndexByte(p, 0)
		if i < 0 {
			return m, false
		}
		m.method, m.data = p[:i], p[i+1:]
	case kindReply:
		m.data = p
	case kindError:
		if len(p) < 2 {
			return m, false
		}
		m.code = int16(binary.LittleEndian.Uint16(p))
		m.data = p[2:]
	}
	return m, true
}

// appendRequest appends a request frame: 01 id method \0 params.
func appendRequest(dst []byte, id uint32, method string, params []byte) []byte {
	dst = append(dst, kindRequest)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = append(dst, method...)
	dst = append(dst, 0)
	return append(dst, params...)
}

// appendReply appends a reply frame: 11 id result.
func appendReply(dst []byte, id uint32, result []byte) []byte {
	dst = append(dst, kindReply)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	return append(dst, result...)
}

// appendError appends an error frame: 12 id code data.
func appendError(dst []byte, id uint32, code int16, data []byte) []byte {
	dst = append(dst, kindError)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(code))
	return append(dst, data...)
}

// appendNotification appends a notification frame: 00 data.
func appendNotification(dst []byte, data []byte) []byte {
	dst = append(dst, kindNotification)
	return append(dst, data...)
}
