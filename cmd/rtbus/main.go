// Command rtbus is the command-line client of an rtbus (or any BUS/RT) broker: it listens to
// topics, sends, publishes and broadcasts frames, calls RPC methods, lists clients, shows
// statistics and runs the reference benchmark.
//
//	rtbus [-b ADDR] [-n NAME] [-t TIMEOUT] COMMAND [ARGS]
//
// Exit codes: 0 success; 1 the operation failed (an RPC error, a bus refusal); 2 bad usage;
// 3 no connection to the broker (not reachable, or the name refused).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitConnect = 3
)

const usage = `usage: rtbus [-b ADDR] [-n NAME] [-t TIMEOUT] COMMAND [ARGS]

commands:
  listen [-f FORMAT] [-c COUNT] [TOPIC...]   print frames received (and publications on TOPICs)
  send [-q QOS] TARGET PAYLOAD               one-to-one message (PAYLOAD "-" reads stdin)
  publish [-q QOS] TOPIC PAYLOAD             publish on a topic
  broadcast [-q QOS] MASK PAYLOAD            broadcast to names matching MASK
  rpc call TARGET METHOD [key=value...]      call a method, print the result as JSON
  rpc notify TARGET PAYLOAD                  send an RPC notification
  client list [-f REGEX] [-json]             list clients (.broker client.list)
  client kill NAME                           disconnect a client and its secondaries
                                             (.broker rtbus.client.kill)
  stats [-json]                              broker statistics (.broker stats)
  gateway push [-user U] TENANT EVENT [DATA] push an ephemeral message to a tenant's or a
                                             user's streams (rtbusd's internal API)
  gateway kill [-for D] [-undo] JTI...       end sessions at once; -undo revives them
  gateway who [-tenant T] [-user U] [-json]  list open streams (presence)
  cluster status [-json]                     a cluster node's view: routes, JetStream's meta
                                             leader, each stream's leader and replicas
  info                                       broker author and version (.broker info)
  benchmark [-w WORKERS] [-payload-size N] [-i ITERATIONS] [-s STAGE]
                                             the BUS/RT reference benchmark stages

gateway and cluster commands take -a ADDR (env RTBUS_INTERNAL, default 127.0.0.1:8081) and
-token TOKEN (env RTBUS_ADMIN_TOKEN).
key=value values are typed: true/false, integers, floats, else strings ("..." forces a string).
FORMAT: auto (text, else MessagePack as JSON, else hex), text, hex, msgpack.
Exit codes: 0 ok, 1 operation failed, 2 usage, 3 cannot connect.

flags:
`

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type connectError struct{ err error }

func (e connectError) Error() string { return e.err.Error() }
func (e connectError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation's settings and streams.
type cli struct {
	addr    string
	name    string
	timeout time.Duration
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("rtbus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	// rtbusd's RTBUS_BIND may list several addresses; any of them reaches the broker.
	defAddr, _, _ := strings.Cut(os.Getenv("RTBUS_BIND"), ",")
	if defAddr == "" {
		defAddr = defaultSocket()
	}
	fs.StringVar(&c.addr, "b", defAddr, "broker address: a UNIX socket path, host:port, or ws://host:port (env RTBUS_BIND, its first address)")
	fs.StringVar(&c.name, "n", fmt.Sprintf("rtbus.cli.%d", os.Getpid()), "client name")
	fs.DurationVar(&c.timeout, "t", 5*time.Second, "connect, ack and call timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	err := c.dispatch(ctx, fs.Args())
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "rtbus:", err)
		fmt.Fprintln(stderr, "run rtbus -h for help")
		return exitUsage
	case errors.As(err, new(connectError)):
		fmt.Fprintln(stderr, "rtbus:", err)
		return exitConnect
	default:
		fmt.Fprintln(stderr, "rtbus:", err)
		return exitFailed
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "listen":
		return c.listen(ctx, rest)
	case "send", "publish", "broadcast":
		return c.push(cmd, rest)
	case "rpc":
		if len(rest) == 0 {
			return usageError{"rpc: want call or notify"}
		}
		switch rest[0] {
		case "call":
			return c.rpcCall(ctx, rest[1:])
		case "notify":
			return c.rpcNotify(rest[1:])
		}
		return usageError{fmt.Sprintf("rpc: unknown subcommand %q", rest[0])}
	case "client":
		switch {
		case len(rest) > 0 && rest[0] == "list":
			return c.clientList(ctx, rest[1:])
		case len(rest) > 0 && rest[0] == "kill":
			return c.clientKill(ctx, rest[1:])
		}
		return usageError{"client: want list or kill"}
	case "gateway":
		return c.gateway(ctx, rest)
	case "cluster":
		return c.cluster(ctx, rest)
	case "stats":
		return c.stats(ctx, rest)
	case "info":
		return c.brokerCall(ctx, "info", rest)
	case "benchmark":
		return c.benchmark(ctx, rest)
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// dial connects to the broker as name.
func (c *cli) dial(ctx context.Context, name string) (*transport.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := transport.Dial(ctx, c.addr, name, transport.DialOptions{Timeout: c.timeout})
	if err != nil {
		return nil, connectError{fmt.Errorf("connect to %s as %q: %w", c.addr, name, err)}
	}
	return conn, nil
}

func subFlags(name string, c *cli) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

func parseSub(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the flag set printed the help asked for: not a mistake
		}
		return usageError{err.Error()}
	}
	return nil
}

func (c *cli) listen(ctx context.Context, args []string) error {
	fs := subFlags("listen", c)
	format := fs.String("f", "auto", "payload format: auto, text, hex or msgpack")
	count := fs.Int("c", 0, "exit after this many frames (0: until interrupted)")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	switch *format {
	case "auto", "text", "hex", "msgpack":
	default:
		return usageError{fmt.Sprintf("listen: unknown format %q", *format)}
	}
	conn, err := c.dial(ctx, c.name)
	if err != nil {
		return err
	}
	defer conn.Close()
	if topics := fs.Args(); len(topics) > 0 {
		if err := conn.Subscribe(bus.QoSProcessed, topics...); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	// Tell a script (or a test) that the subscriptions are active.
	fmt.Fprintf(c.stderr, "listening as %s\n", c.name)
	for n := 0; *count == 0 || n < *count; n++ {
		f, err := conn.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end
			}
			return err
		}
		topic := "-"
		if f.Kind == bus.KindPublish {
			topic = f.Topic
		}
		if _, err := fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%s\n", f.Kind, f.Sender, topic, showPayload(f.Payload, *format)); err != nil {
			return err
		}
	}
	return nil
}

// push runs send, publish and broadcast.
func (c *cli) push(cmd string, args []string) error {
	fs := subFlags(cmd, c)
	qos := fs.Int("q", 1, "QoS: 0 none, 1 processed (reports errors), 2 realtime, 3 realtime processed")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{fmt.Sprintf("%s: want 2 arguments, got %d", cmd, fs.NArg())}
	}
	if *qos < 0 || *qos > 3 {
		return usageError{fmt.Sprintf("%s: QoS %d: want 0..3", cmd, *qos)}
	}
	payload, err := payloadArg(fs.Arg(1), c.stdin)
	if err != nil {
		return err
	}
	conn, err := c.dial(context.Background(), c.name)
	if err != nil {
		return err
	}
	defer conn.Close()
	q := bus.QoS(*qos)
	switch cmd {
	case "send":
		err = conn.Send(q, fs.Arg(0), payload)
	case "publish":
		err = conn.Publish(q, fs.Arg(0), payload)
	case "broadcast":
		err = conn.Broadcast(q, fs.Arg(0), payload)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, fs.Arg(0), err)
	}
	return nil
}

func (c *cli) rpcClient(ctx context.Context) (*rpc.Client, error) {
	conn, err := c.dial(ctx, c.name)
	if err != nil {
		return nil, err
	}
	return rpc.New(conn, rpc.Options{}), nil
}

// call calls target and prints the result as JSON (or as text or hex when it is no
// MessagePack); an empty result prints nothing.
func (c *cli) call(ctx context.Context, target, method string, params []byte) ([]byte, error) {
	r, err := c.rpcClient(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := r.Call(ctx, target, method, params)
	if err != nil {
		return nil, fmt.Errorf("call %s %s: %w", target, method, err)
	}
	return res, nil
}

func (c *cli) printResult(res []byte) error {
	if len(res) == 0 {
		return nil
	}
	_, err := fmt.Fprintln(c.stdout, showPayload(res, "result"))
	return err
}

func (c *cli) rpcCall(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return usageError{"rpc call: want TARGET METHOD [key=value...]"}
	}
	params, err := encodeParams(args[2:])
	if err != nil {
		return err
	}
	res, err := c.call(ctx, args[0], args[1], params)
	if err != nil {
		return err
	}
	return c.printResult(res)
}

func (c *cli) rpcNotify(args []string) error {
	if len(args) != 2 {
		return usageError{"rpc notify: want TARGET PAYLOAD"}
	}
	payload, err := payloadArg(args[1], c.stdin)
	if err != nil {
		return err
	}
	r, err := c.rpcClient(context.Background())
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Notify(args[0], payload); err != nil {
		return fmt.Errorf("notify %s: %w", args[0], err)
	}
	return nil
}

func (c *cli) brokerCall(ctx context.Context, method string, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", method, args[0])}
	}
	res, err := c.call(ctx, bus.BrokerName, method, nil)
	if err != nil {
		return err
	}
	return c.printResult(res)
}

func (c *cli) stats(ctx context.Context, args []string) error {
	fs := subFlags("stats", c)
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("stats: unexpected argument %q", fs.Arg(0))}
	}
	res, err := c.call(ctx, bus.BrokerName, "stats", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printResult(res)
	}
	var s struct {
		Uptime  uint64 `msgpack:"uptime"`
		RFrames uint64 `msgpack:"r_frames"`
		RBytes  uint64 `msgpack:"r_bytes"`
		WFrames uint64 `msgpack:"w_frames"`
		WBytes  uint64 `msgpack:"w_bytes"`
	}
	if err := rpc.Unmarshal(res, &s); err != nil {
		return fmt.Errorf("stats: bad reply: %w", err)
	}
	fmt.Fprintf(c.stdout, "uptime\t%s\nr_frames\t%d\nr_bytes\t%d\nw_frames\t%d\nw_bytes\t%d\n",
		time.Duration(s.Uptime)*time.Second, s.RFrames, s.RBytes, s.WFrames, s.WBytes)
	return nil
}

func (c *cli) clientList(ctx context.Context, args []string) error {
	fs := subFlags("client list", c)
	filter := fs.String("f", "", "regular expression the names must match")
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("client list: unexpected argument %q", fs.Arg(0))}
	}
	var params []byte
	if *filter != "" {
		params, _ = rpc.Marshal(map[string]string{"filter": *filter})
	}
	res, err := c.call(ctx, bus.BrokerName, "client.list", params)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printResult(res)
	}
	var list struct {
		Clients []struct {
			Name      string  `msgpack:"name"`
			Kind      string  `msgpack:"kind"`
			Source    *string `msgpack:"source"`
			Port      *string `msgpack:"port"`
			RFrames   uint64  `msgpack:"r_frames"`
			RBytes    uint64  `msgpack:"r_bytes"`
			WFrames   uint64  `msgpack:"w_frames"`
			WBytes    uint64  `msgpack:"w_bytes"`
			Queue     uint64  `msgpack:"queue"`
			Instances uint64  `msgpack:"instances"`
		} `msgpack:"clients"`
	}
	if err := rpc.Unmarshal(res, &list); err != nil {
		return fmt.Errorf("client list: bad reply: %w", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tPORT\tR_FRAMES\tR_BYTES\tW_FRAMES\tW_BYTES\tQUEUE\tINSTANCES")
	opt := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	for _, ci := range list.Clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", ci.Name, ci.Kind, opt(ci.Source), opt(ci.Port),
			ci.RFrames, ci.RBytes, ci.WFrames, ci.WBytes, ci.Queue, ci.Instances)
	}
	return tw.Flush()
}

func (c *cli) clientKill(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usageError{"client kill: want NAME"}
	}
	params, _ := rpc.Marshal(map[string]string{"name": args[0]})
	_, err := c.call(ctx, bus.BrokerName, rpc.MethodClientKill, params)
	return err
}

// defaultSocket is rtbusd's default: a per-user runtime directory's socket where there is
// one, else /tmp's.
func defaultSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "rtbus.sock")
	}
	return filepath.Join(os.TempDir(), "rtbus.sock")
}
