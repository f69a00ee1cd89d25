package jskv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// The buckets' names (a NATS account shared with other applications sees them as such).
const (
	AccountsBucket = cluster.Prefix + "_accounts"
	SessionsBucket = cluster.Prefix + "_sessions"
)

// markerTTL is how long the sessions bucket keeps the marker of a removed entry (an expiry or
// an unblacklisting), so that a watcher that was disconnected meanwhile still learns of it.
const markerTTL = 5 * time.Minute

// casAttempts bounds the read-modify-write retries of one update under contention.
const casAttempts = 32

// Options configure Open. The zero value is usable.
type Options struct {
	// Now tells the time that blacklist expiries are measured against (the bridge's clock);
	// nil = time.Now.
	Now func() time.Time
	// Timeout bounds each read or write of a bucket; 0 = 5 s. Past it the call fails with an
	// error wrapping cluster.ErrNotReady (no quorum).
	Timeout time.Duration
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// Hooks are told of changes, whichever node made them, once each, in the order of each
// bucket's log. They run with the accounts locked: they must not call the Accounts back.
type Hooks struct {
	// User: a known user's record changed in a way that ends sessions (revocation, a new
	// token generation, a new password hash).
	User func(old, cur store.User)
	// Blacklist: a session was blacklisted (or its expiry changed), or removed (unblacklisted
	// or expired).
	Blacklist func(e store.BlacklistEntry, removed bool)
	// Tenant: a tenant's settings changed (nil: removed).
	Tenant func(tenant string, settings []byte)
}

// Accounts are the bridge's accounts on the cluster's buckets. Its methods are safe for
// concurrent use and return the store's errors (store.ErrNotFound, store.ErrUsernameTaken,
// store.ErrInvalid) where the store would, and errors wrapping cluster.ErrNotReady when the
// cluster does not answer.
type Accounts struct {
	node   *cluster.Node
	nc     *nats.Conn
	js     jetstream.JetStream
	now    func() time.Time
	tmo    time.Duration
	log    *slog.Logger
	acc    *bucket
	ses    *bucket
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.RWMutex
	hooks Hooks

	// misses are the keys the leader did not have a moment ago, so that a name looked up
	// again and again (a push by username tries it as an id first) costs one leader read a
	// missTTL, not one each time. Under missMu; at most maxMisses.
	missMu sync.Mutex
	misses map[mkey]time.Time
}

const (
	missTTL   = time.Second
	maxMisses = 4096
)

// Kinds of the accounts bucket's keys (the sessions bucket has one kind, 0).
const (
	kindUser   = 'u'
	kindID     = 'i'
	kindTenant = 't'
	kindSecret = 's'
)

// mkey is a key as the in-memory copy holds it: decoded, so that a lookup by name allocates
// nothing.
type mkey struct {
	kind byte
	name string
}

// rec is one key's latest value known here.
type rec struct {
	rev  uint64
	gone bool // removed by this node, the watcher not yet past it
	val  []byte
	user store.User // kindUser
	exp  int64      // sessions
}

func (r *rec) visible() bool { return r != nil && !r.gone }

type bucket struct {
	name, stream, pre string // pre: the subject prefix of its keys
	sessions          bool
	w                 jetstream.KeyWatcher
	// Under Accounts.mu:
	seen uint64 // the last revision the watcher applied
	m    map[mkey]*rec
}

var enc = base64.RawURLEncoding

func (b *bucket) kvKey(k mkey) string {
	if b.sessions {
		return enc.EncodeToString([]byte(k.name))
	}
	return string(k.kind) + "." + enc.EncodeToString([]byte(k.name))
}

func (b *bucket) mKey(key string) (mkey, bool) {
	var k mkey
	if !b.sessions {
		if len(key) < 2 || key[1] != '.' {
			return k, false
		}
		switch key[0] {
		case kindUser, kindID, kindTenant, kindSecret:
		default:
			return k, false
		}
		k.kind, key = key[0], key[2:]
	}
	name, err := enc.DecodeString(key)
	if err != nil {
		return k, false
	}
	k.name = string(name)
	return k, true
}

// Open creates the buckets if they do not exist (or binds to them), loads them into memory and
// starts watching them. It retries while JetStream has no leader, until ctx ends.
func Open(ctx context.Context, n *cluster.Node, o Options) (*Accounts, error) {
	a := &Accounts{node: n, nc: n.Conn(), js: n.JetStream(), now: o.Now, tmo: o.Timeout, log: o.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.tmo <= 0 {
		a.tmo = 5 * time.Second
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	cfgs := []jetstream.KeyValueConfig{
		{Bucket: AccountsBucket, Description: "rtbus users, tenant settings and shared secrets",
			Replicas: n.Replicas(), Storage: jetstream.FileStorage},
		{Bucket: SessionsBucket, Description: "rtbus session blacklist (entries expire with their tokens)",
			Replicas: n.Replicas(), Storage: jetstream.FileStorage, LimitMarkerTTL: markerTTL},
	}
	wctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	for i, c := range cfgs {
		kv, err := createBucket(ctx, a.js, c)
		if err != nil {
			a.Close()
			return nil, err
		}
		b := &bucket{name: c.Bucket, stream: "KV_" + c.Bucket, pre: "$KV." + c.Bucket + ".", sessions: i == 1, m: map[mkey]*rec{}}
		if i == 0 {
			a.acc = b
		} else {
			a.ses = b
		}
		if b.w, err = kv.WatchAll(wctx); err != nil {
			a.Close()
			return nil, fmt.Errorf("jskv: watching %s: %w", c.Bucket, err)
		}
		if err := a.load(ctx, b); err != nil {
			a.Close()
			return nil, err
		}
		a.wg.Add(1)
		go a.watch(b)
	}
	return a, nil
}

func createBucket(ctx context.Context, js jetstream.JetStream, c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		// Each attempt is bounded, and short: when several nodes create the bucket at once,
		// all but one may go unanswered (a second attempt finds it made).
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		kv, err := js.CreateOrUpdateKeyValue(cctx, c)
		cancel()
		if err == nil {
			return kv, nil
		}
		if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
			return nil, fmt.Errorf("jskv: bucket %s: %w (NATS server 2.11 or later needed)", c.Bucket, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("jskv: bucket %s: %w: %v", c.Bucket, cluster.ErrNotReady, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// load applies the bucket's current values, up to the watcher's end-of-initial-values mark.
func (a *Accounts) load(ctx context.Context, b *bucket) error {
	for {
		select {
		case e, ok := <-b.w.Updates():
			if !ok {
				return fmt.Errorf("jskv: watcher of %s closed", b.name)
			}
			if e == nil {
				return nil
			}
			a.mu.Lock()
			a.apply(b, e.Key(), e.Revision(), e.Operation() != jetstream.KeyValuePut, e.Value(), true)
			a.mu.Unlock()
		case <-ctx.Done():
			return fmt.Errorf("jskv: loading %s: %w: %v", b.name, cluster.ErrNotReady, ctx.Err())
		}
	}
}

func (a *Accounts) watch(b *bucket) {
	defer a.wg.Done()
	for e := range b.w.Updates() {
		if e == nil {
			continue
		}
		a.mu.Lock()
		a.apply(b, e.Key(), e.Revision(), e.Operation() != jetstream.KeyValuePut, e.Value(), true)
		a.mu.Unlock()
	}
}

// Watch sets the hooks, and tells them at once of every blacklisted session and every
// tenant's settings (the state they start from), then of every later change.
func (a *Accounts) Watch(h Hooks) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hooks = h
	if h.Blacklist != nil {
		for k, r := range a.ses.m {
			if r.visible() {
				h.Blacklist(store.BlacklistEntry{Session: k.name, Expires: r.exp}, false)
			}
		}
	}
	if h.Tenant != nil {
		for k, r := range a.acc.m {
			if k.kind == kindTenant && r.visible() {
				h.Tenant(k.name, r.val)
			}
		}
	}
}

// Close stops the watchers (the node's connection stays open).
func (a *Accounts) Close() error {
	a.cancel()
	for _, b := range []*bucket{a.acc, a.ses} {
		if b != nil && b.w != nil {
			b.w.Stop()
		}
	}
	a.wg.Wait()
	return nil
}

// apply makes rev the value of key (gone: removed) if it is newer than what is known, and
// tells the hooks of the change. Under a.mu. A value this node wrote (or read from the
// leader) is applied at once, so that the node reads its own writes; the watcher, which
// delivers every revision in order, skips what was applied so, and drops the trace of a
// removal once it is past it.
func (a *Accounts) apply(b *bucket, key string, rev uint64, gone bool, val []byte, watcher bool) {
	k, ok := b.mKey(key)
	if !ok {
		a.log.Warn("jskv: ignoring a key rtbus did not write", "bucket", b.name, "key", key)
		return
	}
	old := b.m[k]
	if watcher {
		b.seen = max(b.seen, rev)
		if old != nil && old.rev >= rev {
			if old.rev == rev && old.gone {
				delete(b.m, k)
			}
			return
		}
	} else if rev <= b.seen || (old != nil && old.rev >= rev) {
		return
	}
	var cur *rec
	if !gone {
		r, err := decode(b, k, rev, val)
		if err != nil {
			a.log.Warn("jskv: ignoring a value rtbus cannot read", "bucket", b.name, "key", key, "err", err)
			return
		}
		cur = r
	}
	switch {
	case cur != nil:
		b.m[k] = cur
	case watcher:
		delete(b.m, k)
	default:
		b.m[k] = &rec{rev: rev, gone: true}
	}
	a.changed(b, k, old, cur)
}

func decode(b *bucket, k mkey, rev uint64, val []byte) (*rec, error) {
	r := &rec{rev: rev, val: val}
	switch {
	case b.sessions:
		exp, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil {
			return nil, err
		}
		r.exp = exp
	case k.kind == kindUser:
		if err := json.Unmarshal(val, &r.user); err != nil {
			return nil, err
		}
		if r.user.Username != k.name {
			return nil, errors.New("username does not match the key")
		}
	}
	return r, nil
}

// changed tells the hooks what changed from old to cur (either may be nil or gone).
func (a *Accounts) changed(b *bucket, k mkey, old, cur *rec) {
	h := a.hooks
	switch {
	case b.sessions:
		if h.Blacklist == nil {
			return
		}
		if cur.visible() {
			if !old.visible() || old.exp != cur.exp {
				h.Blacklist(store.BlacklistEntry{Session: k.name, Expires: cur.exp}, false)
			}
		} else if old.visible() {
			h.Blacklist(store.BlacklistEntry{Session: k.name, Expires: old.exp}, true)
		}
	case k.kind == kindUser:
		if h.User == nil || !old.visible() || !cur.visible() {
			return
		}
		o, c := old.user, cur.user
		if o.Revoked != c.Revoked || o.TokenGen != c.TokenGen || !bytes.Equal(o.PasswordHash, c.PasswordHash) {
			h.User(o, c)
		}
	case k.kind == kindTenant:
		if h.Tenant == nil {
			return
		}
		if cur.visible() {
			h.Tenant(k.name, cur.val)
		} else if old.visible() {
			h.Tenant(k.name, nil)
		}
	}
}

func (a *Accounts) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.tmo)
}

// unavailable wraps an error of the cluster (timeout, no quorum, no responders).
func unavailable(err error) error {
	return fmt.Errorf("%w: %v", cluster.ErrNotReady, err)
}

// wrongLast reports whether a conditional write failed on its condition.
func wrongLast(err error) bool {
	var e *jetstream.APIError
	return errors.As(err, &e) &&
		(e.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || e.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// write kinds
const (
	put = iota
	purge
)

// write publishes key's new value (op put) or removal (op purge: a marker that also drops the
// earlier values) and returns its revision. expect, if not nil, is the revision the key must
// still have (0: absent); ttl, if > 0, how long the record lives. A failed condition is
// returned as is (test it with wrongLast); other failures wrap cluster.ErrNotReady.
func (a *Accounts) write(ctx context.Context, b *bucket, k mkey, op int, val []byte, expect *uint64, ttl time.Duration) (uint64, error) {
	if err := a.node.Readiness(); err != nil {
		return 0, err // no quorum a moment ago: fail fast rather than wait for the timeout
	}
	m := &nats.Msg{Subject: b.pre + b.kvKey(k), Data: val}
	if op == purge {
		m.Header = nats.Header{"KV-Operation": {"PURGE"}, jetstream.MsgRollup: {jetstream.MsgRollupSubject}}
	}
	var opts []jetstream.PublishOpt
	if expect != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
	}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := a.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		if wrongLast(err) {
			return 0, err
		}
		return 0, unavailable(err)
	}
	return ack.Sequence, nil
}

// readLast reads key's latest record from the bucket stream's leader (not a replica, which
// may lag): found false if the key never had one.
func (a *Accounts) readLast(ctx context.Context, b *bucket, k mkey) (val []byte, rev uint64, gone, found bool, err error) {
	if err := a.node.Readiness(); err != nil {
		return nil, 0, false, false, err
	}
	req, _ := json.Marshal(map[string]string{"last_by_subj": b.pre + b.kvKey(k)})
	msg, err := a.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+b.stream, req)
	if err != nil {
		return nil, 0, false, false, unavailable(err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, false, false, unavailable(err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, 0, false, false, nil
	case resp.Error != nil:
		return nil, 0, false, false, unavailable(fmt.Errorf("%s (%d)", resp.Error.Description, resp.Error.ErrCode))
	case resp.Message == nil:
		return nil, 0, false, false, unavailable(errors.New("empty message get reply"))
	}
	h := resp.Message.Hdrs
	gone = bytes.Contains(h, []byte("KV-Operation:")) || bytes.Contains(h, []byte(jetstream.MarkerReasonHeader+":"))
	return resp.Message.Data, resp.Message.Seq, gone, true, nil
}

// lookup returns the record of k known here, or else the leader's (applied here). A key the
// leader lacked less than missTTL ago is not asked for again: the watcher brings it if it
// has been written since.
func (a *Accounts) lookup(b *bucket, k mkey) (*rec, error) {
	a.mu.RLock()
	r := b.m[k]
	a.mu.RUnlock()
	if r != nil {
		return r, nil
	}
	now := time.Now()
	a.missMu.Lock()
	at, missed := a.misses[k]
	a.missMu.Unlock()
	if missed && now.Sub(at) < missTTL {
		return nil, nil
	}
	ctx, cancel := a.ctx()
	defer cancel()
	val, rev, gone, found, err := a.readLast(ctx, b, k)
	if err != nil {
		return nil, err
	}
	if !found {
		a.missMu.Lock()
		if len(a.misses) >= maxMisses {
			clear(a.misses)
		}
		if a.misses == nil {
			a.misses = make(map[mkey]time.Time)
		}
		a.misses[k] = now
		a.missMu.Unlock()
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apply(b, b.kvKey(k), rev, gone, val, false)
	// Nil here: the watcher, past that revision already, has seen the key removed since.
	return b.m[k], nil
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

var zero uint64

// CreateUser stores a new user. store.ErrUsernameTaken if the username exists on any node
// (the bucket's create-if-absent decides between concurrent sign-ups); store.ErrInvalid as
// the store answers it.
func (a *Accounts) CreateUser(u store.User) error {
	if u.ID == "" || u.Username == "" || u.TenantID == "" {
		return fmt.Errorf("%w: user needs an id, a username and a tenant", store.ErrInvalid)
	}
	if !validUTF8(append([]string{u.ID, u.Username, u.TenantID, u.CollectionID}, u.Roles...)...) {
		return fmt.Errorf("%w: strings must be UTF-8", store.ErrInvalid)
	}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	nk, ik := mkey{kindUser, u.Username}, mkey{kindID, u.ID}
	a.mu.RLock()
	taken := a.acc.m[nk].visible()
	a.mu.RUnlock()
	if taken {
		return store.ErrUsernameTaken
	}
	ctx, cancel := a.ctx()
	defer cancel()
	// The id first: a name without its id would be a user whose tokens are refused; an id
	// left without its name (a crash here) is harmless, since UserByID checks the name's id.
	irev, err := a.write(ctx, a.acc, ik, put, []byte(u.Username), &zero, 0)
	if wrongLast(err) {
		return fmt.Errorf("%w: user id %q in use", store.ErrInvalid, u.ID)
	} else if err != nil {
		return err
	}
	nrev, err := a.write(ctx, a.acc, nk, put, v, &zero, 0)
	if err != nil {
		if _, derr := a.write(ctx, a.acc, ik, purge, nil, &irev, 0); derr != nil {
			a.log.Warn("jskv: removing the id of a user not created", "id", u.ID, "err", derr)
		}
		if wrongLast(err) {
			return store.ErrUsernameTaken
		}
		return err
	}
	a.mu.Lock()
	a.apply(a.acc, a.acc.kvKey(ik), irev, false, []byte(u.Username), false)
	a.apply(a.acc, a.acc.kvKey(nk), nrev, false, v, false)
	a.mu.Unlock()
	return nil
}

// UserByName returns the user with that username, or store.ErrNotFound.
func (a *Accounts) UserByName(username string) (store.User, error) {
	r, err := a.lookup(a.acc, mkey{kindUser, username})
	if err != nil {
		return store.User{}, err
	}
	if !r.visible() {
		return store.User{}, store.ErrNotFound
	}
	return r.user, nil
}

// UserByID returns the user with that id, or store.ErrNotFound.
func (a *Accounts) UserByID(id string) (store.User, error) {
	ir, err := a.lookup(a.acc, mkey{kindID, id})
	if err != nil {
		return store.User{}, err
	}
	if !ir.visible() {
		return store.User{}, store.ErrNotFound
	}
	u, err := a.UserByName(string(ir.val))
	if err == nil && u.ID != id {
		err = store.ErrNotFound
	}
	return u, err
}

// Users returns all users sorted by username.
func (a *Accounts) Users() ([]store.User, error) {
	a.mu.RLock()
	var out []store.User
	for k, r := range a.acc.m {
		if k.kind == kindUser && r.visible() {
			out = append(out, r.user)
		}
	}
	a.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out, nil
}

// SetRevoked sets the revoked flag of a user and returns the updated user; revoking also
// moves the user to a new TokenGen. A compare-and-set on the user's record: concurrent
// changes on other nodes are retried over, never lost. store.ErrNotFound if there is no such
// user.
func (a *Accounts) SetRevoked(username string, revoked bool) (store.User, error) {
	k := mkey{kindUser, username}
	ctx, cancel := a.ctx()
	defer cancel()
	for range casAttempts {
		val, rev, gone, found, err := a.readLast(ctx, a.acc, k)
		if err != nil {
			return store.User{}, err
		}
		if !found || gone {
			return store.User{}, store.ErrNotFound
		}
		var u store.User
		if err := json.Unmarshal(val, &u); err != nil {
			return store.User{}, fmt.Errorf("jskv: user %q: %w", username, err)
		}
		if revoked {
			u.TokenGen++
		}
		u.Revoked = revoked
		v, err := json.Marshal(u)
		if err != nil {
			return store.User{}, err
		}
		nrev, err := a.write(ctx, a.acc, k, put, v, &rev, 0)
		if wrongLast(err) {
			continue // changed meanwhile: read it again
		} else if err != nil {
			return store.User{}, err
		}
		a.mu.Lock()
		a.apply(a.acc, a.acc.kvKey(k), nrev, false, v, false)
		a.mu.Unlock()
		return u, nil
	}
	return store.User{}, unavailable(fmt.Errorf("user %q changed %d times during one update", username, casAttempts))
}

// Blacklist stores (or replaces) a blacklisted session; the entry lives until e.Expires by
// the bucket's per-key TTL (at least a second). store.ErrInvalid for an empty id.
func (a *Accounts) Blacklist(e store.BlacklistEntry) error {
	if e.Session == "" || !validUTF8(e.Session) {
		return store.ErrInvalid
	}
	ttl := max(e.Expires-a.now().Unix(), 1)
	v := strconv.AppendInt(nil, e.Expires, 10)
	k := mkey{name: e.Session}
	ctx, cancel := a.ctx()
	defer cancel()
	rev, err := a.write(ctx, a.ses, k, put, v, nil, time.Duration(ttl)*time.Second)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.apply(a.ses, a.ses.kvKey(k), rev, false, v, false)
	a.mu.Unlock()
	return nil
}

// Unblacklist removes the entries of the sessions given; missing ones are ignored, and so are
// an entry that changed on another node since this node learnt of it (a newer blacklisting
// stands) and an expired one (its TTL removes it, once for every node).
func (a *Accounts) Unblacklist(sessions ...string) error {
	ctx, cancel := a.ctx()
	defer cancel()
	now := a.now().Unix()
	for _, s := range sessions {
		k := mkey{name: s}
		a.mu.RLock()
		r := a.ses.m[k]
		a.mu.RUnlock()
		if !r.visible() || r.exp <= now {
			continue
		}
		rev, err := a.write(ctx, a.ses, k, purge, nil, &r.rev, markerTTL)
		if wrongLast(err) {
			continue
		} else if err != nil {
			return err
		}
		a.mu.Lock()
		a.apply(a.ses, a.ses.kvKey(k), rev, true, nil, false)
		a.mu.Unlock()
	}
	return nil
}

// Blacklisted returns every blacklisted session known here.
func (a *Accounts) Blacklisted() ([]store.BlacklistEntry, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []store.BlacklistEntry
	for k, r := range a.ses.m {
		if r.visible() {
			out = append(out, store.BlacklistEntry{Session: k.name, Expires: r.exp})
		}
	}
	return out, nil
}

// SetTenantSettings stores the settings of a tenant (the last write wins).
func (a *Accounts) SetTenantSettings(tenant string, settings []byte) error {
	if tenant == "" || !validUTF8(tenant) {
		return store.ErrInvalid
	}
	k := mkey{kindTenant, tenant}
	v := append([]byte(nil), settings...)
	ctx, cancel := a.ctx()
	defer cancel()
	rev, err := a.write(ctx, a.acc, k, put, v, nil, 0)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.apply(a.acc, a.acc.kvKey(k), rev, false, v, false)
	a.mu.Unlock()
	return nil
}

// TenantSettings calls fn with the settings of every tenant that has some.
func (a *Accounts) TenantSettings(fn func(tenant string, settings []byte) error) error {
	type ts struct {
		t string
		v []byte
	}
	var all []ts
	a.mu.RLock()
	for k, r := range a.acc.m {
		if k.kind == kindTenant && r.visible() {
			all = append(all, ts{k.name, r.val})
		}
	}
	a.mu.RUnlock()
	for _, x := range all {
		if err := fn(x.t, x.v); err != nil {
			return err
		}
	}
	return nil
}

// Secret returns the cluster's secret of that name: the one stored, or else candidate, stored
// by create-if-absent, so that every node ends up with the value of the first one to store it
// (created reports whether this call did).
func (a *Accounts) Secret(name, candidate string) (secret string, created bool, err error) {
	if candidate == "" {
		return "", false, errors.New("jskv: empty secret")
	}
	// A create-if-absent refused for an existing key, followed by a read that finds none,
	// was seen once while a restarted node rejoined (a leader change between the two):
	// asking again settles it, either way.
	for try := 0; ; try++ {
		secret, created, err = a.secret(name, candidate)
		if !errors.Is(err, errSecretVanished) || try == 9 {
			return secret, created, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var errSecretVanished = errors.New("was removed")

func (a *Accounts) secret(name, candidate string) (secret string, created bool, err error) {
	k := mkey{kindSecret, name}
	a.mu.RLock()
	r := a.acc.m[k]
	a.mu.RUnlock()
	if r.visible() && len(r.val) > 0 {
		return string(r.val), false, nil
	}
	ctx, cancel := a.ctx()
	defer cancel()
	v := []byte(candidate)
	rev, err := a.write(ctx, a.acc, k, put, v, &zero, 0)
	if err == nil {
		a.mu.Lock()
		a.apply(a.acc, a.acc.kvKey(k), rev, false, v, false)
		a.mu.Unlock()
		return candidate, true, nil
	}
	if !wrongLast(err) {
		return "", false, err
	}
	val, _, gone, found, err := a.readLast(ctx, a.acc, k)
	if err != nil {
		return "", false, err
	}
	if !found || gone || len(val) == 0 {
		return "", false, fmt.Errorf("jskv: secret %q %w from %s", name, errSecretVanished, AccountsBucket)
	}
	return string(val), false, nil
}
