package httpbridge_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkPoll: one long-poll round trip over a kept-alive HTTP/1.1 connection (a raw
// client in this process), with ?wait=0 so that each poll answers at once with what it has:
// "again" polls again on its connection with the last reply's cursor (answered from the
// connection's hold, its token checked once), "fresh" polls without ?conn= each time (the
// token verified, the log read). cpu-ns/op and allocs/op include the client's small share.
func BenchmarkPoll(b *testing.B) {
	for _, again := range []bool{true, false} {
		name := "fresh"
		if again {
			name = "again"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, nil)
			u := e.signup("ann", "acme")
			e.insert(u, map[string]any{"event": "x", "data": 1})
			addr := strings.TrimPrefix(e.url, "http://")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			head := "GET /poll/acme?wait=0&token=" + url.QueryEscape(u.token)
			tail := " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
			var req, body []byte
			cursor, conn := "", ""
			poll := func() {
				req = append(append(req[:0], head...), tail...)
				if again && cursor != "" {
					req = append(append(req[:0], head...), "&last_event_id="+cursor+"&conn="+conn...)
					req = append(req, tail...)
				} else if cursor != "" {
					req = append(append(req[:0], head...), "&last_event_id="+cursor...)
					req = append(req, tail...)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				body, err = readPollReply(br, body[:0])
				if err != nil {
					b.Fatal(err)
				}
				cursor, conn = jsonField(body, "last_event_id"), jsonField(body, "conn")
			}
			poll()
			poll()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for b.Loop() {
				poll()
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// readPollReply reads one 200 response with a Content-Length and returns its body.
func readPollReply(br *bufio.Reader, b []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return b, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return b, fmt.Errorf("status %q", line)
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return b, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(k) == "Content-Length" {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n < 0 {
		return b, fmt.Errorf("no Content-Length")
	}
	b = append(b[:0], make([]byte, n)...)
	_, err = io.ReadFull(br, b)
	return b, err
}

// jsonField is the value of the string field name in a flat reply.
func jsonField(b []byte, name string) string {
	k := bytes.Index(b, []byte(`"`+name+`":"`))
	if k < 0 {
		return ""
	}
	v := b[k+len(name)+4:]
	return string(v[:bytes.IndexByte(v, '"')])
}
