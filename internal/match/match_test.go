package match

import "testing"

func TestTopic(t *testing.T) {
	for _, c := range []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a", "/a", false},
		{"/a", "/a", true},
		{"a//b", "a/b", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"+", "", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "a/b", true},
		{"a/+", "a", false},
		{"#", "", true},
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", false},
		{"a/#", "a/", true},
		{"a/#", "a/x", true},
		{"a/#", "a/x/y", true},
		{"a/#", "b/x", false},
		{"a/#/ignored", "a/x/y", true},
		{"a/#/ignored", "a", false},
		{"+/#", "a", false},
		{"+/#", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/+", true},
		{"a/x", "a/+", false},
		{"a/x", "a/#", false},
		{"a#", "a#", true},
		{"a#", "ab", false},
		{"a+", "ab", false},
		{"", "", true},
		{"", "a", false},
	} {
		if got := Topic(c.pattern, c.topic); got != c.want {
			t.Errorf("Topic(%q, %q) = %v, want %v", c.pattern, c.topic, got, c.want)
		}
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct {
		mask, name string
		want       bool
	}{
		{"*", "a", true},
		{"*", "a.b", true},
		{"*", "a%%1", true},
		{"worker.*", "worker.1", true},
		{"worker.*", "worker.1.x", true},
		{"worker.*", "worker", false},
		{"worker.*", "worker.1%%x", true},
		{"worker.?", "worker.1", true},
		{"worker.?", "worker.1.2", false},
		{"?.x", "a.x", true},
		{"?.x", "a.y", false},
		{"a.b", "a.b", true},
		{"a.b", "a.b%%1", false},
		{"a.b%%1", "a.b%%1", true},
		{"a/b", "a/b", true},
		{"a.*", "a/b", false},
	} {
		if got := Name(c.mask, c.name); got != c.want {
			t.Errorf("Name(%q, %q) = %v, want %v", c.mask, c.name, got, c.want)
		}
	}
}
