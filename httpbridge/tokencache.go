package httpbridge

import (
	"crypto/sha256"
	"time"
)

// maxCachedTokens bounds tokenCache (about 200 bytes an entry).
const maxCachedTokens = 16384

// tokenCache remembers tokens whose signature and claims passed, until they expire, so that
// a client that sends the same token with each request (a long-poller, an inserting
// back end) pays for the JWT's decoding and signature once. A hit stands only for what the
// token itself proves, which cannot change while it is unexpired: checkToken still consults
// the blacklist and the user's current record on every request, so logouts, kills and
// revocations take effect at once. Entries are keyed by the token's SHA-256 and kept until
// exp plus the leeway, from which on the parser would refuse the token.
type tokenCache struct{ expiring[tokenEntry] }

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

// remember keeps e, the claims of the token keyed k, until the token is refused.
func (c *tokenCache) remember(k [sha256.Size]byte, e tokenEntry, now time.Time) {
	c.put(k, e, e.validUntil, now)
}
