package httpbridge

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCompares is the number of bcrypt comparisons s has made.
func (s *Server) BcryptCompares() int64 { return s.pw.bcryptCompares.Load() }

// DummyHashCost is the cost of the hash compared against for unknown usernames.
func (s *Server) DummyHashCost() int {
	c, _ := bcrypt.Cost(s.pw.dummyHash)
	return c
}

// BasicCached is the number of Basic credentials remembered.
func (s *Server) BasicCached() int { return s.pw.basic.entries() }

// CheckToken runs the token check of every authenticated request; it returns the user id.
func (s *Server) CheckToken(tok string) (string, error) {
	p, err := s.checkToken(tok)
	return p.user.ID, err
}

// FillBlacklist puts n made-up sessions on the in-memory blacklist (benchmarks: the store is
// not written).
func (s *Server) FillBlacklist(n int, exp int64) {
	s.bl.mu.Lock()
	defer s.bl.mu.Unlock()
	for i := range n {
		s.bl.m[fmt.Sprintf("bench-%08d-0000-4000-8000-000000000000", i)] = exp
	}
}

// Conns lists the open streams (presence).
func (s *Server) Conns() []any {
	var out []any
	for _, c := range s.hub.Conns("", "") {
		out = append(out, c)
	}
	return out
}

// Refused reports whether the session is on the blacklist now.
func (s *Server) Refused(session string) bool { return s.bl.refused(session, s.clock.Now().Unix()) }
