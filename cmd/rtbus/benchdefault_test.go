package main

import (
	"strings"
	"testing"
)

// The benchmark's default run ends in seconds: 100,000 iterations a stage, not the
// reference's 1,000,000 (4.6 s for all seven stages on the development machine).
func TestBenchmarkDefaultIsShort(t *testing.T) {
	build(t)
	r := rtbus(t, "/nonexistent.sock", "", "benchmark", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "(default 100000)") {
		t.Errorf("benchmark -h: %+v", r)
	}
}
