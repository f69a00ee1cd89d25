package natsfan

import "testing"

// FuzzDecode feeds every decoder of messages from other nodes: an error or a value, never a
// panic, and what a decoder accepts survives a round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"tenant":"acme","user":"u","event":"e","data":{"x":1}}`,
		`{"tenant":"acme","event":"e","data":null}`,
		`{"tenant":"acme","event":"e","data":{ "x" : 1 }}`,
		`{"tenant":"acme","event":"e","data":"<b>&amp;\u2028"}`,
		`{"kind":"session","id":"jti"}`, `{"kind":"anonymous","id":"t"}`, `{"kind":"x","id":"y"}`,
		`{"tenant":"t","user":"u"}`, `{}`,
		`{"conns":[{"conn":1,"transport":"ws","tenant_id":"t","since":5}],"truncated":true}`,
		`{"n":3}`, `{"n":-1}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePush(b); err == nil {
			again, _ := encodePush(p)
			if q, err := decodePush(again); err != nil || q.Tenant != p.Tenant || q.User != p.User || q.Event != p.Event || string(q.Data) != string(p.Data) {
				t.Fatalf("push %q: round trip %q: %+v %v", b, again, q, err)
			}
		}
		if k, err := decodeKill(b); err == nil {
			if k.ID == "" || (k.Kind != killSession && k.Kind != killUser && k.Kind != killAnon) {
				t.Fatalf("kill %q accepted as %+v", b, k)
			}
		}
		decodeWho(b)
		decodeWhoReply(b)
		if c, err := decodeCount(b); err == nil && c.N < 0 {
			t.Fatalf("count %q accepted as %d", b, c.N)
		}
	})
}
