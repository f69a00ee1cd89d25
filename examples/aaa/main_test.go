package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		`register "test" from 10.1.2.3`:           "refused",
		`register "test" from 127.0.0.1`:          "ok",
		`register "intruder" (not in the policy)`: "refused",
		`register "test2"`:                        "ok",
		`test2 sends to "test"`:                   "ok",
		`test2 sends to "test2"`:                  "refused",
		`test2 publishes "news/today"`:            "ok",
		`test2 publishes "alerts/now"`:            "refused",
		`test2 broadcasts to "*"`:                 "refused",
		`test sends to "test2"`:                   "ok",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for _, line := range lines {
		step := strings.TrimSpace(line[:42])
		result, ok := want[step]
		if !ok {
			t.Errorf("unexpected step %q", step)
			continue
		}
		if got := strings.Fields(line[42:])[0]; strings.TrimSuffix(got, ":") != result {
			t.Errorf("%s: got %q, want %q", step, got, result)
		}
	}
}
