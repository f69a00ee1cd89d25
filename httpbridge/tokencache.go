package httpbridge

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxCachedTokens bounds tokenCache (about 200 bytes an entry).
const maxCachedTokens = 16384

// tokenCache remembers tokens whose signature and claims passed, until they expire, so that
// a client that sends the same token with each request (a long-poller, an inserting
// back end) pays for the JWT's decoding and signature once. A hit stands only for what the
// token itself proves, which cannot change while it is unexpired: checkToken still consults
// the blacklist and the user's current record on every request, so logouts, kills and
// revocations take effect at once. Entries are keyed by the token's SHA-256, so the cache
// holds no token and a lookup compares no secret bytes.
type tokenCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]tokenEntry
}

// tokenEntry is what a verified token says.
type tokenEntry struct {
	subject, tenant, jti string
	gen                  uint64
	exp                  int64     // Unix seconds
	validUntil           time.Time // exp plus the leeway: the token is refused from then on
}

func tokenKey(tok string) [sha256.Size]byte {
	var buf [1024]byte // a token's bytes stay on the stack (a JWT is about 300)
	return sha256.Sum256(append(buf[:0], tok...))
}

// get returns the entry of the token keyed k if the token is still valid at now.
func (c *tokenCache) get(k [sha256.Size]byte, now time.Time) (tokenEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && !now.Before(e.validUntil) {
		c.mu.Lock()
		delete(c.m, k)
		c.mu.Unlock()
		return tokenEntry{}, false
	}
	return e, ok
}

// put remembers a verified token. When the cache is full, expired entries go first, then
// any (map order is random).
func (c *tokenCache) put(k [sha256.Size]byte, e tokenEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]tokenEntry)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= maxCachedTokens {
		for ek, ee := range c.m {
			if !now.Before(ee.validUntil) {
				delete(c.m, ek)
			}
		}
		for ek := range c.m {
			if len(c.m) < maxCachedTokens {
				break
			}
			delete(c.m, ek)
		}
	}
	c.m[k] = e
}
