package bus

import (
	"slices"
	"strings"
	"time"
)

// ClientInfo is one client's entry in Broker.Clients; its fields feed the .broker
// client.list reply (WIRE.md §9).
type ClientInfo struct {
	Name      string
	Kind      string // KindInternal, KindLocalIPC, KindTCP or KindWebSocket
	Source    string // the peer "ip:port" of a TCP or WebSocket client, else ""
	Port      string // the listener's address, "" for in-process clients
	RFrames   uint64 // frames received from the client
	RBytes    uint64 // their body bytes
	WFrames   uint64 // frames queued to the client
	WBytes    uint64 // their body bytes
	Queue     int    // frames queued and not yet read
	Instances int    // 1 + the number of secondaries
}

// Stats are the broker's totals; they feed the .broker stats reply (WIRE.md §9). The counters
// include clients that have since unregistered.
type Stats struct {
	Uptime  time.Duration
	RFrames uint64
	RBytes  uint64
	WFrames uint64
	WBytes  uint64
	Clients int // registered clients, secondaries and .broker included
	// The one-to-one, publish and broadcast frames clients sent (part of RFrames).
	P2P, Publish, Broadcast uint64
}

func (c *Client) counters() counters {
	c.q.mu.Lock()
	w, wb := c.q.wFrames, c.q.wBytes
	c.q.mu.Unlock()
	return counters{rFrames: c.rFrames.Load(), rBytes: c.rBytes.Load(), wFrames: w, wBytes: wb,
		sent: [3]uint64{c.sent[sentP2P].Load(), c.sent[sentPublish].Load(), c.sent[sentBroadcast].Load()}}
}

// Info returns the client's statistics.
func (c *Client) Info() ClientInfo {
	c.b.mu.RLock()
	instances := 1 + len(c.secondaries)
	c.b.mu.RUnlock()
	n := c.counters()
	i := ClientInfo{
		Name:      c.name,
		Kind:      c.info.Kind,
		Port:      c.info.Port,
		RFrames:   n.rFrames,
		RBytes:    n.rBytes,
		WFrames:   n.wFrames,
		WBytes:    n.wBytes,
		Queue:     c.q.len(),
		Instances: instances,
	}
	if c.info.Source.IsValid() {
		i.Source = c.info.Source.String()
	}
	return i
}

// Clients lists the registered primary clients, sorted by name, .broker included; secondaries
// are counted in their primary's Instances.
func (b *Broker) Clients() []ClientInfo {
	b.mu.RLock()
	list := make([]*Client, 0, len(b.clients))
	for _, c := range b.clients {
		if c.parent == nil {
			list = append(list, c)
		}
	}
	b.mu.RUnlock()
	out := make([]ClientInfo, len(list))
	for i, c := range list {
		out[i] = c.Info()
	}
	slices.SortFunc(out, func(a, b ClientInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Stats returns the broker's totals.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	total := b.departed
	n := len(b.clients)
	for _, c := range b.clients {
		total.add(c.counters())
	}
	b.mu.RUnlock()
	return Stats{
		Uptime:  time.Since(b.started),
		RFrames: total.rFrames,
		RBytes:  total.rBytes,
		WFrames: total.wFrames,
		WBytes:  total.wBytes,
		Clients: n,
		P2P:     total.sent[sentP2P], Publish: total.sent[sentPublish], Broadcast: total.sent[sentBroadcast],
	}
}
