package jskv

import "testing"

// FuzzKeys: every name makes a key that NATS accepts and that decodes back to the name; any
// key that decodes at all gives a name whose own key is legal.
func FuzzKeys(f *testing.F) {
	f.Add("ann", byte(kindUser), "u.YW5u")
	f.Add("a.b *>$", byte(kindTenant), "t.")
	f.Add("", byte(kindSecret), "x")
	f.Fuzz(func(t *testing.T, name string, kind byte, key string) {
		for _, b := range []*bucket{{}, {sessions: true}} {
			k := mkey{kind: kindUser, name: name}
			if b.sessions {
				k.kind = 0
			} else if kind == kindID || kind == kindTenant || kind == kindSecret {
				k.kind = kind
			}
			kk := b.kvKey(k)
			if name != "" && !validKey(kk) {
				t.Fatalf("name %q: key %q is not a legal key", name, kk)
			}
			if back, ok := b.mKey(kk); !ok || back != k {
				t.Fatalf("name %q: key %q decodes to %+v, %v", name, kk, back, ok)
			}
			if d, ok := b.mKey(key); ok && d.name != "" && !validKey(b.kvKey(d)) {
				t.Fatalf("key %q decodes to %+v, whose key is illegal", key, d)
			}
		}
	})
}

// validKey is NATS's rule for KV keys: tokens of [-/_=.a-zA-Z0-9], no empty token.
func validKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '/', c == '_', c == '=':
		case c == '.':
			if k[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// FuzzDecode: whatever a bucket holds under a key (another program may write there), reading
// it is an error or a record, never a panic, and a user record is only taken under its own
// name.
func FuzzDecode(f *testing.F) {
	f.Add(byte(kindUser), "ann", []byte(`{"id":"1","username":"ann","tenant_id":"t"}`))
	f.Add(byte(kindUser), "ann", []byte(`{"username":"bob"}`))
	f.Add(byte(0), "s", []byte("1800000000"))
	f.Add(byte(kindTenant), "t", []byte(`{"public":true}`))
	f.Fuzz(func(t *testing.T, kind byte, name string, val []byte) {
		for _, b := range []*bucket{{}, {sessions: true}} {
			r, err := decode(b, mkey{kind: kind, name: name}, 1, val)
			if err == nil && !b.sessions && kind == kindUser && r.user.Username != name {
				t.Fatalf("user record of %q taken under %q", r.user.Username, name)
			}
		}
	})
}
