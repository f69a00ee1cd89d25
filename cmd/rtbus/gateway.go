package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// gateway runs rtbus gateway push|kill|who against rtbusd's internal API.
func (c *cli) gateway(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"gateway: want push, kill or who"}
	}
	switch args[0] {
	case "push":
		return c.gatewayPush(ctx, args[1:])
	case "kill":
		return c.gatewayKill(ctx, args[1:])
	case "who":
		return c.gatewayWho(ctx, args[1:])
	}
	return usageError{fmt.Sprintf("gateway: unknown subcommand %q", args[0])}
}

// internalAPI is the address and admin token of rtbusd's internal listener.
type internalAPI struct {
	base, token string
	timeout     time.Duration
	header      http.Header // of the last reply
}

func gatewayFlags(name string, c *cli) (*flag.FlagSet, *internalAPI) {
	fs := subFlags(name, c)
	api := &internalAPI{timeout: c.timeout}
	def := os.Getenv("RTBUS_INTERNAL")
	if def == "" || def == "off" {
		def = "127.0.0.1:8081"
	}
	fs.StringVar(&api.base, "a", def, "address of rtbusd's internal API: host:port or http://host:port (env RTBUS_INTERNAL)")
	fs.StringVar(&api.token, "token", os.Getenv("RTBUS_ADMIN_TOKEN"), "rtbusd's admin token (env RTBUS_ADMIN_TOKEN)")
	return fs, api
}

// apiError is the internal API's answer to a request it refused.
type apiError struct {
	msg  string
	code int
}

func (e apiError) Error() string { return e.msg }

// do sends one request and decodes a 2xx reply into out (nil: ignored). A refused
// connection is a connectError; a 4xx/5xx reply an error carrying the server's message.
func (api *internalAPI) do(ctx context.Context, method, path string, body, out any) error {
	if api.token == "" {
		return usageError{"the internal API needs the admin token: -token or RTBUS_ADMIN_TOKEN"}
	}
	base := api.base
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, api.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, rd)
	if err != nil {
		return usageError{fmt.Sprintf("bad address %q: %v", api.base, err)}
	}
	req.Header.Set("Authorization", "Bearer "+api.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return connectError{fmt.Errorf("internal API %s: %w", base, err)}
	}
	defer resp.Body.Close()
	api.header = resp.Header
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return apiError{fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, e.Error), resp.StatusCode}
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// rtbus gateway push [-user USER] TENANT EVENT [DATA]
func (c *cli) gatewayPush(ctx context.Context, args []string) error {
	fs, api := gatewayFlags("gateway push", c)
	user := fs.String("user", "", "only this user's streams (username or id); default: every stream of the tenant")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		return usageError{fmt.Sprintf("gateway push: want TENANT EVENT [DATA], got %d arguments", fs.NArg())}
	}
	data := json.RawMessage("null")
	if fs.NArg() == 3 {
		d := []byte(fs.Arg(2))
		if fs.Arg(2) == "-" {
			var err error
			if d, err = io.ReadAll(c.stdin); err != nil {
				return err
			}
		}
		if !json.Valid(d) {
			return usageError{"gateway push: DATA is not JSON (quote a string: '\"text\"')"}
		}
		data = d
	}
	var out struct{ Delivered int }
	err := api.do(ctx, "POST", "/v1/messages", map[string]any{"tenant_id": fs.Arg(0), "user": *user, "event": fs.Arg(1), "data": data}, &out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "delivered to %d streams\n", out.Delivered)
	return nil
}

// rtbus gateway kill [-for DURATION] JTI...
func (c *cli) gatewayKill(ctx context.Context, args []string) error {
	fs, api := gatewayFlags("gateway kill", c)
	validity := fs.Duration("for", 24*time.Hour, "how long the sessions stay refused; at least their tokens' remaining lifetime")
	undo := fs.Bool("undo", false, "take the sessions off the blacklist instead")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"gateway kill: want JTI... (the sessions' token ids; see gateway who)"}
	}
	if *validity < time.Second {
		return usageError{"gateway kill: -for must be at least 1s"}
	}
	for _, jti := range fs.Args() {
		var err error
		if *undo {
			err = api.do(ctx, "DELETE", "/v1/session-blacklist/"+url.PathEscape(jti), nil, nil)
		} else {
			err = api.do(ctx, "POST", "/v1/session-blacklist", map[string]any{"session_id": jti, "validity_seconds": int64(*validity / time.Second)}, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rtbus gateway who [-tenant T] [-user U] [-json]
func (c *cli) gatewayWho(ctx context.Context, args []string) error {
	fs, api := gatewayFlags("gateway who", c)
	tenant := fs.String("tenant", "", "only this tenant's streams")
	user := fs.String("user", "", "only this user's streams (username or id)")
	asJSON := fs.Bool("json", false, "print the internal API's JSON")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("gateway who: unexpected argument %q", fs.Arg(0))}
	}
	q := url.Values{}
	if *tenant != "" {
		q.Set("tenant_id", *tenant)
	}
	if *user != "" {
		q.Set("user", *user)
	}
	var conns []struct {
		Conn      uint64 `json:"conn"`
		Transport string `json:"transport"`
		User      string `json:"user"`
		Username  string `json:"username"`
		TenantID  string `json:"tenant_id"`
		Session   string `json:"session"`
		Since     int64  `json:"since"`
		Remote    string `json:"remote"`
		Node      string `json:"node,omitempty"` // cluster mode
	}
	path := "/v1/connections"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := api.do(ctx, "GET", path, nil, &conns); err != nil {
		return err
	}
	// A cluster node lists every node's streams, those of the nodes that answered in time.
	if missing := api.header.Get("Rtbus-Nodes-Missing"); missing != "" {
		fmt.Fprintf(c.stderr, "gateway who: no answer from node(s) %s: their streams are not listed\n", missing)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(conns, "", "  ")
		fmt.Fprintf(c.stdout, "%s\n", b)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	cluster := api.header.Get("Rtbus-Nodes") != ""
	if cluster {
		fmt.Fprint(tw, "NODE\t")
	}
	fmt.Fprintln(tw, "CONN\tTRANSPORT\tTENANT\tUSER\tSESSION\tSINCE\tREMOTE")
	for _, cn := range conns {
		user := cn.Username
		if user == "" {
			user = "(anonymous)"
		}
		if cluster {
			fmt.Fprintf(tw, "%s\t", cn.Node)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", cn.Conn, cn.Transport, cn.TenantID, user, cn.Session,
			time.Unix(cn.Since, 0).UTC().Format(time.RFC3339), cn.Remote)
	}
	return tw.Flush()
}
