package httpbridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/jskv"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// accounts keep users, the session blacklist and tenant settings, the one seam between
// single-node and cluster mode for them: the pebble store in single-node mode, key-value
// buckets (jskv) shared by every node in cluster mode. New chooses once, from Config.Cluster.
// Errors are the store's (store.ErrNotFound, store.ErrUsernameTaken, store.ErrInvalid), plus
// cluster.ErrNotReady in cluster mode.
type accounts interface {
	CreateUser(u store.User) error
	UserByName(username string) (store.User, error)
	UserByID(id string) (store.User, error)
	Users() ([]store.User, error)
	SetRevoked(username string, revoked bool) (store.User, error)

	Blacklist(e store.BlacklistEntry) error
	Unblacklist(sessions ...string) error
	Blacklisted() ([]store.BlacklistEntry, error)

	SetTenantSettings(tenant string, settings []byte) error
	TenantSettings(fn func(tenant string, settings []byte) error) error
}

var (
	_ accounts = (*store.DB)(nil)
	_ accounts = (*jskv.Accounts)(nil)
)

// openClusterAccounts opens the cluster's buckets (nil, nil in single-node mode).
func openClusterAccounts(cfg *Config) (*jskv.Accounts, error) {
	if cfg.Cluster == nil {
		return nil, nil
	}
	// Blacklist TTLs are measured against this: the system clock, which the NATS servers'
	// TTLs run on too, unless a Clock is given (tests); the NTP clock's offset from it is
	// far below the TTLs' one-second grain.
	now := time.Now
	if cfg.Clock != nil {
		now = cfg.Clock.Now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := jskv.Open(ctx, cfg.Cluster, jskv.Options{Now: now, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("httpbridge: cluster accounts: %w", err)
	}
	return a, nil
}

// loadSecrets returns the JWT secret and the admin token: Config's if set; else, in
// single-node mode, the data directory's (generated on first start); in cluster mode the
// cluster's, made once by the first node to start (it proposes its data directory's, if any,
// so that its tokens stay valid) and copied into the data directory for the operator.
func loadSecrets(cfg *Config, kv *jskv.Accounts) (secret, admin string, err error) {
	log := cfg.Logger
	if kv == nil {
		secret, gen, err := loadSecret(cfg.DataDir, "jwt_secret", cfg.JWTSecret)
		if err != nil {
			return "", "", err
		}
		if gen {
			log.Info("httpbridge: generated a random JWT secret", "file", filepath.Join(cfg.DataDir, "jwt_secret"))
		}
		admin, gen, err := loadSecret(cfg.DataDir, "admin_token", cfg.AdminToken)
		if err != nil {
			return "", "", err
		}
		if cfg.AdminToken == "" {
			// Printed at every start, not only the first, so an operator can always find it.
			log.Info("httpbridge: admin token", "file", filepath.Join(cfg.DataDir, "admin_token"), "generated", gen)
		}
		return secret, admin, nil
	}
	if secret, err = clusterSecret(cfg, kv, "jwt_secret", cfg.JWTSecret); err != nil {
		return "", "", err
	}
	if admin, err = clusterSecret(cfg, kv, "admin_token", cfg.AdminToken); err != nil {
		return "", "", err
	}
	return secret, admin, nil
}

func clusterSecret(cfg *Config, kv *jskv.Accounts, name, flag string) (string, error) {
	if flag != "" {
		return flag, nil // every node must then be given the same
	}
	path := filepath.Join(cfg.DataDir, name)
	var local string
	if b, err := os.ReadFile(path); err == nil {
		local = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("httpbridge: %w", err)
	}
	candidate := local
	if candidate == "" {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		candidate = hex.EncodeToString(raw[:])
	}
	v, created, err := kv.Secret(name, candidate)
	if err != nil {
		return "", fmt.Errorf("httpbridge: the cluster's %s: %w", name, err)
	}
	if v != local {
		if err := writeSecret(path, v); err != nil {
			return "", err
		}
	}
	cfg.Logger.Info("httpbridge: the cluster's "+strings.ReplaceAll(name, "_", " "), "file", path, "bucket", jskv.AccountsBucket, "generated", created)
	return v, nil
}

// writeSecret replaces the file at path with v (mode 0600), whole or not at all.
func writeSecret(path, v string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("httpbridge: %w", err)
	}
	_, err = f.WriteString(v + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("httpbridge: %w", err)
	}
	return nil
}

// accountHooks are how this node learns of the cluster's account changes, its own included:
// a revocation (or a new password) ends the user's streams here, a blacklisting ends the
// session's, on every transport; tenant settings open or close public tenants.
func (s *Server) accountHooks() jskv.Hooks {
	return jskv.Hooks{
		User: func(old, u store.User) {
			s.pw.basic.dropUser(u.ID)
			if u.Revoked || u.TokenGen != old.TokenGen || !bytes.Equal(u.PasswordHash, old.PasswordHash) {
				s.hub.KillUser(u.ID)
			}
		},
		Blacklist: func(e store.BlacklistEntry, removed bool) {
			if removed {
				s.bl.remove(e.Session)
				return
			}
			// Refused first, then killed, as killSession does.
			s.bl.set(e.Session, e.Expires)
			s.hub.KillSession(e.Session)
		},
		Tenant: func(tenant string, v []byte) {
			var ts tenantSettings
			if v != nil {
				if err := json.Unmarshal(v, &ts); err != nil {
					s.cfg.Logger.Warn("httpbridge: unreadable tenant settings", "tenant", tenant, "err", err)
					return
				}
			}
			if !s.setPublic(tenant, ts.Public) {
				s.hub.CloseAnonymous(tenant) // this node's: every node has its own hook
			}
		},
	}
}
