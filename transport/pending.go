package transport

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIncompleteLimit reports a connection closed because the memory for incomplete frames,
// across the server's connections, stayed at Config.IncompleteLimit for as long as the
// connection could wait.
var ErrIncompleteLimit = errors.New("transport: memory for incomplete frames at its limit")

// pending accounts the bytes that a server's connections hold in read buffers grown for
// frames larger than their own (see inbuf), so that their total stays under a cap. A
// connection that would pass it stops reading until others release enough, as a frame
// completes or a connection ends.
type pending struct {
	held    atomic.Int64
	waiters atomic.Int32

	mu    sync.Mutex
	freed chan struct{} // closed by a release while someone waits; guarded by mu
}

// reserve adds n bytes to the total if that leaves it at most limit. Otherwise it waits for
// releases, up to wait: then it fails with ErrIncompleteLimit, or with net.ErrClosed once
// done is closed.
func (p *pending) reserve(n, limit int, wait time.Duration, done <-chan struct{}) error {
	if p.tryReserve(n, limit) {
		return nil
	}
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		// Tried after taking freed: a release from now on closes it, and one before has
		// already lowered the total (release lowers it before it looks for waiters).
		if p.tryReserve(n, limit) {
			return nil
		}
		select {
		case <-freed:
		case <-timer.C:
			return fmt.Errorf("%w (%d bytes): waited %v for %d bytes more", ErrIncompleteLimit, limit, wait, n)
		case <-done:
			return net.ErrClosed
		}
	}
}

func (p *pending) tryReserve(n, limit int) bool {
	for {
		h := p.held.Load()
		if h+int64(n) > int64(limit) {
			return false
		}
		if p.held.CompareAndSwap(h, h+int64(n)) {
			return true
		}
	}
}

// release gives back n bytes and wakes the connections waiting for room.
func (p *pending) release(n int) {
	if n == 0 {
		return
	}
	p.held.Add(-int64(n))
	if p.waiters.Load() > 0 {
		p.mu.Lock()
		if p.freed != nil {
			close(p.freed)
			p.freed = nil
		}
		p.mu.Unlock()
	}
}
