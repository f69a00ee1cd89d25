package aaa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxFileSize bounds what Load reads, so that a wrong path (a device, a log) fails fast
// instead of eating memory. Real policy files are a few kilobytes.
const maxFileSize = 16 << 20

// Load reads a policy file, described in the package documentation, from r. It reads at
// most 16 MiB. Errors name the client and the field at fault.
func Load(r io.Reader) (*Map, error) {
	m, err := load(r)
	if err != nil {
		return nil, fmt.Errorf("aaa: %w", err)
	}
	return m, nil
}

// LoadFile reads the policy file at path, as Load does.
func LoadFile(path string) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("aaa: %w", err)
	}
	defer f.Close()
	m, err := load(f)
	if err != nil {
		return nil, fmt.Errorf("aaa: %s: %w", path, err)
	}
	return m, nil
}

func load(r io.Reader) (*Map, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("policy larger than %d MiB", maxFileSize>>20)
	}

	// The top level is walked token by token, rather than decoded into a map, to catch a
	// client listed twice: a map would keep the last entry without a word.
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty policy: want a JSON object keyed by client name")
	}
	if err != nil {
		return nil, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("want a JSON object keyed by client name")
	}
	m := NewMap()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("want a JSON object keyed by client name")
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		if _, dup := m.m[name]; dup {
			return nil, fmt.Errorf("client %q listed twice", name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("client %q: %w", name, syntaxError(err))
		}
		p, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", name, err)
		}
		rules, err := compile(p)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", name, err)
		}
		m.m[name] = rules
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON object at byte %d", dec.InputOffset())
	}
	return m, nil
}

// syntaxError adds what the decoder leaves out: where the error is, and that running out
// of input in the middle of the object is not a clean end.
func syntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w (at byte %d)", err, se.Offset)
	}
	return err
}

// fileEntry keeps every field raw so that an absent key, null and [] can be told apart:
// they mean allow all, a likely mistake, and deny all.
type fileEntry struct {
	Hosts         json.RawMessage `json:"hosts"`
	P2P           json.RawMessage `json:"p2p"`
	Publish       json.RawMessage `json:"publish"`
	Subscribe     json.RawMessage `json:"subscribe"`
	Broadcast     json.RawMessage `json:"broadcast"`
	Broker        json.RawMessage `json:"broker"`
	DenyP2P       json.RawMessage `json:"deny_p2p"`
	DenyPublish   json.RawMessage `json:"deny_publish"`
	DenySubscribe json.RawMessage `json:"deny_subscribe"`
	DenyBroadcast json.RawMessage `json:"deny_broadcast"`
	DenyBroker    json.RawMessage `json:"deny_broker"`
}

var entryKeys = map[string]bool{
	"hosts": true, "p2p": true, "publish": true, "subscribe": true, "broadcast": true,
	"deny_p2p": true, "deny_publish": true, "deny_subscribe": true, "deny_broadcast": true,
	"broker": true, "deny_broker": true,
}

func parseEntry(raw json.RawMessage) (Policy, error) {
	var p Policy
	if b := bytes.TrimLeft(raw, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return p, fmt.Errorf("want an object, got %s", truncate(raw))
	}
	// encoding/json matches field names case-insensitively; a policy key must be spelled
	// exactly, so that "Hosts" is reported rather than half-understood.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return p, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	for k := range keys {
		if !entryKeys[k] {
			return p, fmt.Errorf("unknown field %q", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e fileEntry
	if err := dec.Decode(&e); err != nil {
		// The decoder's message for an unknown field starts with "json: " and
		// is not a typed error; drop the prefix so the message reads as ours.
		return p, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}

	hosts, present, err := stringList("hosts", e.Hosts)
	if err != nil {
		return p, err
	}
	if present && len(hosts) == 0 {
		// In a list of rights [] denies all, so an empty hosts list reads as "from
		// nowhere", yet the Policy it would make admits any address.
		return p, errors.New(`hosts: empty list; omit "hosts" to admit any address, or leave the client out to refuse it`)
	}
	p.Hosts = hosts

	rules := []struct {
		name       string
		list, deny json.RawMessage
		dst        *Rule
	}{
		{"p2p", e.P2P, e.DenyP2P, &p.P2P},
		{"publish", e.Publish, e.DenyPublish, &p.Publish},
		{"subscribe", e.Subscribe, e.DenySubscribe, &p.Subscribe},
		{"broadcast", e.Broadcast, e.DenyBroadcast, &p.Broadcast},
		{"broker", e.Broker, e.DenyBroker, &p.Broker},
	}
	for _, r := range rules {
		list, present, err := stringList(r.name, r.list)
		if err != nil {
			return p, err
		}
		deny, err := boolField("deny_"+r.name, r.deny)
		if err != nil {
			return p, err
		}
		if present && len(list) == 0 {
			deny = true
		}
		*r.dst = Rule{Allow: list, Deny: deny}
	}
	return p, nil
}

// stringList decodes a list field. It reports whether the key was there at all, and
// refuses null, both for the list and its items, as nobody means it.
func stringList(field string, raw json.RawMessage) (list []string, present bool, err error) {
	if raw == nil {
		return nil, false, nil
	}
	var items []*string
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, true, fmt.Errorf("%s: want a list of strings, got %s", field, truncate(raw))
	}
	list = make([]string, len(items))
	for i, s := range items {
		if s == nil {
			return nil, true, fmt.Errorf("%s[%d]: want a string, got null", field, i)
		}
		list[i] = *s
	}
	return list, true, nil
}

func boolField(field string, raw json.RawMessage) (bool, error) {
	if raw == nil {
		return false, nil
	}
	var b *bool
	if err := json.Unmarshal(raw, &b); err != nil || b == nil {
		return false, fmt.Errorf("%s: want true or false, got %s", field, truncate(raw))
	}
	return *b, nil
}

// truncate quotes a JSON value for an error message without letting a huge one drown it.
func truncate(raw json.RawMessage) string {
	const max = 40
	s := string(raw)
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
