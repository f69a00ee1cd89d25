package main

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// policies are the access policy files in use (-aaa, and aaa= of a -B address), each read
// once and shared by the listeners that name it, so that SIGHUP can read them again.
type policies struct {
	log   *slog.Logger
	mu    sync.Mutex
	maps  map[string]*aaa.Map // by file
	ports map[string][]string // file -> the addresses of its listeners, as clients report them
	order []string            // files in the order first named, for stable logs
}

func newPolicies(log *slog.Logger) *policies {
	return &policies{log: log, maps: make(map[string]*aaa.Map), ports: make(map[string][]string)}
}

// get returns the Map of file, reading it the first time.
func (p *policies) get(file string) (*aaa.Map, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.maps[file]; m != nil {
		return m, nil
	}
	m, err := aaa.LoadFile(file)
	if err != nil {
		return nil, err
	}
	p.maps[file] = m
	p.order = append(p.order, file)
	p.log.Info("access policy loaded", "file", file, "clients", len(m.Names()))
	return m, nil
}

// attach records that the listener whose clients report port (bus.ClientInfo.Port) uses file.
func (p *policies) attach(file, port string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ports[file] = append(p.ports[file], port)
}

// reload reads every file again. A file that cannot be read or is invalid is reported and
// its policy kept. Where a file changed, the clients of its listeners whose names it
// changed (added, removed or altered) are disconnected, so that they connect again under
// their new rules, or not at all.
func (p *policies) reload(b *bus.Broker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, file := range p.order {
		next, err := aaa.LoadFile(file)
		if err != nil {
			p.log.Error("access policy not reloaded; the previous one stays", "file", file, "err", err)
			continue
		}
		changed := p.maps[file].Replace(next)
		var gone []string
		if len(changed) > 0 {
			ports := p.ports[file]
			for _, ci := range b.Clients() {
				if slices.Contains(ports, ci.Port) && slices.Contains(changed, ci.Name) {
					if b.ForceDisconnect(ci.Name) == nil {
						gone = append(gone, ci.Name)
					}
				}
			}
		}
		p.log.Info("access policy reloaded", "file", file, "clients", len(next.Names()),
			"changed", changed, "disconnected", gone)
	}
}
