package httpbridge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// basicCache remembers Basic credentials that passed their bcrypt check, for a short while,
// so that a client sending them with every request pays one bcrypt per TTL instead of one per
// request. It never holds a password: entries are keyed by an HMAC of the credentials under a
// random key of this process. A hit is only a hint: the caller still reads the user's record
// and accepts only if the user is the same, not revoked, and has the same password hash as
// when the entry was made, so a revocation or a password change takes effect at once; revoking
// also drops the user's entries (dropUser). A nil *basicCache caches nothing.
type basicCache struct {
	ttl time.Duration
	key [32]byte
	expiring[basicEntry]
}

type basicEntry struct {
	userID string
	hash   []byte // the user's password hash when the credentials passed
}

// maxBasicEntries bounds the cache (about 200 bytes an entry).
const maxBasicEntries = 4096

func newBasicCache(ttl time.Duration) *basicCache {
	if ttl <= 0 {
		return nil // no cache
	}
	c := &basicCache{ttl: ttl, expiring: expiring[basicEntry]{max: maxBasicEntries}}
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

// remember notes that the credentials keyed k passed for u.
func (c *basicCache) remember(k [sha256.Size]byte, u store.User, now time.Time) {
	c.put(k, basicEntry{userID: u.ID, hash: u.PasswordHash}, now.Add(c.ttl), now)
}

// dropUser forgets every entry of the user.
func (c *basicCache) dropUser(id string) {
	if c != nil {
		c.dropIf(func(e basicEntry) bool { return e.userID == id })
	}
}

// entries is the number of credentials remembered.
func (c *basicCache) entries() int {
	if c == nil {
		return 0
	}
	return c.len()
}
