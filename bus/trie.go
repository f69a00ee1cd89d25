package bus

import "github.com/rtbus/rtbus/internal/match"

// clientSet is a set of clients that iterates as a slice: publishing walks it on every frame,
// while adding and removing happen only on (un)subscribe.
type clientSet struct {
	list []*Client
	at   map[*Client]int
}

func (s *clientSet) add(c *Client) {
	if s.at == nil {
		s.at = make(map[*Client]int)
	}
	if _, ok := s.at[c]; ok {
		return
	}
	s.at[c] = len(s.list)
	s.list = append(s.list, c)
}

func (s *clientSet) remove(c *Client) {
	i, ok := s.at[c]
	if !ok {
		return
	}
	last := len(s.list) - 1
	if i != last {
		s.list[i] = s.list[last]
		s.at[s.list[i]] = i
	}
	s.list[last] = nil
	s.list = s.list[:last]
	delete(s.at, c)
}

// topicNode is a level of the subscription trie (WIRE.md §6). A publication walks one path
// per matching wildcard, so its cost follows the number of matching subscriptions, not the
// number of subscriptions.
type topicNode struct {
	children map[string]*topicNode
	plus     *topicNode // "+" at this level
	exact    clientSet  // subscriptions that end here
	hash     clientSet  // "#" at the next level: matches when at least one more level follows
}

func (n *topicNode) empty() bool {
	return len(n.children) == 0 && n.plus == nil && len(n.exact.list) == 0 && len(n.hash.list) == 0
}

// subscriptionKey returns the canonical form of a subscription: whatever follows a "#" level is
// ignored, so "a/#/b" and "a/#" are one subscription.
func subscriptionKey(pattern string) string {
	rest := pattern
	for n := 0; ; {
		level, r, last := match.Split(rest, '/')
		if level == "#" {
			return pattern[:n+1]
		}
		if last {
			return pattern
		}
		n += len(level) + 1
		rest = r
	}
}

func (n *topicNode) add(pattern string, c *Client) {
	for rest, last := pattern, false; ; {
		var level string
		level, rest, last = match.Split(rest, '/')
		switch level {
		case "#":
			n.hash.add(c)
			return
		case "+":
			if n.plus == nil {
				n.plus = &topicNode{}
			}
			n = n.plus
		default:
			child := n.children[level]
			if child == nil {
				if n.children == nil {
					n.children = make(map[string]*topicNode)
				}
				child = &topicNode{}
				n.children[level] = child
			}
			n = child
		}
		if last {
			n.exact.add(c)
			return
		}
	}
}

// remove drops c's subscription to pattern and prunes the levels left empty.
func (n *topicNode) remove(pattern string, c *Client) {
	level, rest, last := match.Split(pattern, '/')
	if level == "#" {
		n.hash.remove(c)
		return
	}
	var child *topicNode
	if level == "+" {
		child = n.plus
	} else {
		child = n.children[level]
	}
	if child == nil {
		return
	}
	if last {
		child.exact.remove(c)
	} else {
		child.remove(rest, c)
	}
	if child.empty() {
		if level == "+" {
			n.plus = nil
		} else {
			delete(n.children, level)
		}
	}
}

// collect appends the sets of subscribers matching the remaining levels of a topic; last
// reports that no level remains.
func (n *topicNode) collect(topic string, done bool, out *[]*clientSet) {
	if done {
		if len(n.exact.list) > 0 {
			*out = append(*out, &n.exact)
		}
		return
	}
	if len(n.hash.list) > 0 {
		*out = append(*out, &n.hash)
	}
	level, rest, last := match.Split(topic, '/')
	if child := n.children[level]; child != nil {
		child.collect(rest, last, out)
	}
	if n.plus != nil {
		n.plus.collect(rest, last, out)
	}
}

// nameNode is a level of the client-name trie that broadcast masks walk.
type nameNode struct {
	children map[string]*nameNode
	client   *Client // the client whose full name ends here
}

func (n *nameNode) add(name string, c *Client) {
	for rest, last := name, false; ; {
		var level string
		level, rest, last = match.Split(rest, '.')
		child := n.children[level]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*nameNode)
			}
			child = &nameNode{}
			n.children[level] = child
		}
		n = child
		if last {
			n.client = c
			return
		}
	}
}

func (n *nameNode) remove(name string) {
	level, rest, last := match.Split(name, '.')
	child := n.children[level]
	if child == nil {
		return
	}
	if last {
		child.client = nil
	} else {
		child.remove(rest)
	}
	if child.client == nil && len(child.children) == 0 {
		delete(n.children, level)
	}
}

// collect appends the clients whose names match the remaining levels of a broadcast mask.
func (n *nameNode) collect(mask string, out *[]*Client) {
	level, rest, last := match.Split(mask, '.')
	switch level {
	case "*":
		for _, child := range n.children {
			child.all(out)
		}
	case "?":
		for _, child := range n.children {
			child.step(rest, last, out)
		}
	default:
		if child := n.children[level]; child != nil {
			child.step(rest, last, out)
		}
	}
}

func (n *nameNode) step(rest string, last bool, out *[]*Client) {
	if last {
		if n.client != nil {
			*out = append(*out, n.client)
		}
		return
	}
	n.collect(rest, out)
}

func (n *nameNode) all(out *[]*Client) {
	if n.client != nil {
		*out = append(*out, n.client)
	}
	for _, child := range n.children {
		child.all(out)
	}
}
