// Package jskv keeps the bridge's accounts in cluster mode on JetStream key-value buckets:
// users (unique usernames by create-if-absent, user id → username, revocation by
// compare-and-set), the session blacklist (entries expire by per-key TTL), tenant settings and
// the secrets every node shares (JWT secret, admin token).
//
// Two buckets, replicated Node.Replicas() times:
//
//	rtbus_accounts  u.<name> → user record (JSON), i.<id> → username, t.<tenant> → settings,
//	                s.<secret name> → secret
//	rtbus_sessions  <session id> → expiry (Unix seconds, decimal); the key's TTL is the
//	                session's remaining life, so the server removes it on its own
//
// where <name> is the base64url (unpadded) of the UTF-8 string, so any username, tenant or
// session id makes a legal key. Every node reads from an in-memory copy that a watcher of each
// bucket keeps up to date; a node's own writes update its copy at once (reads see them),
// and a name or id the copy lacks is read from the bucket's stream leader before it is
// called unknown (a sign-up on another node a moment ago). Hooks tell the caller about
// changes, whichever node made them: the bridge closes streams on a revocation or a
// blacklisting, and opens or closes public tenants.
package jskv
