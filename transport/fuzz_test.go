package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/rtbus/rtbus/bus"
)

// FuzzReadFrame: any byte stream decodes to frames or a clean error, never a panic, never a
// body over the limit, and every decoded frame's fields re-assemble into its body.
func FuzzReadFrame(f *testing.F) {
	f.Add(clientFrame(1, opPublish|1<<6, "news/a\x00hello"))
	f.Add(clientFrame(2, opPublishFor, "t\x00r\x00p"))
	f.Add(clientFrame(3, opSubscribe, "a/#\x00b"))
	f.Add(clientFrame(4, opMessage, "x\x00"))
	f.Add([]byte{1, 0, 0, 0, opPublish, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0, 9, 9, 9, 9})
	const limit = 256
	f.Fuzz(func(t *testing.T, wire []byte) {
		// Reads of varying sizes, so that frames straddle reads and the buffer moves them.
		fs := newFrameStream(iotest.HalfReader(bytes.NewReader(wire)), limit)
		for {
			fr, body, err := fs.next()
			if err != nil {
				if !errors.Is(err, ErrFrame) && !errors.Is(err, ErrFrameTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if fr.ping {
				continue
			}
			if len(body) > limit {
				t.Fatalf("body of %d bytes over the limit", len(body))
			}
			var again string
			switch fr.op {
			case opPublish, opMessage, opBroadcast:
				again = fr.target + "\x00" + string(fr.payload)
			case opPublishFor:
				again = fr.target + "\x00" + fr.receiver + "\x00" + string(fr.payload)
			default:
				again = strings.Join(fr.topics, "\x00")
			}
			if again != string(body) {
				t.Fatalf("fields %+v do not re-assemble body %q", fr, body)
			}
			if !utf8.ValidString(fr.target) || !utf8.ValidString(fr.receiver) {
				t.Fatalf("invalid UTF-8 let through: %+v", fr)
			}
		}
	})
}

// FuzzHandshake: any bytes from a client, as the start of a connection, run through the real
// server code (handshake, then frames) over a synchronous in-memory pipe: no panic, the
// connection ends once the client hangs up, and it leaves no client registered. Lengths are
// bounded by the protocol (a name is at most 64 KiB) and by the payload limit.
func FuzzHandshake(f *testing.F) {
	ok := []byte{0xEB, 0x01, 0x00}
	f.Add(ok)
	f.Add(append(append([]byte{}, ok...), nameBytes("plugin")...))
	f.Add(append(append(append([]byte{}, ok...), nameBytes("plugin")...), clientFrame(1, opSubscribe|1<<6, "a/#")...))
	f.Add(append(append([]byte{}, ok...), nameBytes(".broker")...))
	f.Add(append(append([]byte{}, ok...), nameBytes("x%%1")...))
	f.Add(append(append([]byte{}, ok...), 0, 0))
	f.Add(append(append([]byte{}, ok...), 2, 0, 0xff, 0xfe))
	f.Add(append(append([]byte{}, ok...), 0xff, 0xff, 'a'))
	f.Add([]byte{0xEB, 0x02, 0x00})
	f.Add([]byte{})
	b := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)))
	defer b.Close()
	s := NewServer(b)
	cfg := Config{Timeout: 5 * time.Second, PayloadLimit: 4096, FlushDelay: -1,
		Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	src := netip.MustParseAddrPort("127.0.0.1:1")
	f.Fuzz(func(t *testing.T, in []byte) {
		srv, cli := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.handle(newSock(srv), bus.KindTCP, "fuzz", src, cfg)
		}()
		go io.Copy(io.Discard, cli) // the greeting, answers, acks
		cli.Write(in)               // an error: the server closed first
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection still served after the client hung up")
		}
		if n := len(b.Clients()); n != 1 { // .broker alone
			t.Fatalf("%d clients registered after the connection ended", n)
		}
	})
}

// FuzzClientRead: any bytes from a broker, from the greeting on, make the Go client either
// refuse the handshake or deliver frames whose fields are well-formed, until the stream
// ends; never a panic, and no body over MaxFrame is allocated.
func FuzzClientRead(f *testing.F) {
	hello := []byte{0xEB, 0x01, 0x00, 0x01, 0x01}
	frame := func(kind byte, body string) []byte {
		b := append([]byte{kind}, binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		return append(append(b, 1), body...)
	}
	f.Add(hello)
	f.Add(append(append([]byte{}, hello...), frame(0x12, "a\x00hi")...))
	f.Add(append(append([]byte{}, hello...), frame(0x01, "a\x00t/1\x00x")...))
	f.Add(append(append([]byte{}, hello...), 0xFE, 1, 0, 0, 0, 0x71, 0, 0, 0, 0, 0, 0))
	f.Add(append(append([]byte{}, hello...), 0x12, 0xff, 0xff, 0xff, 0xff, 0))
	f.Add([]byte{0xEB, 0x01, 0x00, 0x76})
	const maxFrame = 1 << 12
	opts := DialOptions{Timeout: 5 * time.Second, QueueSize: 16, FlushDelay: -1, WriteBuffer: 512, MaxFrame: maxFrame}
	f.Fuzz(func(t *testing.T, in []byte) {
		broker, cli := net.Pipe()
		go io.Copy(io.Discard, broker) // the client's echo, name and pings
		go func() {
			broker.Write(in)
			broker.Close()
		}()
		c, err := newClient(cli, "fuzz", opts)
		if err != nil {
			cli.Close()
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			fr, err := c.Recv(ctx)
			if err != nil {
				if !errors.Is(err, bus.ErrClosed) {
					t.Fatalf("Recv: %v", err)
				}
				return
			}
			if len(fr.Payload)+len(fr.Sender)+len(fr.Topic) > maxFrame {
				t.Fatalf("frame over MaxFrame: %d bytes", len(fr.Payload))
			}
			if !utf8.ValidString(fr.Sender) || !utf8.ValidString(fr.Topic) {
				t.Fatalf("invalid UTF-8 delivered: %+v", fr)
			}
			switch fr.Kind {
			case bus.KindPublish, bus.KindMessage, bus.KindBroadcast:
			default:
				t.Fatalf("kind %v delivered", fr.Kind)
			}
		}
	})
}
