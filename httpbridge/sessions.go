package httpbridge

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// pruneEvery is how often expired blacklist entries are dropped from memory and the store.
const pruneEvery = time.Minute

// blacklist is the in-memory copy of the store's blacklisted sessions: every token check
// consults it (a map read under a read lock), never the store.
type blacklist struct {
	// writing is held across a change's store write and its map update (kill, revive,
	// prune), so that the store and the map never disagree after two of them interleave:
	// a kill landing between a prune's map delete and its store delete would otherwise be
	// lost from the store, and the session accepted again after a restart.
	writing sync.Mutex

	mu sync.RWMutex
	m  map[string]int64 // session id → expiry, Unix seconds
}

// refused reports whether the session is blacklisted at now (Unix seconds).
func (b *blacklist) refused(session string, now int64) bool {
	exp, ok := b.get(session)
	return ok && now < exp
}

func (b *blacklist) get(session string) (int64, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	exp, ok := b.m[session]
	return exp, ok
}

func (b *blacklist) set(session string, exp int64) {
	b.mu.Lock()
	b.m[session] = exp
	b.mu.Unlock()
}

func (b *blacklist) remove(session string) {
	b.mu.Lock()
	delete(b.m, session)
	b.mu.Unlock()
}

// expired removes and returns the entries expired at now.
func (b *blacklist) expired(now int64) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for s, exp := range b.m {
		if exp <= now {
			out = append(out, s)
			delete(b.m, s)
		}
	}
	return out
}

// loadSessions reads the blacklist from the store, dropping entries that expired while the
// server was down, and starts the pruning.
func (s *Server) loadSessions() error {
	entries, err := s.acct.Blacklisted()
	if err != nil {
		return err
	}
	s.bl.m = make(map[string]int64, len(entries))
	for _, e := range entries {
		s.bl.m[e.Session] = e.Expires
	}
	s.prune()
	return nil
}

// prune drops expired entries and arms the next pruning.
func (s *Server) prune() {
	now := s.clock.Now()
	s.bl.writing.Lock()
	if gone := s.bl.expired(now.Unix()); len(gone) > 0 {
		if err := s.acct.Unblacklist(gone...); err != nil && !errors.Is(err, store.ErrClosed) {
			s.cfg.Logger.Warn("httpbridge: pruning the session blacklist", "err", err)
		}
	}
	s.bl.writing.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.stopPrune = s.clock.At(now.Add(pruneEvery), s.prune)
	}
}

// killSession blacklists the session until expires (stored, synced) and ends its open
// streams with the final session_killed message. Its token is refused from then on, on every
// route and transport, also after a restart, until expires.
func (s *Server) killSession(session string, expires time.Time) error {
	if session == "" {
		return errorf(http.StatusBadRequest, "session_id is required")
	}
	if !printable(session, 128) {
		return errorf(http.StatusBadRequest, "session_id must be 1-128 printable characters")
	}
	exp := expires.Unix()
	s.bl.writing.Lock()
	if err := s.acct.Blacklist(store.BlacklistEntry{Session: session, Expires: exp}); err != nil {
		s.bl.writing.Unlock()
		return storeError(err)
	}
	// Refused first, then killed: a stream opening meanwhile checks the blacklist after it
	// registered, so it is either refused or found by the kill.
	s.bl.set(session, exp)
	s.bl.writing.Unlock()
	s.fan.KillSession(session)
	return nil
}

// reviveSession takes the session off the blacklist; false if it was not on it.
func (s *Server) reviveSession(session string) (bool, error) {
	s.bl.writing.Lock()
	defer s.bl.writing.Unlock()
	if _, ok := s.bl.get(session); !ok {
		return false, nil
	}
	if err := s.acct.Unblacklist(session); err != nil {
		return false, storeError(err)
	}
	s.bl.remove(session)
	return true, nil
}

// POST /logout: the caller's session ends (blacklisted until its token expires).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	if p.jti == "" {
		return errorf(http.StatusBadRequest, "no session to end: log out needs a Bearer token from /login")
	}
	exp := time.Unix(p.exp, 0).Add(s.cfg.Leeway)
	if err := s.killSession(p.jti, exp); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"session_id": p.jti, "expires": exp.Unix()})
	return nil
}
