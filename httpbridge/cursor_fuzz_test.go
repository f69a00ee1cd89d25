package httpbridge

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzClusterCursor: a cluster cursor parses only as "<hex epoch>.<decimal seq>" (or a
// plain number, of no epoch), never panics, and what parses formats back to itself.
func FuzzClusterCursor(f *testing.F) {
	for _, s := range []string{"0123456789abcdef.42", "7", "", ".", "a.", ".1", "ab.-1", "ab.+1", "AB.1", "ab.1.2", "ab.18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		epoch, seq, err := parseClusterCursor(v)
		if err != nil {
			return
		}
		back := strconv.FormatUint(seq, 10)
		if epoch != "" {
			back = epoch + "." + back
		}
		// Leading zeros are the one thing that does not come back as given.
		if back != v && strings.TrimLeft(v[strings.IndexByte(v, '.')+1:], "0") != strings.TrimLeft(back[strings.IndexByte(back, '.')+1:], "0") {
			t.Fatalf("%q parsed as (%q, %d)", v, epoch, seq)
		}
		if len(epoch) > maxEpochLen || strings.Trim(epoch, "0123456789abcdef") != "" {
			t.Fatalf("%q: epoch %q", v, epoch)
		}
	})
}

func TestClusterCursor(t *testing.T) {
	for v, want := range map[string]string{"0123456789abcdef.42": "0123456789abcdef 42", "7": " 7", "ab.0": "ab 0"} {
		e, n, err := parseClusterCursor(v)
		if err != nil || e+" "+strconv.FormatUint(n, 10) != want {
			t.Errorf("%q: %q %d %v", v, e, n, err)
		}
	}
	for _, v := range []string{"", ".", "a.", ".1", "ab.-1", "ab.+1", "AB.1", "ab.1.2", "ab.18446744073709551616", strings.Repeat("a", 65) + ".1", "x"} {
		if _, _, err := parseClusterCursor(v); err == nil {
			t.Errorf("%q parsed", v)
		}
	}
}
