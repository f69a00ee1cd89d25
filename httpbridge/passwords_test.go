package httpbridge_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/httpbridge"
)

// TestUnknownUserCostsAsMuch: the hash compared against for an unknown username has the
// configured cost, so a login for it takes as long as a wrong password.
func TestUnknownUserCostsAsMuch(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, bcrypt.MinCost + 2} {
		e := newEnv(t, func(c *httpbridge.Config) { c.BcryptCost = cost })
		if got := e.srv.DummyHashCost(); got != cost {
			t.Fatalf("unknown usernames are compared at cost %d, passwords at %d", got, cost)
		}
		e.signup("ann", "acme")
		n := e.srv.BcryptCompares()
		e.expect(e.do("POST", "/login", "", map[string]string{"username": "nobody", "password": "pw"}), 401)
		e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw"}), 401)
		if d := e.srv.BcryptCompares() - n; d != 2 {
			t.Fatalf("%d bcrypt comparisons for an unknown user and a wrong password, want 2", d)
		}
	}
}

// expect429 checks a 429 with a JSON error and a Retry-After of want seconds.
func expect429(t *testing.T, e *env, r reply, want int) {
	t.Helper()
	e.expect(r, http.StatusTooManyRequests)
	if got := r.hdr.Get("Retry-After"); got != strconv.Itoa(want) {
		t.Fatalf("Retry-After %q, want %d", got, want)
	}
}

func login(name, pass string) map[string]string {
	return map[string]string{"username": name, "password": pass}
}

// TestLoginFailuresPerUser: after N failures for a username, known or not, its logins and
// Basic checks are refused with 429 and Retry-After, at no bcrypt cost, until the window
// frees a try; other usernames are not affected; a success clears the count.
func TestLoginFailuresPerUser(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) {
		c.LoginFailuresPerUser, c.LoginFailuresPerAddr, c.LoginFailureWindow = 3, -1, 3*time.Minute
	})
	e.signup("ann", "acme")
	bob := e.signup("bob", "acme")
	for _, name := range []string{"ann", "ghost"} {
		for i := 0; i < 3; i++ {
			e.expect(e.do("POST", "/login", "", login(name, "wrong")), 401)
		}
		n := e.srv.BcryptCompares()
		expect429(t, e, e.do("POST", "/login", "", login(name, "pw-"+name)), 60)
		expect429(t, e, e.do("GET", "/verify", basic(name, "pw-"+name), nil), 60)
		if d := e.srv.BcryptCompares() - n; d != 0 {
			t.Fatalf("%s: %d bcrypt comparisons while refused", name, d)
		}
	}
	e.expect(e.do("POST", "/login", "", login("bob", "pw-bob")), 200)
	e.expect(e.do("GET", "/verify", bob.bearer(), nil), 200) // tokens are not password checks

	e.clock.Advance(30 * time.Second)
	expect429(t, e, e.do("POST", "/login", "", login("ann", "pw-ann")), 30)
	e.clock.Advance(30 * time.Second) // one failure forgotten: one more try
	e.expect(e.do("POST", "/login", "", login("ann", "pw-ann")), 200)
	// The success cleared ann's failures: three more tries before the limit.
	for i := 0; i < 3; i++ {
		e.expect(e.do("GET", "/verify", basic("ann", "wrong"), nil), 401)
	}
	expect429(t, e, e.do("POST", "/login", "", login("ann", "pw-ann")), 60)
}

// TestLoginFailuresConcurrent: tries made at once do not all pass on the same allowance: of
// 20 concurrent wrong logins for one username with a limit of 3, exactly 3 are checked.
func TestLoginFailuresConcurrent(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) {
		c.LoginFailuresPerUser, c.LoginFailuresPerAddr, c.LoginFailureWindow = 3, -1, time.Minute
	})
	e.signup("ann", "acme")
	n := e.srv.BcryptCompares()
	codes := make(chan int, 20)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.cl.Post(e.url+"/login", "application/json", strings.NewReader(`{"username":"ann","password":"guess"}`))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[401] != 3 || count[429] != 17 {
		t.Fatalf("answers %v, want 3 401s and 17 429s", count)
	}
	if d := e.srv.BcryptCompares() - n; d != 3 {
		t.Fatalf("%d bcrypt comparisons, want 3", d)
	}
}

// TestLoginFailuresPerAddr: after N failures from one address, whatever the usernames,
// password checks from it are refused, successes included and not clearing it; another
// address is not affected.
func TestLoginFailuresPerAddr(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) {
		c.LoginFailuresPerUser, c.LoginFailuresPerAddr, c.LoginFailureWindow = 100, 3, time.Minute
	})
	e.signup("ann", "acme")
	e.expect(e.do("POST", "/login", "", login("u1", "x")), 401)
	e.expect(e.do("POST", "/login", "", login("ann", "pw-ann")), 200)
	e.expect(e.do("GET", "/verify", basic("u2", "x"), nil), 401)
	e.expect(e.do("POST", "/login", "", login("u3", "x")), 401)
	expect429(t, e, e.do("POST", "/login", "", login("ann", "pw-ann")), 20)
	expect429(t, e, e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 20)

	// From 127.0.0.2, another loopback address: not limited.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	resp, err := other.Post(e.url+"/login", "application/json", bytes.NewReader([]byte(`{"username":"ann","password":"pw-ann"}`)))
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login from another address: %s", resp.Status)
	}
}

// TestBasicCache: a Basic client pays one bcrypt, not one per request; a revocation ends
// its access at once and drops what was remembered; after the TTL it pays again; wrong
// passwords are never served from the cache.
func TestBasicCache(t *testing.T) {
	e := newEnv(t, nil)
	e.signup("ann", "acme")
	ann := basic("ann", "pw-ann")
	n := e.srv.BcryptCompares()
	for i := 0; i < 10; i++ {
		e.expect(e.do("GET", "/verify", ann, nil), 200)
	}
	if d := e.srv.BcryptCompares() - n; d != 1 {
		t.Fatalf("%d bcrypt comparisons for 10 Basic requests, want 1", d)
	}
	if e.srv.BasicCached() != 1 {
		t.Fatalf("%d cached credentials, want 1", e.srv.BasicCached())
	}
	e.expect(e.do("GET", "/verify", basic("ann", "pw-ann2"), nil), 401)
	e.expect(e.do("GET", "/verify", basic("ann", "pw-an"), nil), 401)
	if d := e.srv.BcryptCompares() - n; d != 3 {
		t.Fatalf("wrong passwords: %d bcrypt comparisons in all, want 3", d)
	}

	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	if e.srv.BasicCached() != 0 {
		t.Fatal("the revoked user's credentials are still cached")
	}
	e.expect(e.do("GET", "/verify", ann, nil), 401)
	e.expect(e.do("POST", "/unrevoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	n = e.srv.BcryptCompares()
	e.expect(e.do("GET", "/verify", ann, nil), 200)
	e.expect(e.do("GET", "/verify", ann, nil), 200)
	e.clock.Advance(httpbridge.DefaultBasicCacheTTL)
	e.expect(e.do("GET", "/verify", ann, nil), 200)
	if d := e.srv.BcryptCompares() - n; d != 2 {
		t.Fatalf("%d bcrypt comparisons, want 2: one after the revocation, one after the TTL", d)
	}
}

// TestBasicCacheOff: BasicCacheTTL < 0 checks every request.
func TestBasicCacheOff(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.BasicCacheTTL = -1 })
	e.signup("ann", "acme")
	n := e.srv.BcryptCompares()
	for i := 0; i < 3; i++ {
		e.expect(e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
	}
	if d := e.srv.BcryptCompares() - n; d != 3 {
		t.Fatalf("%d bcrypt comparisons for 3 requests with no cache", d)
	}
}

// BenchmarkLoginTiming measures, at the default bcrypt cost, a login with an unknown
// username and one with a wrong password, alternately (so that the machine's load falls on
// both alike), and reports the median of each and their ratio.
func BenchmarkLoginTiming(b *testing.B) {
	e := newEnv(b, func(cfg *httpbridge.Config) {
		cfg.BcryptCost = bcrypt.DefaultCost
		cfg.LoginFailuresPerUser, cfg.LoginFailuresPerAddr = -1, -1
	})
	e.signup("ann", "acme")
	var unknown, wrong []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e.expect(e.do("POST", "/login", "", login("nobody", "wrong")), 401)
		t1 := time.Now()
		e.expect(e.do("POST", "/login", "", login("ann", "wrong")), 401)
		unknown, wrong = append(unknown, t1.Sub(t0)), append(wrong, time.Since(t1))
	}
	mu, mw := median(unknown), median(wrong)
	b.ReportMetric(float64(mu)/1e6, "unknown-ms")
	b.ReportMetric(float64(mw)/1e6, "wrong-ms")
	b.ReportMetric(float64(mu)/float64(mw), "unknown/wrong")
}

// BenchmarkBasic measures, at the default bcrypt cost, a Basic-authenticated request with
// and without the cache, alternately, and reports the median of each.
func BenchmarkBasic(b *testing.B) {
	cached := newEnv(b, func(cfg *httpbridge.Config) { cfg.BcryptCost = bcrypt.DefaultCost })
	plain := newEnv(b, func(cfg *httpbridge.Config) { cfg.BcryptCost = bcrypt.DefaultCost; cfg.BasicCacheTTL = -1 })
	for _, e := range []*env{cached, plain} {
		e.signup("ann", "acme")
		e.expect(e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
	}
	var hit, miss []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cached.expect(cached.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
		t1 := time.Now()
		plain.expect(plain.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
		hit, miss = append(hit, t1.Sub(t0)), append(miss, time.Since(t1))
	}
	mh, mm := median(hit), median(miss)
	b.ReportMetric(float64(mh)/1e6, "cached-ms")
	b.ReportMetric(float64(mm)/1e6, "uncached-ms")
	b.ReportMetric(float64(mm)/float64(mh), "uncached/cached")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
