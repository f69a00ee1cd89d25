package httpbridge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtbus/rtbus/cluster"
	"golang.org/x/crypto/bcrypt"
)

// Defaults of Config.
const (
	DefaultJWTExpiry = time.Hour
	DefaultLeeway    = 5 * time.Second
	DefaultMaxBody   = 1 << 20
	DefaultAlgorithm = "HS256"

	DefaultLoginFailuresPerUser = 10
	DefaultLoginFailuresPerAddr = 100
	DefaultLoginFailureWindow   = 5 * time.Minute
	DefaultBasicCacheTTL        = 30 * time.Second
)

// DefaultPrivilegedRoles is Config.PrivilegedRoles when unset.
var DefaultPrivilegedRoles = []string{"admin"}

// Config configures a Server. The zero Config is usable but for DataDir, which is required.
type Config struct {
	// DataDir holds the event store (DataDir/db), and the generated secrets
	// (DataDir/jwt_secret, DataDir/admin_token, mode 0600). Required.
	DataDir string

	// JWTSecret signs tokens with an HMAC algorithm. Empty: a random secret generated on first
	// start and kept in DataDir/jwt_secret, so tokens survive restarts; in cluster mode the
	// cluster's, made once by the first node and copied there, so tokens are valid on every node.
	JWTSecret string
	// JWTAlgorithm is HS256 (default), HS384, HS512 or RS256. Tokens signed with any other
	// algorithm, "none" included, are refused.
	JWTAlgorithm string
	// JWTKeyPEM is the RSA private key (PKCS#1 or PKCS#8 PEM) for RS256; required with it.
	JWTKeyPEM []byte
	// JWTExpiry is the lifetime of a token from /login; 0 = DefaultJWTExpiry (3600 s).
	JWTExpiry time.Duration
	// Leeway is the clock skew tolerated on exp and iat; 0 = DefaultLeeway (5 s), <0 = none.
	Leeway time.Duration

	// AdminToken authorises the admin routes. Empty: a random token generated on first start,
	// kept in DataDir/admin_token; its location is logged. In cluster mode, the cluster's (as
	// JWTSecret's), copied into DataDir/admin_token.
	AdminToken string

	// Origins lists the CORS origins allowed; nil or empty = every origin ("*").
	Origins []string
	// MaxBody bounds request bodies in bytes; 0 = DefaultMaxBody (1 MiB). Larger: 413.
	MaxBody int64
	// BcryptCost of new password hashes; 0 = bcrypt.DefaultCost (10).
	BcryptCost int
	// LoginFailuresPerUser and LoginFailuresPerAddr limit failed password checks (POST /login
	// and Basic credentials) per username and per client address (IPv6: per /64): that many
	// in a row, then one more every LoginFailureWindow divided by that many. Beyond, the
	// answer is 429 with Retry-After and no password is checked. A success clears its
	// username's failures, not its address's. 0 = DefaultLoginFailuresPerUser (10) and
	// DefaultLoginFailuresPerAddr (100); <0 = no limit. Behind a proxy every client has the
	// proxy's address. LoginFailureWindow 0 = DefaultLoginFailureWindow (5 min).
	LoginFailuresPerUser int
	LoginFailuresPerAddr int
	LoginFailureWindow   time.Duration
	// BasicCacheTTL is how long Basic credentials that passed are remembered (under an HMAC
	// with a per-process key, never in the clear), so that a client sending them with every
	// request pays one bcrypt per BasicCacheTTL. A revocation or a password change takes
	// effect at once all the same. 0 = DefaultBasicCacheTTL (30 s); <0 = no cache.
	BasicCacheTTL time.Duration
	// AdminSignupOnly makes POST /users require the admin token ("admin_token" in the body),
	// as /create_user does. The default (false) lets anyone sign up.
	AdminSignupOnly bool

	// NTPServers discipline the clock when Clock is nil (queried at start in the background,
	// then hourly); empty = the local clock.
	NTPServers []string
	// Clock tells the time for scheduling and tokens; nil = the NTP-disciplined clock.
	Clock Clock

	// StreamQueue is the number of messages queued per stream before a slow client is
	// disconnected; 0 = 1024. KeepAlive is the idle time before a keep-alive event; 0 = 15 s.
	StreamQueue int
	KeepAlive   time.Duration

	// PublicTenants serve anonymous read-only streams (GET /public/events/{tenant}):
	// publications only, with no user_id in the records. POST /tenant_settings opens others.
	PublicTenants []string
	// DefaultTenant is the tenant of a sign-up that names none, and the tenant whose
	// anonymous stream GET /events serves, without credentials, when it is public (for
	// front ends that know no tenants). Empty: tenant_id is required.
	DefaultTenant string

	// Ready, if set, is asked by GET /readyz whether the server's listeners serve (nil: ready
	// once the store is open).
	Ready func() error

	// PrivilegedRoles are the roles that may watch other users' messages (?users= on a
	// stream); nil = DefaultPrivilegedRoles. Any user may name itself.
	PrivilegedRoles []string

	// Cluster, if set, runs the bridge in cluster mode on this node: the event log is a
	// JetStream stream (DataDir keeps only this node's index of it), users, sessions and
	// tenant settings live in key-value buckets, and ephemeral messages, presence and kills
	// cross nodes on plain subjects. nil: single-node mode, pebble only.
	Cluster *cluster.Node

	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// loadSecret returns v if set, else the content of DataDir/name, creating it with a random
// value (mode 0600) on first start.
func loadSecret(dir, name, v string) (secret string, generated bool, err error) {
	if v != "" {
		return v, false, nil
	}
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
		return "", false, fmt.Errorf("httpbridge: %s is empty", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("httpbridge: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	s := hex.EncodeToString(raw[:])
	// O_EXCL: two servers starting on one directory at once must not overwrite each other.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("httpbridge: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("httpbridge: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, fmt.Errorf("httpbridge: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("httpbridge: %w", err)
	}
	return s, true, nil
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("httpbridge: Config.DataDir is required")
	}
	if c.JWTAlgorithm == "" {
		c.JWTAlgorithm = DefaultAlgorithm
	}
	if c.JWTExpiry <= 0 {
		c.JWTExpiry = DefaultJWTExpiry
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	} else if c.Leeway < 0 {
		c.Leeway = 0
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.DefaultCost
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("httpbridge: bcrypt cost %d out of range %d-%d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.LoginFailuresPerUser == 0 {
		c.LoginFailuresPerUser = DefaultLoginFailuresPerUser
	}
	if c.LoginFailuresPerAddr == 0 {
		c.LoginFailuresPerAddr = DefaultLoginFailuresPerAddr
	}
	if c.LoginFailureWindow <= 0 {
		c.LoginFailureWindow = DefaultLoginFailureWindow
	}
	if c.BasicCacheTTL == 0 {
		c.BasicCacheTTL = DefaultBasicCacheTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PrivilegedRoles == nil {
		c.PrivilegedRoles = DefaultPrivilegedRoles
	}
	return nil
}
