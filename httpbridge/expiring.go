package httpbridge

import (
	"crypto/sha256"
	"sync"
	"time"
)

// expiring is a bounded map of entries that expire, keyed by a SHA-256 (of credentials or a
// token: the map never holds a secret, and a lookup compares no secret bytes). It serves the
// caches of checks that cost a bcrypt (basicCache) or a JWT verification (tokenCache). When
// it is full, expired entries go first, then any (map order is random). The zero value is
// empty, with room for max entries once max is set.
type expiring[V any] struct {
	max int

	mu sync.RWMutex
	m  map[[sha256.Size]byte]expiringEntry[V]
}

type expiringEntry[V any] struct {
	v     V
	until time.Time // the entry is gone from then on
}

// get returns the value of k if its entry has not expired at now.
func (c *expiring[V]) get(k [sha256.Size]byte, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && !now.Before(e.until) {
		c.mu.Lock()
		if e, still := c.m[k]; still && !now.Before(e.until) { // not put again meanwhile
			delete(c.m, k)
		}
		c.mu.Unlock()
		var zero V
		return zero, false
	}
	return e.v, ok
}

// put stores v under k until until.
func (c *expiring[V]) put(k [sha256.Size]byte, v V, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]expiringEntry[V])
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for ek, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, ek)
			}
		}
		for ek := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, ek)
		}
	}
	c.m[k] = expiringEntry[V]{v, until}
}

// drop forgets k.
func (c *expiring[V]) drop(k [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// dropIf forgets every entry whose value passes fn.
func (c *expiring[V]) dropIf(fn func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if fn(e.v) {
			delete(c.m, k)
		}
	}
}

func (c *expiring[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
