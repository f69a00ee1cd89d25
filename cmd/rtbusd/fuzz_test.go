package main

import (
	"flag"
	"strings"
	"testing"
)

// FuzzParseBind: any -B value or RTBUS_BIND is either refused or read as listeners that each
// have an address, with settings only where they were written.
func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/a.sock", "/a.sock,aaa=/p.json,mode=0600", "/a,/b,aaa=x", "aaa=x", ",", "/a,mode=9", "ws://h:1/x,aaa==", ""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, env bool) {
		specs, err := parseBind(v, env)
		if err != nil {
			return
		}
		if len(specs) == 0 || (!env && len(specs) != 1) {
			t.Fatalf("parseBind(%q, %v) = %d listeners", v, env, len(specs))
		}
		for _, s := range specs {
			if s.addr == "" || s.mode > 0o777 || (s.aaa != "" && !strings.Contains(v, "aaa="+s.aaa)) {
				t.Fatalf("parseBind(%q, %v): bad listener %+v", v, env, s)
			}
		}
	})
}

// FuzzBrokerArgs: broker's flags are rewritten without panicking, one rtbus flag each.
func FuzzBrokerArgs(f *testing.F) {
	f.Add("--port\x008080\x00--secret=s\x00-B\x00/x.sock")
	f.Add("--connection\x00https\x00--key-path\x00k")
	f.Add("-v\x00--\x00--port")
	f.Add("--connection\x00https\x00--key=path") // was rewritten with -tls-key twice
	f.Add("--connection=https\x00--secret=s\x00--port=1")
	fs := flag.NewFlagSet("rtbusd", flag.ContinueOnError)
	fs.String("B", "", "")
	fs.Bool("v", false, "")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		out, _, err := brokerArgs(args, fs)
		if err != nil {
			return
		}
		// Each of broker's flags becomes one rtbus flag (two arguments where it was written
		// --flag=value); only --connection https adds the key and certificate broker
		// defaulted to.
		joinedValues := 0
		for _, a := range args {
			if strings.HasPrefix(a, "-") && strings.Contains(a, "=") {
				joinedValues++
			}
		}
		if len(out) > len(args)+joinedValues+2 {
			t.Fatalf("brokerArgs(%q) grew to %q", args, out)
		}
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") && out[0] != args[0] {
			t.Fatalf("brokerArgs(%q) = %q: a leading argument moved", args, out)
		}
	})
}
