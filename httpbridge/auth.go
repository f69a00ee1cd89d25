package httpbridge

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// claims are the JWT claims of a login token.
type claims struct {
	Tenant   string   `json:"tenant"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	Gen      uint64   `json:"gen,omitempty"` // the user's TokenGen at issue: a revocation ends every earlier token
	jwt.RegisteredClaims
}

// principal is the authenticated caller of a request.
type principal struct {
	user store.User
	exp  int64  // token expiry, Unix seconds; 0 for Basic
	jti  string // the token's session id; "" for Basic
}

// signer holds the pinned algorithm and its keys.
type signer struct {
	method  jwt.SigningMethod
	signKey any
	verKey  any
}

func newSigner(cfg *Config, secret string) (*signer, error) {
	switch cfg.JWTAlgorithm {
	case "HS256", "HS384", "HS512":
		return &signer{jwt.GetSigningMethod(cfg.JWTAlgorithm), []byte(secret), []byte(secret)}, nil
	case "RS256":
		if len(cfg.JWTKeyPEM) == 0 {
			return nil, errors.New("httpbridge: RS256 needs Config.JWTKeyPEM, an RSA private key")
		}
		k, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.JWTKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("httpbridge: JWT key: %w", err)
		}
		return &signer{jwt.SigningMethodRS256, k, k.Public().(*rsa.PublicKey)}, nil
	}
	return nil, fmt.Errorf("httpbridge: unsupported JWT algorithm %q (want HS256, HS384, HS512 or RS256)", cfg.JWTAlgorithm)
}

func (s *Server) issueToken(u store.User) (string, error) {
	now := s.clock.Now()
	c := claims{
		Tenant:   u.TenantID,
		Username: u.Username,
		Roles:    u.Roles,
		Gen:      u.TokenGen,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.JWTExpiry)),
			ID:        newUUID(),
		},
	}
	return jwt.NewWithClaims(s.signer.method, c).SignedString(s.signer.signKey)
}

var errNoCredentials = errorf(http.StatusUnauthorized, "missing Authorization header: want Bearer <jwt> or Basic credentials")

// authenticate checks the request's credentials (and ?token= where allowQuery) and the user's
// current record: a revoked user is refused whatever the credential.
func (s *Server) authenticate(r *http.Request, allowQuery bool) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" && allowQuery {
		if t := r.URL.Query().Get("token"); t != "" {
			return s.checkToken(t)
		}
	}
	if h == "" {
		return principal{}, errNoCredentials
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return s.checkToken(cred)
	case strings.EqualFold(scheme, "Basic"):
		name, pass, ok := r.BasicAuth()
		if !ok {
			return principal{}, errorf(http.StatusUnauthorized, "malformed Basic credentials")
		}
		u, err := s.checkBasic(r, name, pass)
		return principal{user: u}, err
	}
	return principal{}, errorf(http.StatusUnauthorized, "unsupported Authorization scheme %q: want Bearer or Basic", scheme)
}

func (s *Server) checkToken(tok string) (principal, error) {
	now := s.clock.Now()
	k := tokenKey(tok)
	e, ok := s.tokens.get(k, now)
	if !ok {
		var err error
		if e, err = s.verifyToken(tok); err != nil {
			return principal{}, err
		}
		s.tokens.remember(k, e, now)
	}
	if e.jti != "" && s.bl.refused(e.jti, now.Unix()) {
		return principal{}, errorf(http.StatusUnauthorized, "session ended (logged out or killed): log in again")
	}
	u, err := s.acct.UserByID(e.subject)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, errorf(http.StatusUnauthorized, "token of an unknown user")
	} else if err != nil {
		return principal{}, storeError(err)
	}
	if u.Revoked {
		return principal{}, errorf(http.StatusUnauthorized, "user %q is revoked", u.Username)
	}
	if u.TenantID != e.tenant {
		return principal{}, errorf(http.StatusUnauthorized, "invalid token: tenant does not match the user")
	}
	if e.gen != u.TokenGen {
		return principal{}, errorf(http.StatusUnauthorized, "token issued before the user was last revoked: log in again")
	}
	return principal{user: u, exp: e.exp, jti: e.jti}, nil
}

// verifyToken checks the token's signature and claims: what tokenCache remembers.
func (s *Server) verifyToken(tok string) (tokenEntry, error) {
	var c claims
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return s.signer.verKey, nil },
		jwt.WithValidMethods([]string{s.signer.method.Alg()}),
		jwt.WithLeeway(s.cfg.Leeway),
		jwt.WithTimeFunc(s.clock.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenEntry{}, errorf(http.StatusUnauthorized, "token expired")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return tokenEntry{}, errorf(http.StatusUnauthorized, "token signature invalid")
	case err != nil:
		return tokenEntry{}, errorf(http.StatusUnauthorized, "invalid token: %v", err)
	case c.Subject == "":
		return tokenEntry{}, errorf(http.StatusUnauthorized, "invalid token: no subject")
	}
	// WithExpirationRequired: ExpiresAt is set. The parser refuses the token from exp plus
	// the leeway on; nbf and iat only pass more easily as time goes on.
	return tokenEntry{
		subject: c.Subject, tenant: c.Tenant, jti: c.ID, gen: c.Gen,
		exp: c.ExpiresAt.Unix(), validUntil: c.ExpiresAt.Add(s.cfg.Leeway),
	}, nil
}

// checkAdmin compares tok with the admin token in constant time (hashes first, so the
// comparison takes the same time whatever the lengths).
func (s *Server) checkAdmin(tok string) error {
	if tok == "" {
		return errorf(http.StatusUnauthorized, "missing admin_token")
	}
	h := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(h[:], s.adminHash[:]) != 1 {
		return errorf(http.StatusUnauthorized, "bad admin_token")
	}
	return nil
}

// storeError maps store errors that reach a handler unexpectedly.
func storeError(err error) error {
	if errors.Is(err, store.ErrClosed) {
		return errorf(http.StatusServiceUnavailable, "server shutting down")
	}
	if errors.Is(err, cluster.ErrNotReady) {
		return errorf(http.StatusServiceUnavailable, "cluster unavailable (no quorum): try again")
	}
	return err
}
