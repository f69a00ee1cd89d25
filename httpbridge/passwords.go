package httpbridge

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// passwords checks passwords (POST /login, Basic credentials) so that they neither leak nor
// burn: an unknown username costs the same bcrypt as a wrong password, failures are limited
// per username and per address, and Basic credentials that passed are remembered briefly.
type passwords struct {
	// dummyHash is compared against when the username is unknown: made at the configured
	// cost, so that timing does not tell which usernames exist.
	dummyHash      []byte
	users, addrs   *failures
	basic          *basicCache
	bcryptCompares atomic.Int64 // for tests: the bcrypt comparisons made
}

func newPasswords(cfg *Config) (*passwords, error) {
	h, err := bcrypt.GenerateFromPassword([]byte("rtbus-no-such-user"), cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	return &passwords{
		dummyHash: h,
		users:     newFailures(cfg.LoginFailuresPerUser, cfg.LoginFailureWindow),
		addrs:     newFailures(cfg.LoginFailuresPerAddr, cfg.LoginFailureWindow),
		basic:     newBasicCache(cfg.BasicCacheTTL),
	}, nil
}

func (p *passwords) compare(hash []byte, password string) bool {
	p.bcryptCompares.Add(1)
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

var errWrongPassword = errorf(http.StatusUnauthorized, "wrong username or password")

// checkPassword checks a username and password from r's client, within the failure limits.
// A success clears the username's failures (not the address's: one good account must not
// buy guesses at others).
func (s *Server) checkPassword(r *http.Request, username, password string) (store.User, error) {
	p := s.pw
	now := s.clock.Now()
	addr := clientKey(r)
	// Each check is counted as a failure before bcrypt runs, and given back if it was none.
	d := p.users.take(username, now)
	if d == 0 {
		if d = p.addrs.take(addr, now); d > 0 {
			p.users.refund(username)
		}
	}
	if d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		e := errorf(http.StatusTooManyRequests, "too many failed logins for this username or from this address: try again in %d s", secs)
		e.retryAfter = secs
		return store.User{}, e
	}
	u, err := s.acct.UserByName(username)
	if errors.Is(err, store.ErrNotFound) {
		p.compare(p.dummyHash, password)
		return store.User{}, errWrongPassword
	} else if err != nil {
		p.users.refund(username)
		p.addrs.refund(addr)
		return store.User{}, storeError(err)
	}
	if !p.compare(u.PasswordHash, password) {
		return store.User{}, errWrongPassword
	}
	p.users.forget(username)
	p.addrs.refund(addr)
	if u.Revoked {
		return store.User{}, errorf(http.StatusUnauthorized, "user %q is revoked", u.Username)
	}
	return u, nil
}

// checkBasic checks Basic credentials, from the cache when they passed within its TTL and
// the user's record still matches (same user, not revoked, same password hash); a cache hit
// is not an attempt, so it is not held back by the failure limits.
func (s *Server) checkBasic(r *http.Request, username, password string) (store.User, error) {
	c := s.pw.basic
	if c == nil {
		return s.checkPassword(r, username, password)
	}
	now := s.clock.Now()
	k := c.sum(username, password)
	if e, ok := c.get(k, now); ok {
		u, err := s.acct.UserByName(username)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.User{}, storeError(err)
		}
		if err == nil && u.ID == e.userID && !u.Revoked && subtle.ConstantTimeCompare(u.PasswordHash, e.hash) == 1 {
			return u, nil
		}
		c.drop(k)
	}
	u, err := s.checkPassword(r, username, password)
	if err == nil {
		c.remember(k, u, now)
	}
	return u, err
}
