package testutil

import (
	"bufio"
	"io"
	"strings"
)

// SSEMessage is one Server-Sent Events message as a strict client (broker-client) parses
// it: the fields it reads, and whether a retry field came with it.
type SSEMessage struct {
	Event, Data, ID string
	Retry           bool
}

// ReadSSE reads the messages of an SSE stream from r, in order, until it ends or fails,
// calling fn for each one (keep-alives included); lines may be up to 4 MiB long.
func ReadSSE(r io.Reader, fn func(SSEMessage)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	var m SSEMessage
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			fn(m)
			m = SSEMessage{}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "event":
			m.Event = v
		case "data":
			m.Data = v
		case "id":
			m.ID = v
		case "retry":
			m.Retry = true
		}
	}
	return sc.Err()
}
