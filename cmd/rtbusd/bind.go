package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// listenSpec is one -B address with its own settings.
type listenSpec struct {
	addr string
	aaa  string      // policy file of this listener; "" uses -aaa
	mode os.FileMode // UNIX socket file mode; 0 uses -socket-mode
}

// bindHelp documents -B and RTBUS_BIND.
const bindHelp = `listen address, repeatable: a path (/…, *.sock, *.socket, *.ipc) for a UNIX socket, ws://host:port for WebSocket, wss://host:port for WebSocket over TLS, tls://host:port for TCP over TLS, else host:port for TCP. Settings of this listener follow the address after commas: aaa=FILE its own access policy instead of -aaa (reloaded on SIGHUP too), mode=0600 the file mode of its UNIX socket; e.g. -B /run/rtbus/plugins.sock,aaa=/etc/rtbus/plugins.json,mode=0666 (env RTBUS_BIND, comma-separated, settings after their address: /run/rtbus/rtbus.sock,/run/rtbus/plugins.sock,aaa=/etc/rtbus/plugins.json; default `

// parseBind reads the comma-separated items of one -B value, or of RTBUS_BIND (env true),
// where several addresses may follow each other. Settings apply to the address before them.
func parseBind(v string, env bool) ([]listenSpec, error) {
	var out []listenSpec
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		key, val, isSetting := strings.Cut(item, "=")
		if isSetting && (key == "aaa" || key == "mode") {
			if len(out) == 0 {
				return nil, fmt.Errorf("%s comes before any address", item)
			}
			l := &out[len(out)-1]
			switch {
			case val == "":
				return nil, fmt.Errorf("%s: empty value", item)
			case key == "aaa":
				l.aaa = val
			default:
				m, err := strconv.ParseUint(val, 8, 32)
				if err != nil || m == 0 || m > 0o777 {
					return nil, fmt.Errorf("%s: want an octal file mode such as 0660", item)
				}
				l.mode = os.FileMode(m)
			}
			continue
		}
		if item == "" {
			return nil, fmt.Errorf("empty address in %q", v)
		}
		if len(out) == 1 && !env {
			return nil, fmt.Errorf("%q: one address per -B (repeat -B for more)", v)
		}
		out = append(out, listenSpec{addr: item})
	}
	return out, nil
}
