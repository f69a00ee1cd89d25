// Package match holds the reference matching rules of the BUS/RT protocol (WIRE.md §6): topic
// patterns with "+" and "#", and name masks with "?" and "*". The bus indexes subscriptions and
// names in tries for speed; these plain functions are the definition the tries are tested
// against, and what the access policy uses to check short allow-lists.
package match

import "strings"

// Topic reports whether the subscription pattern matches the published topic. Levels split on
// "/" with no normalisation; "+" matches exactly one level (also an empty one); "#" at level i
// matches when the first i levels match and the topic has at least one more level, and whatever
// follows "#" is ignored. Wildcards in the topic are literal.
func Topic(pattern, topic string) bool {
	return levels(pattern, topic, '/', "+", "#")
}

// Name reports whether the broadcast mask matches the client name. Levels split on "."; "?"
// matches exactly one level and "*" behaves like "#" in Topic. A "%%X" suffix is part of the
// last level.
func Name(mask, name string) bool {
	return levels(mask, name, '.', "?", "*")
}

func levels(pattern, s string, sep byte, one, rest string) bool {
	for {
		var p string
		pDone := false
		if i := strings.IndexByte(pattern, sep); i >= 0 {
			p, pattern = pattern[:i], pattern[i+1:]
		} else {
			p, pDone = pattern, true
		}
		if p == rest {
			// s still has at least one level: it always has, since the loop only runs
			// while s has levels left.
			return true
		}
		var l string
		sDone := false
		if i := strings.IndexByte(s, sep); i >= 0 {
			l, s = s[:i], s[i+1:]
		} else {
			l, sDone = s, true
		}
		if p != one && p != l {
			return false
		}
		if pDone || sDone {
			return pDone && sDone
		}
	}
}

// Split cuts s at the first sep: the level before it, the remainder after it, and whether
// there is no further level (no sep was found).
func Split(s string, sep byte) (level, rest string, last bool) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], false
	}
	return s, "", true
}
