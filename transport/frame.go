package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/rtbus/rtbus/bus"
)

// Handshake bytes (WIRE.md §2).
const (
	greeting        = 0xEB
	protocolVersion = 1
)

// Op codes of client frames (WIRE.md §3).
const (
	opPublish     = 0x01
	opSubscribe   = 0x02
	opUnsubscribe = 0x03
	opExclude     = 0x04
	opUnexclude   = 0x05
	opPublishFor  = 0x06
	opMessage     = 0x12
	opBroadcast   = 0x13
)

// Kind bytes of broker frames (WIRE.md §4) beyond the bus.Kind values.
const (
	kindPing = 0x00
	kindAck  = 0xFE
)

const (
	clientHeaderLen = 9
	serverHeaderLen = 6
)

// ErrFrame reports a malformed client frame; the connection that sent it is dropped.
var ErrFrame = errors.New("transport: malformed frame")

// ErrFrameTooLarge reports a frame body over the listener's payload limit.
var ErrFrameTooLarge = errors.New("transport: frame body over the payload limit")

// frame is one decoded client frame. Its target, receiver and payload alias the read buffer,
// so that decoding allocates nothing; detach gives the frame storage of its own before the
// buffer is reused.
type frame struct {
	opID     uint32
	op       byte
	qos      bus.QoS
	ping     bool
	target   string   // message target, broadcast mask, or publication topic
	receiver string   // publish-for receiver
	topics   []string // subscribe, unsubscribe, exclude, unexclude
	payload  []byte
}

// parseFrame decodes the client frame at the start of p. n is its length; its body is
// p[clientHeaderLen:n], which its fields alias. n == 0 means that p holds less than a whole
// frame, and need is then what the frame needs in all (a header's length while the header is
// incomplete). A length field over limit is refused before anything is allocated for it, so
// a 4 GiB length costs nothing; one within the limit costs nothing either until its bytes
// arrive (see inbuf).
func parseFrame(p []byte, limit int) (f frame, n, need int, err error) {
	if len(p) < clientHeaderLen {
		return f, 0, clientHeaderLen, nil
	}
	f.opID = binary.LittleEndian.Uint32(p[0:4])
	flags := p[4]
	if flags == 0 {
		f.ping = true // the length is ignored and no body follows
		return f, clientHeaderLen, clientHeaderLen, nil
	}
	f.op, f.qos = flags&0x3F, bus.QoS(flags>>6)
	size := binary.LittleEndian.Uint32(p[5:9])
	if uint64(size) > uint64(limit) {
		return f, 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, limit)
	}
	need = clientHeaderLen + int(size)
	if len(p) < need {
		return f, 0, need, nil
	}
	return f, need, need, decodeBody(&f, p[clientHeaderLen:need:need])
}

// inbuf holds what a connection read and has not yet routed: a reader reads into room and
// adds the count to end, then takes the complete frames with frame. Frames alias the buffer
// until the next call of room.
//
// Memory follows the bytes that arrived, never the length a header announces. The
// connection's own buffer starts small and doubles, up to inbufSize, each time a read fills
// it: a client that streams gets large reads, one that waits for answers keeps a small
// buffer. A frame larger than the buffer is read into it until it is full, and only then into
// a buffer twice as large (at most the frame's size), and so on, so that a buffer is at most
// twice what has arrived. Once a frame larger than inbufSize is taken, the connection goes
// back to its own buffer and the grown one to the garbage collector. A reader that accounts
// for buffers over inbufSize (Server.read) reserves each such growth with reserve between
// frame and room.
type inbuf struct {
	buf        []byte
	start, end int // buf[start:end] is read and not yet taken
	need       int // what the frame at start needs in all
	limit      int // the payload limit

	base []byte   // the connection's own buffer, set aside while buf is larger than inbufSize
	grow int      // when > 0, the size buf grows to before the next read
	pool *pending // where held is accounted, once reserve has been called
	held int      // bytes of a buf over inbufSize (or of the growth to come) reserved from pool
}

// A connection's own read buffer starts at firstInbuf bytes and grows to at most inbufSize,
// enough for the frames of most reads: only a frame larger than that grows it further.
const (
	firstInbuf = 8 << 10
	inbufSize  = 64 << 10
)

// minRoom is the least room a read gets before the unread bytes move to the buffer's start.
const minRoom = 4 << 10

func newInbuf(limit int) *inbuf {
	return &inbuf{buf: make([]byte, firstInbuf), need: clientHeaderLen, limit: limit}
}

// room returns where the next read goes: never empty.
func (b *inbuf) room() []byte {
	if b.start == b.end {
		b.start, b.end = 0, 0
	}
	switch {
	case b.grow > 0: // a read filled the buffer: a larger one takes it on
		grown := make([]byte, b.grow)
		b.end = copy(grown, b.buf[b.start:b.end])
		if b.grow > inbufSize && b.base == nil {
			b.base = b.buf
		}
		b.start, b.grow, b.buf = 0, 0, grown
	case b.base != nil && b.need <= len(b.base) && b.end-b.start <= len(b.base)-minRoom:
		// The large frame is taken, and what follows fits the connection's own buffer.
		b.end = copy(b.base, b.buf[b.start:b.end])
		b.start = 0
		b.buf, b.base = b.base, nil
		b.free()
	case b.start > 0 && (len(b.buf)-b.start < b.need || len(b.buf)-b.end < minRoom):
		b.end = copy(b.buf, b.buf[b.start:b.end])
		b.start = 0
	}
	return b.buf[b.end:]
}

// frame takes the next complete frame and its body; ok is false if none is complete yet.
func (b *inbuf) frame() (f frame, body []byte, ok bool, err error) {
	var n int
	if f, n, b.need, err = parseFrame(b.buf[b.start:b.end], b.limit); err != nil || n == 0 {
		switch {
		case err != nil:
		case b.end-b.start == len(b.buf) && b.need > len(b.buf):
			b.grow = min(b.need, 2*len(b.buf)) // full, and the frame needs more
		case b.end == len(b.buf) && len(b.buf) < inbufSize:
			b.grow = min(2*len(b.buf), inbufSize) // the client streams: larger reads
		}
		return f, nil, false, err
	}
	body = b.buf[b.start+clientHeaderLen : b.start+n : b.start+n]
	b.start += n
	b.need = clientHeaderLen
	return f, body, true, nil
}

// reserve accounts the growth past inbufSize that frame decided (b.grow > inbufSize) in p,
// waiting up to wait, or until done is closed, for the total to leave room under limit (see
// pending.reserve).
func (b *inbuf) reserve(p *pending, limit int, wait time.Duration, done <-chan struct{}) error {
	if err := p.reserve(b.grow-b.held, limit, wait, done); err != nil {
		return err
	}
	b.pool, b.held = p, b.grow
	return nil
}

// free gives back what the buffer has reserved: when it returns to its own buffer, and
// when the connection ends.
func (b *inbuf) free() {
	if b.pool != nil {
		b.pool.release(b.held)
	}
	b.held = 0
}

// empty reports whether everything read has been taken.
func (b *inbuf) empty() bool { return b.start == b.end }

// detach makes f independent of the read buffer, copying its body into s: the bus keeps
// topics and payloads beyond the next read. A nil s allocates the copy on its own. It returns
// the Ref the routed frames must hold, if any.
func (f *frame) detach(body []byte, s *slab) *bus.Ref {
	if f.ping || len(body) == 0 {
		return nil
	}
	body, ref := s.clone(body)
	decodeBody(f, body) // decoded once already: cannot fail
	return ref
}

// slab hands out copies of frame bodies carved from shared blocks, so that routing a frame
// allocates nothing once blocks are recycled. Each block carries a bus.Ref: the slab holds
// its current block, every queued frame from it holds it once more, and the connection
// writers release their frames once written, so a block whose frames have all gone out
// returns to blockPool instead of to the garbage collector. A frame kept by an in-process
// receiver or dropped with a queue never releases its block, which then stays out of the
// pool and is collected like any other memory.
type slab struct{ cur *block }

type block struct {
	buf []byte
	ref *bus.Ref
}

// slabBlock is the size of a slab's blocks; bodies over a quarter of it get their own. It is
// small because one queued frame keeps its whole block: a slow client's queue of 8192 frames
// can pin at most 8192 blocks, 32 MiB.
const slabBlock = 4 << 10

var blockPool sync.Pool

func init() { blockPool.New = newBlock }

func newBlock() any {
	b := &block{buf: make([]byte, 0, slabBlock)}
	b.ref = bus.NewRef(func() {
		b.buf = b.buf[:0]
		b.ref.Reset()
		blockPool.Put(b)
	})
	return b
}

// clone copies b into the current block, or on its own for a nil s or a large b, and
// returns the Ref that frames routed with the copy must hold (nil for a copy of its own).
func (s *slab) clone(b []byte) ([]byte, *bus.Ref) {
	if s == nil || len(b) > slabBlock/4 {
		return bytes.Clone(b), nil
	}
	if s.cur == nil || cap(s.cur.buf)-len(s.cur.buf) < len(b) {
		s.release()
		s.cur = blockPool.Get().(*block)
	}
	buf := s.cur.buf
	n := len(buf)
	buf = append(buf, b...)
	s.cur.buf = buf
	return buf[n:len(buf):len(buf)], s.cur.ref // capped: an append by a receiver cannot reach the next body
}

// release drops the slab's own hold on its block: what is queued from it keeps it alive.
func (s *slab) release() {
	if s.cur != nil {
		s.cur.ref.Release()
		s.cur = nil
	}
}

// decodeBody splits a frame body by its op code (WIRE.md §3).
func decodeBody(f *frame, body []byte) error {
	var ok bool
	switch f.op {
	case opPublish, opMessage, opBroadcast:
		if f.target, f.payload, ok = cutText(body); !ok {
			return fmt.Errorf("%w: op 0x%02x: want name or topic, zero byte, payload", ErrFrame, f.op)
		}
	case opPublishFor:
		var rest []byte
		if f.target, rest, ok = cutText(body); ok {
			f.receiver, f.payload, ok = cutText(rest)
		}
		if !ok {
			return fmt.Errorf("%w: publish-for: want topic, zero byte, receiver, zero byte, payload", ErrFrame)
		}
	case opSubscribe, opUnsubscribe, opExclude, opUnexclude:
		if !utf8.Valid(body) {
			return fmt.Errorf("%w: op 0x%02x: topics not valid UTF-8", ErrFrame, f.op)
		}
		f.topics = strings.Split(string(body), "\x00")
	default:
		return fmt.Errorf("%w: unknown op code 0x%02x", ErrFrame, f.op)
	}
	return nil
}

// cutText splits b at its first zero byte into valid UTF-8 text and the rest.
func cutText(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			if !utf8.Valid(b[:i]) {
				return "", nil, false
			}
			return unsafe.String(unsafe.SliceData(b), i), b[i+1:], true
		}
	}
	return "", nil, false
}

// appendFrame appends a delivered frame, or an ack the connection queued for itself, in the
// broker's layout (WIRE.md §4).
func appendFrame(dst []byte, f *bus.Frame) []byte {
	if f.Kind == bus.KindAck {
		opID, code := f.Ack()
		return appendAck(dst, opID, code)
	}
	n := len(f.Sender) + 1 + len(f.Payload)
	if f.Kind == bus.KindPublish {
		n += len(f.Topic) + 1
	}
	var rt byte
	if f.Realtime {
		rt = 1
	}
	dst = append(dst, byte(f.Kind))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, rt)
	dst = append(dst, f.Sender...)
	dst = append(dst, 0)
	if f.Kind == bus.KindPublish {
		dst = append(dst, f.Topic...)
		dst = append(dst, 0)
	}
	return append(dst, f.Payload...)
}

// appendAck appends an acknowledgement: FE, the op id verbatim, the result code.
func appendAck(dst []byte, opID uint32, code byte) []byte {
	dst = append(dst, kindAck)
	dst = binary.LittleEndian.AppendUint32(dst, opID)
	return append(dst, code)
}

// appendPing appends a broker ping: six zero bytes.
func appendPing(dst []byte) []byte {
	return append(dst, kindPing, 0, 0, 0, 0, 0)
}
