package sse

// Filter narrows a stream to some event names and some collections. The zero Filter passes
// everything.
type Filter struct {
	events, collections map[string]struct{} // nil: any
}

// NewFilter returns the Filter passing the given event names (none: any) and collections
// (none: any).
func NewFilter(events, collections []string) Filter {
	return Filter{events: set(events), collections: set(collections)}
}

func set(list []string) map[string]struct{} {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(list))
	for _, v := range list {
		m[v] = struct{}{}
	}
	return m
}

// Match reports whether a publication of that event name in that collection passes.
func (f Filter) Match(event, collection string) bool {
	if f.events != nil {
		if _, ok := f.events[event]; !ok {
			return false
		}
	}
	if f.collections != nil {
		if _, ok := f.collections[collection]; !ok {
			return false
		}
	}
	return true
}

// match is Match for a live message: an ephemeral message (Seq 0) belongs to no collection,
// so only the event names narrow it.
func (f Filter) match(m *Message) bool {
	if f.events == nil && f.collections == nil {
		return true
	}
	if m.Seq == 0 {
		if f.events == nil {
			return true
		}
		_, ok := f.events[m.Event]
		return ok
	}
	return f.Match(m.Event, m.Collection)
}

// equal reports whether f and g pass the same messages.
func (f Filter) equal(g Filter) bool {
	return sameSet(f.events, g.events) && sameSet(f.collections, g.collections)
}

func sameSet(a, b map[string]struct{}) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
