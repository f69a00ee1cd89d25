package httpbridge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// basicCache remembers Basic credentials that passed their bcrypt check, for a short while,
// so that a client sending them with every request pays one bcrypt per TTL instead of one per
// request. It never holds a password: entries are keyed by an HMAC of the credentials under a
// random key of this process. A hit is only a hint: the caller still reads the user's record
// and accepts only if the user is the same, not revoked, and has the same password hash as
// when the entry was made, so a revocation or a password change takes effect at once; revoking
// also drops the user's entries (dropUser).
type basicCache struct {
	ttl time.Duration
	max int
	key [32]byte

	mu      sync.Mutex
	entries map[[sha256.Size]byte]basicEntry
}

type basicEntry struct {
	userID  string
	hash    []byte // the user's password hash when the credentials passed
	expires time.Time
}

// maxBasicEntries bounds the cache (about 200 bytes an entry).
const maxBasicEntries = 4096

func newBasicCache(ttl time.Duration) *basicCache {
	if ttl <= 0 {
		return nil // no cache
	}
	c := &basicCache{ttl: ttl, max: maxBasicEntries, entries: make(map[[sha256.Size]byte]basicEntry)}
	rand.Read(c.key[:])
	return c
}

// sum is the cache key of the credentials.
func (c *basicCache) sum(username, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(username))
	m.Write([]byte{0}) // usernames hold no NUL (printable), so the split is unambiguous
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// get returns the user the credentials keyed k passed for, if they did within the TTL.
func (c *basicCache) get(k [sha256.Size]byte, now time.Time) (basicEntry, bool) {
	if c == nil {
		return basicEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if ok && !now.Before(e.expires) {
		delete(c.entries, k)
		ok = false
	}
	return e, ok
}

// put remembers that the credentials keyed k passed for u.
func (c *basicCache) put(k [sha256.Size]byte, u store.User, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for ek, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, ek)
			}
		}
		if len(c.entries) >= c.max {
			for ek := range c.entries { // still full: any one goes (map order is random)
				delete(c.entries, ek)
				break
			}
		}
	}
	c.entries[k] = basicEntry{userID: u.ID, hash: u.PasswordHash, expires: now.Add(c.ttl)}
}

// drop forgets the credentials keyed k.
func (c *basicCache) drop(k [sha256.Size]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// dropUser forgets every entry of the user.
func (c *basicCache) dropUser(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.userID == id {
			delete(c.entries, k)
		}
	}
}

// len is the number of entries.
func (c *basicCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
