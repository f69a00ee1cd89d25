package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
)

// An event value is binary, so that reading the state or a resume decodes fast:
//
//	0x02  ORDER uvarint  SEQ uvarint  FLAGS byte  TIMESTAMP varint
//	ID  NAME  TENANT  COLLECTION  USER   (each: length uvarint, bytes)
//	DATA (the rest: compact JSON)
//
// FLAGS bit 0 is published, bit 1 cancelled.
const (
	recordV2       = 2
	flagPublished  = 1
	flagCancelled  = 2
	knownFlags     = flagPublished | flagCancelled
	maxHeaderBytes = 1 + 3*binary.MaxVarintLen64 + 1 + 5*binary.MaxVarintLen64
)

// encodeEvent appends the value of e to dst; jb (nil: a new one) is a scratch buffer for
// compacting the data.
func encodeEvent(dst []byte, jb *bytes.Buffer, e *Event) ([]byte, error) {
	n := maxHeaderBytes + len(e.ID) + len(e.Event) + len(e.TenantID) + len(e.CollectionID) + len(e.UserID) + len(e.Data)
	b := slices.Grow(dst, n)
	b = append(b, recordV2)
	b = binary.AppendUvarint(b, e.Order)
	b = binary.AppendUvarint(b, e.Seq)
	var flags byte
	if e.Published {
		flags |= flagPublished
	}
	if e.Cancelled {
		flags |= flagCancelled
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, e.Timestamp)
	for _, s := range [...]string{e.ID, e.Event, e.TenantID, e.CollectionID, e.UserID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if len(e.Data) == 0 {
		return append(b, "null"...), nil
	}
	if jb == nil {
		jb = new(bytes.Buffer)
	}
	jb.Reset()
	if err := json.Compact(jb, e.Data); err != nil {
		return nil, fmt.Errorf("%w: data is not JSON: %v", ErrInvalid, err)
	}
	return append(b, jb.Bytes()...), nil
}

// decodeEvent decodes an event value. The returned Data aliases b.
func decodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) < 1 || b[0] != recordV2 {
		return e, errBadKey
	}
	b = b[1:]
	var n int
	if e.Order, n = binary.Uvarint(b); n <= 0 {
		return Event{}, errBadKey
	}
	b = b[n:]
	if e.Seq, n = binary.Uvarint(b); n <= 0 {
		return Event{}, errBadKey
	}
	b = b[n:]
	if len(b) < 1 || b[0]&^knownFlags != 0 {
		return Event{}, errBadKey
	}
	e.Published, e.Cancelled = b[0]&flagPublished != 0, b[0]&flagCancelled != 0
	b = b[1:]
	if e.Timestamp, n = binary.Varint(b); n <= 0 {
		return Event{}, errBadKey
	}
	b = b[n:]
	// The five strings share one allocation.
	var lens [5]int
	start, total := b, 0
	for i := range lens {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return Event{}, errBadKey
		}
		lens[i] = int(l)
		total += n + int(l)
		b = b[n+int(l):]
	}
	all := string(start[:total])
	pos := 0
	strs := [5]*string{&e.ID, &e.Event, &e.TenantID, &e.CollectionID, &e.UserID}
	for i, p := range strs {
		_, n := binary.Uvarint(start[pos:])
		pos += n
		*p = all[pos : pos+lens[i]]
		pos += lens[i]
	}
	if len(b) == 0 {
		return Event{}, errBadKey
	}
	e.Data = b
	return e, nil
}

func encodeUser(u *User) ([]byte, error) {
	j, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return j, nil
}

func decodeUser(b []byte) (User, error) {
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return User{}, fmt.Errorf("%w: %v", errBadKey, err)
	}
	return u, nil
}
