package httpbridge_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtbus/rtbus/httpbridge"
)

// forge signs claims for u's identity with the given method and key.
func forge(t *testing.T, m jwt.SigningMethod, key any, u user, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, jwt.MapClaims{
		"sub": u.id, "tenant": u.tenant, "username": u.name, "roles": []string{},
		"iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(), "jti": "x",
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokens(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.JWTSecret = "shared-secret" })
	u := e.signup("ann", "acme")
	secret := []byte("shared-secret")
	exp := e.clock.Now().Add(time.Hour)

	// The claims of HTTP.md.
	parts := strings.Split(u.token, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, c map[string]any
	json.Unmarshal(hdr, &h)
	json.Unmarshal(body, &c)
	if h["alg"] != "HS256" {
		t.Fatalf("header %v", h)
	}
	for _, k := range []string{"sub", "tenant", "username", "roles", "iat", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("claim %q missing: %v", k, c)
		}
	}

	e.expect(e.do("GET", "/verify", "Bearer "+forge(t, jwt.SigningMethodHS256, secret, u, exp), nil), 200)
	cases := map[string]string{
		"garbage":      "not.a.token",
		"tampered":     parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), `"acme"`, `"evil"`, 1))) + "." + parts[2],
		"other key":    forge(t, jwt.SigningMethodHS256, []byte("guess"), u, exp),
		"wrong alg":    forge(t, jwt.SigningMethodHS512, secret, u, exp),
		"alg none":     forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, u, exp),
		"no exp":       mustSign(t, jwt.MapClaims{"sub": u.id, "tenant": u.tenant}, secret),
		"wrong tenant": mustSign(t, jwt.MapClaims{"sub": u.id, "tenant": "evil", "exp": exp.Unix()}, secret),
		"unknown sub":  mustSign(t, jwt.MapClaims{"sub": "nobody", "tenant": u.tenant, "exp": exp.Unix()}, secret),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			e.expect(e.do("GET", "/verify", "Bearer "+tok, nil), 401)
			e.expect(e.do("POST", "/insert", "Bearer "+tok, map[string]any{"event": "x", "data": 1}), 401)
		})
	}
	r, err := e.cl.Get(e.url + "/sse?token=" + cases["alg none"])
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Fatalf("stream with alg none: %d", r.StatusCode)
	}

	// Expiry on the server's clock, with the configured leeway (1 s in tests).
	e.clock.Advance(time.Hour)
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 200) // within the leeway
	e.clock.Advance(2 * time.Second)
	r2 := e.expect(e.do("GET", "/verify", u.bearer(), nil), 401)
	if !strings.Contains(r2.field(t, "error"), "expired") {
		t.Fatalf("expired token: %s", r2.body)
	}
}

func mustSign(t *testing.T, c jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRS256(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	e := newEnv(t, func(c *httpbridge.Config) { c.JWTAlgorithm = "RS256"; c.JWTKeyPEM = pemKey })
	u := e.signup("ann", "acme")
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 200)
	// An HMAC token keyed with the public key (the classic confusion attack) is refused.
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	e.expect(e.do("GET", "/verify", "Bearer "+forge(t, jwt.SigningMethodHS256, pubPEM, u, e.clock.Now().Add(time.Hour)), nil), 401)

	if _, err := httpbridge.New(nil, httpbridge.Config{DataDir: t.TempDir(), JWTAlgorithm: "RS256", Logger: quiet}); err == nil {
		t.Fatal("RS256 without a key accepted")
	}
	if _, err := httpbridge.New(nil, httpbridge.Config{DataDir: t.TempDir(), JWTAlgorithm: "none", Logger: quiet}); err == nil {
		t.Fatal("algorithm none accepted")
	}
	if _, err := httpbridge.New(nil, httpbridge.Config{}); err == nil {
		t.Fatal("no DataDir accepted")
	}
	// A data directory that is a file is refused with an error, not a panic.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := httpbridge.New(nil, httpbridge.Config{DataDir: f, Logger: quiet}); err == nil {
		t.Fatal("file as data directory accepted")
	}
}
