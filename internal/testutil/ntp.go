package testutil

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// NTPServer is a minimal NTPv4 server on 127.0.0.1 whose clock runs Skew ahead of the local
// one, so that tests of an NTP-disciplined clock never reach a public server. With Mute set
// it reads queries and answers none.
type NTPServer struct {
	Addr    string // 127.0.0.1:port
	Skew    atomic.Int64
	Mute    atomic.Bool
	Queries atomic.Int64
}

// StartNTPServer serves until the test ends.
func StartNTPServer(t testing.TB, skew time.Duration) *NTPServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &NTPServer{Addr: c.LocalAddr().String()}
	s.Skew.Store(int64(skew))
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, addr, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			s.Queries.Add(1)
			if n < 48 || s.Mute.Load() {
				continue
			}
			now := time.Now().Add(time.Duration(s.Skew.Load()))
			var p [48]byte
			p[0] = 4<<3 | 4 // no leap warning, version 4, server mode
			p[1] = 2        // stratum: synchronized to a primary server
			p[2] = 6        // poll
			p[3] = 0xEC     // precision 2^-20 s
			copy(p[12:16], "TEST")
			binary.BigEndian.PutUint64(p[16:], ntpTime(now.Add(-time.Second))) // reference time
			copy(p[24:32], buf[40:48])                                         // origin = the client's transmit time
			binary.BigEndian.PutUint64(p[32:], ntpTime(now))                   // receive
			binary.BigEndian.PutUint64(p[40:], ntpTime(now))                   // transmit
			c.WriteTo(p[:], addr)
		}
	}()
	return s
}

func ntpTime(t time.Time) uint64 {
	const epochOffset = 2208988800 // seconds from 1900 (NTP era 0) to 1970
	sec := uint64(t.Unix() + epochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}
