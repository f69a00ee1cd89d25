package httpbridge

import "golang.org/x/crypto/bcrypt"

// BcryptCompares is the number of bcrypt comparisons s has made.
func (s *Server) BcryptCompares() int64 { return s.pw.bcryptCompares.Load() }

// DummyHashCost is the cost of the hash compared against for unknown usernames.
func (s *Server) DummyHashCost() int {
	c, _ := bcrypt.Cost(s.pw.dummyHash)
	return c
}

// BasicCached is the number of Basic credentials remembered.
func (s *Server) BasicCached() int { return s.pw.basic.len() }
