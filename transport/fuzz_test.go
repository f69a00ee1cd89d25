package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
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
		br := bufio.NewReader(bytes.NewReader(wire))
		var body []byte
		for {
			fr, b, err := readFrame(br, limit, body)
			body = b
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
