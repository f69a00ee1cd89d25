package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// clientFrame builds a client frame the way WIRE.md §3 lays it out.
func clientFrame(opID uint32, flags byte, body string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, opID)
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// frameStream reads client frames from r through an inbuf, the way a connection does.
type frameStream struct {
	r   io.Reader
	in  *inbuf
	eof bool
}

func newFrameStream(r io.Reader, limit int) *frameStream {
	return &frameStream{r: r, in: newInbuf(limit)}
}

// next returns the next frame and its body, which alias the buffer until the next call; io.EOF
// at a clean end between frames.
func (s *frameStream) next() (frame, []byte, error) {
	for {
		f, body, ok, err := s.in.frame()
		if err != nil || ok {
			return f, body, err
		}
		if s.eof {
			if s.in.empty() {
				return f, nil, io.EOF
			}
			return f, nil, io.ErrUnexpectedEOF
		}
		n, err := s.r.Read(s.in.room())
		s.in.end += n
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			return f, nil, err
		}
	}
}

func read(t *testing.T, wire []byte, limit int) (frame, error) {
	t.Helper()
	f, _, err := newFrameStream(bytes.NewReader(wire), limit).next()
	return f, err
}

func TestReadFrame(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
		want frame
	}{
		{"publish", clientFrame(7, opPublish|1<<6, "news/a\x00hello"),
			frame{opID: 7, op: opPublish, qos: bus.QoSProcessed, target: "news/a", payload: []byte("hello")}},
		{"publish empty payload", clientFrame(1, opPublish, "t\x00"),
			frame{opID: 1, op: opPublish, target: "t", payload: []byte{}}},
		{"payload with zero bytes", clientFrame(1, opMessage|3<<6, "x\x00a\x00b"),
			frame{opID: 1, op: opMessage, qos: bus.QoSRealtimeProcessed, target: "x", payload: []byte("a\x00b")}},
		{"broadcast", clientFrame(2, opBroadcast|2<<6, "worker.*\x00hi"),
			frame{opID: 2, op: opBroadcast, qos: bus.QoSRealtime, target: "worker.*", payload: []byte("hi")}},
		{"publish-for", clientFrame(3, opPublishFor, "t/1\x00svc\x00p"),
			frame{opID: 3, op: opPublishFor, target: "t/1", receiver: "svc", payload: []byte("p")}},
		{"subscribe list", clientFrame(4, opSubscribe|1<<6, "a/#\x00b/+\x00"),
			frame{opID: 4, op: opSubscribe, qos: bus.QoSProcessed, topics: []string{"a/#", "b/+", ""}}},
		{"subscribe one", clientFrame(5, opUnsubscribe, "a"),
			frame{opID: 5, op: opUnsubscribe, topics: []string{"a"}}},
		{"exclude empty body", clientFrame(6, opExclude, ""),
			frame{opID: 6, op: opExclude, topics: []string{""}}},
		{"unexclude", clientFrame(6, opUnexclude, "x\x00y"),
			frame{opID: 6, op: opUnexclude, topics: []string{"x", "y"}}},
		{"ping ignores the length", []byte{1, 2, 3, 4, 0, 0xff, 0xff, 0xff, 0xff},
			frame{opID: 0x04030201, ping: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := read(t, c.wire, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
		want error
	}{
		{"unknown op", clientFrame(1, 0x07, "x\x00y"), ErrFrame},
		{"publish without zero byte", clientFrame(1, opPublish, "topic"), ErrFrame},
		{"message without zero byte", clientFrame(1, opMessage, ""), ErrFrame},
		{"publish-for missing receiver separator", clientFrame(1, opPublishFor, "t\x00r"), ErrFrame},
		{"topic not UTF-8", clientFrame(1, opPublish, "\xff\x00p"), ErrFrame},
		{"subscribe not UTF-8", clientFrame(1, opSubscribe, "a\x00\xc3"), ErrFrame},
		{"over the limit", clientFrame(1, opPublish, "t\x00"+string(make([]byte, 100))), ErrFrameTooLarge},
		{"short header", []byte{1, 2, 3}, io.ErrUnexpectedEOF},
		{"short body", clientFrame(1, opPublish, "t\x00abc")[:12], io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(t, c.wire, 64)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestHugeLengthAllocatesNothing: a 4 GiB length field is refused from the header alone.
func TestHugeLengthAllocatesNothing(t *testing.T) {
	wire := []byte{1, 0, 0, 0, opPublish, 0xff, 0xff, 0xff, 0xff}
	in := newInbuf(1 << 20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		in.start, in.end = 0, copy(in.room(), wire)
		if _, _, _, err := in.frame(); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	// Only the error values are allocated: nothing sized by the length field.
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 100; perCall > 1024 {
		t.Fatalf("%d bytes allocated per refused frame", perCall)
	}
}

// TestStreamBoundaries: frames split one byte per read, and many frames in one read, decode
// the same.
func TestStreamBoundaries(t *testing.T) {
	var wire []byte
	var want []frame
	for i := range 50 {
		wire = append(wire, clientFrame(uint32(i), opMessage|1<<6, "peer\x00payload")...)
		want = append(want, frame{opID: uint32(i), op: opMessage, qos: bus.QoSProcessed, target: "peer", payload: []byte("payload")})
		wire = append(wire, 0, 0, 0, 0, 0, 0, 0, 0, 0) // a ping between frames
		want = append(want, frame{ping: true})
	}
	for name, r := range map[string]io.Reader{
		"one byte per read": iotest.OneByteReader(bytes.NewReader(wire)),
		"all in one read":   bytes.NewReader(wire),
	} {
		t.Run(name, func(t *testing.T) {
			fs := newFrameStream(r, 1024)
			for i, w := range want {
				f, _, err := fs.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(f, w) {
					t.Fatalf("frame %d: got %+v, want %+v", i, f, w)
				}
			}
			if _, _, err := fs.next(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, c := range []struct {
		name string
		f    bus.Frame
		want []byte
	}{
		{"message", bus.Frame{Kind: bus.KindMessage, Sender: "a%%1", Payload: []byte("hi")},
			[]byte("\x12\x07\x00\x00\x00\x00a%%1\x00hi")},
		{"broadcast realtime", bus.Frame{Kind: bus.KindBroadcast, Sender: "s", Payload: nil, Realtime: true},
			[]byte("\x13\x02\x00\x00\x00\x01s\x00")},
		{"publish", bus.Frame{Kind: bus.KindPublish, Sender: "s", Topic: "t/1", Payload: []byte("p")},
			[]byte("\x01\x07\x00\x00\x00\x00s\x00t/1\x00p")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := appendFrame(nil, &c.f); !bytes.Equal(got, c.want) {
				t.Fatalf("got % x\nwant % x", got, c.want)
			}
		})
	}
	if got := appendAck(nil, 0x04030201, 0x79); !bytes.Equal(got, []byte{0xfe, 1, 2, 3, 4, 0x79}) {
		t.Fatalf("ack: % x", got)
	}
	// An ack queued through the bus encodes the same way.
	b := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)))
	defer b.Close()
	c, err := b.RegisterClient("c")
	if err != nil {
		t.Fatal(err)
	}
	c.PushAck(0x04030201, 0x79, true)
	f, err := c.Recv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := appendFrame(nil, &f); !bytes.Equal(got, []byte{0xfe, 1, 2, 3, 4, 0x79}) {
		t.Fatalf("queued ack: % x", got)
	}
	if got := appendPing(nil); !bytes.Equal(got, make([]byte, 6)) {
		t.Fatalf("ping: % x", got)
	}
}

func TestAppendFrameAllocatesNothing(t *testing.T) {
	f := bus.Frame{Kind: bus.KindPublish, Sender: "sender", Topic: "news/today", Payload: make([]byte, 100)}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(1000, func() { buf = appendFrame(buf[:0], &f) }); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}

func BenchmarkReadFrame(b *testing.B) {
	one := clientFrame(1, opMessage, "target\x00"+string(make([]byte, 100)))
	wire := bytes.Repeat(one, 1024)
	r := bytes.NewReader(wire)
	fs := newFrameStream(r, 1<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			r.Reset(wire)
		}
		if _, _, err := fs.next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// TestDetach: a detached frame survives the reuse of the read buffer.
func TestDetach(t *testing.T) {
	in := newInbuf(1024)
	in.end = copy(in.room(), clientFrame(1, opPublishFor, "t/1\x00svc\x00payload"))
	f, body, _, err := in.frame()
	if err != nil {
		t.Fatal(err)
	}
	f.detach(body, nil)
	copy(in.buf, bytes.Repeat([]byte("X"), len(in.buf))) // the buffer reused
	if f.target != "t/1" || f.receiver != "svc" || string(f.payload) != "payload" {
		t.Fatalf("detached frame changed: %+v", f)
	}
}

// TestInbufLargeFrames: frames larger than the read buffer grow it, frames around them
// decode intact, and a grown buffer is given up once its frame is taken.
func TestInbufLargeFrames(t *testing.T) {
	sizes := []int{10, 100 << 10, 10, inbufSize - clientHeaderLen - 3, 3 << 19, 10, 10}
	var wire []byte
	for i, n := range sizes {
		payload := bytes.Repeat([]byte{byte(i + 1)}, n)
		wire = append(wire, clientFrame(uint32(i), opMessage, "t\x00"+string(payload))...)
	}
	for name, r := range map[string]io.Reader{
		"half reads":     iotest.HalfReader(bytes.NewReader(wire)),
		"one big read":   bytes.NewReader(wire),
		"4 KiB per read": &chunked{wire, 4 << 10},
	} {
		t.Run(name, func(t *testing.T) {
			fs := newFrameStream(r, 4<<20)
			for i, n := range sizes {
				f, _, err := fs.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.opID != uint32(i) || len(f.payload) != n || !bytes.Equal(f.payload, bytes.Repeat([]byte{byte(i + 1)}, n)) {
					t.Fatalf("frame %d: id %d, %d bytes, want %d", i, f.opID, len(f.payload), n)
				}
				if need := n + 2 + clientHeaderLen; need > inbufSize && len(fs.in.buf) < need {
					t.Fatalf("frame %d of %d bytes read into a buffer of %d", i, n, len(fs.in.buf))
				}
				if i > 0 && sizes[i-1] > inbufSize && n < inbufSize/2 && len(fs.in.buf) > inbufSize {
					t.Fatalf("after a frame of %d bytes the buffer is %d bytes, want at most %d", sizes[i-1], len(fs.in.buf), inbufSize)
				}
			}
			if _, _, err := fs.next(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

// TestInbufOwnBuffer: a connection's own buffer stays small for a client that sends a frame
// at a time, and grows to inbufSize, and no further, for one whose reads fill it.
func TestInbufOwnBuffer(t *testing.T) {
	one := clientFrame(1, opMessage, "t\x00"+strings.Repeat("x", 100))
	for _, c := range []struct {
		name    string
		perRead int // frames per read, at most: 0 fills the room
		want    int
	}{{"one frame per read", 1, firstInbuf}, {"reads that fill the buffer", 0, inbufSize}} {
		in := newInbuf(1 << 20)
		wire := bytes.Repeat(one, 2000)
		for len(wire) > 0 {
			room := in.room()
			if c.perRead > 0 {
				room = room[:min(len(room), c.perRead*len(one))]
			}
			n := copy(room, wire)
			wire = wire[n:]
			in.end += n
			for {
				_, _, ok, err := in.frame()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
		}
		if len(in.buf) != c.want {
			t.Errorf("%s: buffer of %d bytes, want %d", c.name, len(in.buf), c.want)
		}
	}
}

// TestInbufGrowsWithArrival: a header announcing the largest frame costs nothing beyond
// the connection's own buffer; as the body arrives, the buffer is never more than twice what
// has arrived, and each growth is reserved in the pending account, which gets it all back.
func TestInbufGrowsWithArrival(t *testing.T) {
	const limit = 16 << 20
	body := append([]byte("t\x00"), bytes.Repeat([]byte("x"), limit-2)...)
	wire := clientFrame(7, opMessage, string(body))
	var p pending
	in := newInbuf(limit)
	arrived := 0
	for step := 1; ; step++ {
		f, got, ok, err := in.frame()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if f.opID != 7 || !bytes.Equal(got, body) {
				t.Fatalf("frame %d with %d bytes, want 7 with %d", f.opID, len(got), len(body))
			}
			break
		}
		if in.grow > inbufSize {
			if err := in.reserve(&p, limit+clientHeaderLen, time.Second, nil); err != nil {
				t.Fatal(err)
			}
		}
		room := in.room()
		if len(in.buf) > max(firstInbuf, 2*arrived) {
			t.Fatalf("%d bytes arrived, buffer of %d", arrived, len(in.buf))
		}
		if held := int(p.held.Load()); len(in.buf) > inbufSize && held != len(in.buf) {
			t.Fatalf("buffer of %d bytes, %d reserved", len(in.buf), held)
		}
		// A trickle first, then reads as large as the room.
		n := copy(room[:min(len(room), max(1, step-100)*1000)], wire[arrived:])
		in.end += n
		arrived += n
	}
	in.room() // the frame is taken: the connection's own buffer again
	if len(in.buf) != inbufSize || p.held.Load() != 0 {
		t.Fatalf("after the frame: buffer of %d bytes, %d reserved", len(in.buf), p.held.Load())
	}
}

// chunked reads at most n bytes at a time.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
