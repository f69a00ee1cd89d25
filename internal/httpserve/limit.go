package httpserve

import (
	"bytes"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// refusal is what a connection beyond the cap reads before it is closed.
var refusal = func() []byte {
	body := `{"error":"too many connections to this server: try again soon"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// maxRefusing bounds the goroutines that answer refused connections; beyond it a refused
// connection is closed with no answer.
const maxRefusing = 64

// Limit returns ln accepting at most max connections at once (no cap if max <= 0). A
// connection beyond the cap is not served: when answer is set (plain HTTP; not TLS, whose
// handshake has not happened) it gets a 503 once its request head is in (within a second),
// else it is closed at once; log gets one line when the cap
// is first reached and then at most one every LogEvery, with the count refused since. A
// connection's place is freed when it is closed, hijacked ones included.
func Limit(ln net.Listener, max int, answer bool, name string, log *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	if log == nil {
		log = slog.Default()
	}
	return &limitListener{Listener: ln, max: int64(max), answer: answer, name: name, log: log}
}

type limitListener struct {
	net.Listener
	max      int64
	answer   bool
	name     string
	log      *slog.Logger
	open     atomic.Int64
	refusing atomic.Int64

	mu      sync.Mutex
	refused int64     // since the last log line
	logged  time.Time // when the last line was written
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return l.wrap(c), nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// wrap keeps a TCP connection's concrete type embedded, so that what net does specially for
// it (writev for net.Buffers, sendfile, splice, SyscallConn) still applies.
func (l *limitListener) wrap(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &limitTCPConn{TCPConn: tc, l: l}
	}
	return &limitConn{Conn: c, l: l}
}

func (l *limitListener) release() { l.open.Add(-1) }

func (l *limitListener) refuse(c net.Conn) {
	l.note()
	if !l.answer || l.refusing.Add(1) > maxRefusing {
		if l.answer {
			l.refusing.Add(-1)
		}
		c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		// Read the request's head first: a client answered before it has sent its request
		// takes the answer for a stray one (Go's does) and reports a broken connection.
		c.SetDeadline(time.Now().Add(time.Second))
		var buf [4096]byte
		n := 0
		for n < len(buf) && !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			k, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += k
		}
		if _, err := c.Write(refusal); err != nil {
			return
		}
		// Half-close and let the client read the answer before the connection goes: closing
		// with a request body unread would reset it and could lose the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		for i := 0; i < 16; i++ {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

// note counts a refusal and logs, rate-limited, so that a flood does not flood the log.
func (l *limitListener) note() {
	l.mu.Lock()
	l.refused++
	now := time.Now()
	if !l.logged.IsZero() && now.Sub(l.logged) < LogEvery {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.logged = 0, now
	l.mu.Unlock()
	l.log.Warn("connection limit reached: refusing new connections", "listener", l.name,
		"address", l.Addr().String(), "max_conns", l.max, "refused_since_last_line", n)
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(c.l.release)
	return c.Conn.Close()
}

type limitTCPConn struct {
	*net.TCPConn
	l    *limitListener
	once sync.Once
}

func (c *limitTCPConn) Close() error {
	c.once.Do(c.l.release)
	return c.TCPConn.Close()
}
