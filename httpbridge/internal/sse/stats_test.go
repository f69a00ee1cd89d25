package sse_test

import (
	"fmt"
	"testing"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// TestStatsCountEveryMessageWritten: Stats counts the messages streams wrote, backlog
// included, whether the stream is still open or has ended since (each stream counts its own;
// the hub keeps the count of those that left).
func TestStatsCountEveryMessageWritten(t *testing.T) { bothModes(t, testStatsCountEveryMessageWritten) }

func testStatsCountEveryMessageWritten(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{}, m)
	s.log.publish("t", "n", "1")
	s.log.publish("t", "n", "2")
	var cs []*client
	for i := range 3 {
		cs = append(cs, s.connect(t, fmt.Sprintf("tenant=t&user=u%d&after=0", i))) // the backlog: 2 messages each
	}
	s.waitStreams(t, 3)
	s.log.publish("t", "n", "3")
	for _, c := range cs {
		for range 3 {
			c.next(t)
		}
	}
	want := uint64(3 * 3)
	if got := s.hub.Stats().Messages[sse.TransportSSE]; got != want {
		t.Fatalf("%d messages counted with %d written", got, want)
	}

	s.hub.CloseUser("u0") // ends cs[0]
	s.waitStreams(t, 2)
	if got := s.hub.Stats().Messages[sse.TransportSSE]; got != want {
		t.Fatalf("%d messages counted once a stream ended, want still %d", got, want)
	}
	s.log.publish("t", "n", "4")
	for _, c := range cs[1:] {
		c.next(t)
	}
	want += 2
	if got := s.hub.Stats().Messages[sse.TransportSSE]; got != want {
		t.Fatalf("%d messages counted, want %d", got, want)
	}
}
