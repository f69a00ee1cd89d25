// Command clusterload measures rtbusd's cluster mode next to a single node, in the same run
// (bench/cluster.sh): it starts the rtbusd processes itself, on loopback, with fresh data
// directories, and prints one table per benchmark.
//
//   - inserts: synced inserts/s with -conc clients (each a closed loop of POST /insert),
//     spread round robin over the nodes, for -duration; p50/p99 of the insert's answer time.
//   - fanout: -subs SSE streams of one tenant spread round robin over the nodes, -msgs
//     inserts on the first node (closed loop, -pubconc publishers): deliveries/s and the
//     insert→receive latency, as bench/gwload measures them.
//   - failover (cluster only): a client inserts without pause through the nodes that stay
//     up and a stream follows the tenant on the node that leads the event log; that node is
//     killed (SIGKILL). Measured from the kill: the next acknowledged insert, and the first
//     event of the stream, resumed on another node with its cursor. -failovers times, the
//     killed node restarted in between.
//
// The targets alternate within each round (-runs rounds) so that a shared machine's noise
// hits them alike; the tables give medians. Loopback only; every wait is bounded.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}, Timeout: 30 * time.Second}

type config struct {
	bin, only        string
	runs, nodes      int
	concs            []int
	duration         time.Duration
	subs, msgs, pubc int
	failovers        int
	keep             bool
}

func main() {
	var c config
	var concs string
	flag.StringVar(&c.bin, "rtbusd", "", "the rtbusd binary (default: built from ./cmd/rtbusd)")
	flag.StringVar(&c.only, "only", "inserts,fanout,failover", "benchmarks to run, comma-separated")
	flag.IntVar(&c.runs, "runs", 3, "rounds of each benchmark (medians)")
	flag.IntVar(&c.nodes, "nodes", 3, "cluster nodes")
	flag.StringVar(&concs, "conc", "8,64", "inserts: concurrent clients, comma-separated")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "inserts: length of each measurement")
	flag.IntVar(&c.subs, "subs", 1000, "fanout: SSE streams")
	flag.IntVar(&c.msgs, "msgs", 200, "fanout: inserts")
	flag.IntVar(&c.pubc, "pubconc", 4, "fanout: concurrent publishers")
	flag.IntVar(&c.failovers, "failovers", 3, "failover: leader kills")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (the nodes' logs)")
	flag.StringVar(&logLevel, "log-level", "warn", "the nodes' -log-level (info shows leader changes; with -keep)")
	flag.Parse()
	for _, s := range strings.Split(concs, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			fatal(fmt.Errorf("-conc %q", concs))
		}
		c.concs = append(c.concs, n)
	}
	dir, err := os.MkdirTemp("", "clusterload")
	if err != nil {
		fatal(err)
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("work directory:", dir)
	}
	if c.bin == "" {
		c.bin = filepath.Join(dir, "rtbusd")
		if out, err := exec.Command("go", "build", "-o", c.bin, "./cmd/rtbusd").CombinedOutput(); err != nil {
			fatal(fmt.Errorf("go build: %v\n%s", err, out))
		}
	}
	only := map[string]bool{}
	for _, b := range strings.Split(c.only, ",") {
		only[b] = true
	}
	if only["inserts"] || only["fanout"] {
		single, err := startSystem(c.bin, dir, "single", 1)
		if err != nil {
			fatal(err)
		}
		clus, err := startSystem(c.bin, dir, "cluster", c.nodes)
		if err != nil {
			single.stop()
			fatal(err)
		}
		systems := []*system{single, clus}
		if only["inserts"] {
			benchInserts(&c, systems)
		}
		if only["fanout"] {
			benchFanout(&c, systems)
		}
		single.stop()
		clus.stop()
	}
	if only["failover"] {
		clus, err := startSystem(c.bin, dir, "failover", c.nodes)
		if err != nil {
			fatal(err)
		}
		benchFailover(&c, clus)
		clus.stop()
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "clusterload:", err)
	os.Exit(1)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[(len(s)-1)/2]
}

// pct is the p-quantile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
