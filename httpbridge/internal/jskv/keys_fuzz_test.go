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
