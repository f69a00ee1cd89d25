package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// A command line written for the broker BaaS (the Rust crate "broker") keeps working: its
// flags and its SAVE_PATH variable are read as the rtbus flags they correspond to, each
// with a one-line notice naming the rtbus spelling. They are not flags of the flag set, so
// -h lists rtbus's own only; docs/operations.md has the table.

// brokerFlag is one of broker's flags and the rtbus flag it becomes.
type brokerFlag struct {
	name, to string
	value    func(string) string // the rtbus value; nil: the same
	secret   bool                // the notice leaves the value out
}

var brokerFlags = []brokerFlag{
	// broker 5.x (go-flag: --port, --origin, --expiry, --secret, --connection,
	// --key-path, --cert-path; SAVE_PATH in the environment).
	{name: "port", to: "http", value: func(v string) string { return ":" + v }},
	{name: "origin", to: "origin"},
	{name: "expiry", to: "jwt-expiry"},
	{name: "secret", to: "jwt-secret", secret: true},
	{name: "key-path", to: "tls-key"},
	{name: "cert-path", to: "tls-cert"},
	{name: "connection"}, // http or https: see brokerArgs
	// Later broker versions.
	{name: "jwt_secret", to: "jwt-secret", secret: true},
	{name: "jwt_expiry", to: "jwt-expiry"},
	{name: "admin_token", to: "admin-token", secret: true},
	{name: "save_path", to: "data-dir"},
	{name: "cert", to: "tls-cert"},
	{name: "key", to: "tls-key"},
}

// brokerArgs rewrites broker's flags in args as rtbus flags, and returns the notices to log
// (without the values of secrets). A name that fs defines, such as --origin, is rtbus's own
// and left alone. broker 5.x used --key-path and
// --cert-path only with --connection https (then defaulting to ./broker.rsa and
// ./broker.pem); so does this.
func brokerArgs(args []string, fs *flag.FlagSet) (out, notices []string, err error) {
	var https bool
	tlsFiles := map[string]string{}
	explicit := map[string]bool{} // -tls-key / -tls-cert given through broker's --key / --cert
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			out = append(out, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var bf *brokerFlag
		for j := range brokerFlags {
			if brokerFlags[j].name == name && fs.Lookup(name) == nil {
				bf = &brokerFlags[j]
			}
		}
		if bf == nil {
			out = append(out, a)
			if !hasVal && takesValue(fs, name) && i+1 < len(args) {
				i++
				out = append(out, args[i]) // a value, even one that looks like a flag
			}
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("broker's flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		switch bf.name {
		case "connection":
			switch val {
			case "http":
			case "https":
				https = true
			default:
				return nil, nil, fmt.Errorf("broker's flag --connection %q: want http or https", val)
			}
			notices = append(notices, fmt.Sprintf("--connection %s is broker's flag; rtbus serves HTTPS when -tls-cert and -tls-key are given", val))
			continue
		case "key-path", "cert-path":
			tlsFiles[bf.to] = val
			continue
		}
		v := val
		if bf.value != nil {
			v = bf.value(val)
		}
		out = append(out, "-"+bf.to, v)
		explicit[bf.to] = true
		shown := " " + v
		if bf.secret {
			shown = ""
		}
		notices = append(notices, fmt.Sprintf("--%s is broker's flag; rtbus's is -%s%s", bf.name, bf.to, shown))
	}
	if https {
		for flagName, def := range map[string]string{"tls-key": "./broker.rsa", "tls-cert": "./broker.pem"} {
			if _, ok := tlsFiles[flagName]; !ok {
				tlsFiles[flagName] = def
			}
		}
	}
	for _, flagName := range []string{"tls-cert", "tls-key"} {
		v, ok := tlsFiles[flagName]
		switch {
		case !ok:
		case explicit[flagName]:
			// --key / --cert name the file outright: the path flags' value, or the default
			// that --connection https implies, would only be overridden by it.
		case https:
			out = append([]string{"-" + flagName, v}, out...)
			notices = append(notices, fmt.Sprintf("broker's %s-path is rtbus's -%s %s", strings.TrimPrefix(flagName, "tls-"), flagName, v))
		default:
			notices = append(notices, fmt.Sprintf("broker's --%s-path %s is ignored without --connection https, as broker did", strings.TrimPrefix(flagName, "tls-"), v))
		}
	}
	return out, notices, nil
}

// takesValue reports whether the rtbus flag name reads the next argument as its value.
func takesValue(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// brokerEnv applies broker's SAVE_PATH when the rtbus settings leave the data directory
// alone, and returns the notice.
func brokerEnv(fs *flag.FlagSet, args []string) (string, error) {
	v, ok := os.LookupEnv("SAVE_PATH")
	if !ok || v == "" {
		return "", nil
	}
	if _, set := os.LookupEnv("RTBUS_DATA_DIR"); set {
		return "SAVE_PATH is broker's variable; RTBUS_DATA_DIR, rtbus's, wins", nil
	}
	for _, a := range args {
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && n == "data-dir" {
			return "SAVE_PATH is broker's variable; -data-dir wins", nil
		}
	}
	if err := fs.Set("data-dir", v); err != nil {
		return "", err
	}
	return "SAVE_PATH is broker's variable; rtbus's is RTBUS_DATA_DIR (or -data-dir " + v + ")", nil
}
