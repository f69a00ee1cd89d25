package httpbridge

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// IdempotencyKeyHeader names the optional header of POST /insert that makes a retry safe:
// inserts of one user with one key store one event, whose id the key determines, and a
// repeat is answered with the stored record.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKey bounds the key, as the header's draft standard suggests for a UUID or a
// random string of the client's making.
const maxIdempotencyKey = 255

// idempotencyNS is the name space of the ids made from keys (a random UUID of rtbus's).
var idempotencyNS = [16]byte{0x4b, 0x1e, 0x9a, 0x6c, 0x3d, 0x52, 0x47, 0x0e, 0x8f, 0x21, 0x6a, 0xd3, 0x95, 0x7c, 0x0b, 0xe4}

// idempotencyKey returns the request's key ("" if it has none), or a 400 naming the header
// when it is not 1-255 bytes of visible ASCII or is given twice.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values(IdempotencyKeyHeader)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errorf(http.StatusBadRequest, "header %s given more than once", IdempotencyKeyHeader)
	}
	k := vs[0]
	if k == "" || len(k) > maxIdempotencyKey {
		return "", errorf(http.StatusBadRequest, "header %s must be 1-%d characters", IdempotencyKeyHeader, maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return "", errorf(http.StatusBadRequest, "header %s must be visible ASCII characters (no spaces)", IdempotencyKeyHeader)
		}
	}
	return k, nil
}

// idempotentID is the event id of the insert of (tenant, user, key): a name-based UUID
// (version 5), formatted as the random ones, so that no other tenant or user makes it and a
// random id (version 4) never equals it. Each part is length-prefixed: no two triples share
// a name.
func idempotentID(tenant, userID, key string) string {
	h := sha1.New()
	h.Write(idempotencyNS[:])
	var n [binary.MaxVarintLen64]byte
	for _, s := range [...]string{tenant, userID, key} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		io.WriteString(h, s)
	}
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 5)
}

// keyedID tells an id made by idempotentID (version 5) from a random one (version 4).
func keyedID(id string) bool { return len(id) == 36 && id[14] == '5' }

// sameInsert checks that the stored event of a key is what the repeat asks for: the same
// name and data, and the collection and timestamp where the repeat gives them (a first
// request without them got a new collection and the time of its insert). A repeat that asks
// for something else is a client's mistake (a key used twice): 422 naming what differs.
func sameInsert(stored, want store.Event, collectionGiven, timestampGiven bool) error {
	var diff []string
	if stored.Event != want.Event {
		diff = append(diff, "event")
	}
	if collectionGiven && stored.CollectionID != want.CollectionID {
		diff = append(diff, "collection_id")
	}
	if timestampGiven && stored.Timestamp != want.Timestamp {
		diff = append(diff, "timestamp")
	}
	if !sameJSON(stored.Data, want.Data) {
		diff = append(diff, "data")
	}
	if len(diff) > 0 {
		return errorf(http.StatusUnprocessableEntity, "header %s was already used for another insert (different: %s)", IdempotencyKeyHeader, strings.Join(diff, ", "))
	}
	return nil
}

// sameJSON tells whether two compact JSON texts are the same value. Equal bytes are the rule
// (a retry sends what it sent); the log of cluster mode may store the text escaped otherwise
// (`\u003c` for `<`), hence the comparison of the values.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, ea := decodeJSONValue(a)
	vb, eb := decodeJSONValue(b)
	return ea == nil && eb == nil && reflect.DeepEqual(va, vb)
}

func decodeJSONValue(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
