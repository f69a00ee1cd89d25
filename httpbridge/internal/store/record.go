package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Event values are a version byte, the Order as a uvarint (Event.Order is not part of the
// JSON the API sends), then the JSON of the Event.
const recordV1 = 1

func encodeEvent(e *Event) ([]byte, error) {
	j, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(j))
	b = append(b, recordV1)
	b = binary.AppendUvarint(b, e.Order)
	return append(b, j...), nil
}

func decodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) < 2 || b[0] != recordV1 {
		return e, errBadKey
	}
	order, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return e, errBadKey
	}
	if err := json.Unmarshal(b[1+n:], &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", errBadKey, err)
	}
	e.Order = order
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
