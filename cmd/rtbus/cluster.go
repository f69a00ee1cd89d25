package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
)

// clusterStatus is GET /v1/cluster's reply (package cluster's Status), decoded here without
// importing the cluster package and the NATS server it links.
type clusterStatus struct {
	Node        string `json:"node"`
	Cluster     string `json:"cluster"`
	Mode        string `json:"mode"`
	Replicas    int    `json:"replicas"`
	Ready       bool   `json:"ready"`
	Error       string `json:"error"`
	MetaLeader  string `json:"meta_leader"`
	ClusterSize int    `json:"cluster_size"`
	Routes      []struct {
		Node string `json:"node"`
		Addr string `json:"addr"`
		RTT  string `json:"rtt"`
	} `json:"routes"`
	Streams []struct {
		Name     string `json:"name"`
		Leader   string `json:"leader"`
		Messages uint64 `json:"messages"`
		LastSeq  uint64 `json:"last_seq"`
		Replicas []struct {
			Node    string `json:"node"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
			Lag     uint64 `json:"lag"`
		} `json:"replicas"`
	} `json:"streams"`
	IndexLag *uint64 `json:"index_lag"`
}

// rtbus cluster status [-a ADDR] [-token T] [-json]
func (c *cli) cluster(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "status" {
		return usageError{"cluster: want status"}
	}
	fs, api := gatewayFlags("cluster status", c)
	asJSON := fs.Bool("json", false, "print the internal API's JSON")
	if err := parseSub(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("cluster status: unexpected argument %q", fs.Arg(0))}
	}
	var raw json.RawMessage
	if err := api.do(ctx, "GET", "/v1/cluster", nil, &raw); err != nil {
		var ae apiError
		if errors.As(err, &ae) && ae.code == http.StatusNotFound {
			return fmt.Errorf("rtbusd at %s runs single-node: it was started without -cluster or -nats-url", api.base)
		}
		return err
	}
	var st clusterStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("GET /v1/cluster: %w", err)
	}
	if *asJSON {
		var out any
		json.Unmarshal(raw, &out)
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(c.stdout, "%s\n", b)
	} else {
		printCluster(c, &st)
	}
	if !st.Ready {
		return fmt.Errorf("node %s: %s", st.Node, st.Error)
	}
	return nil
}

func printCluster(c *cli, st *clusterStatus) {
	w := c.stdout
	where := st.Mode
	if st.Cluster != "" {
		where += ", cluster " + st.Cluster
	}
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY (" + strings.TrimPrefix(st.Error, "cluster: JetStream not ready: ") + ")"
	}
	fmt.Fprintf(w, "node:        %s (%s)\n", st.Node, where)
	fmt.Fprintf(w, "jetstream:   %s\n", ready)
	switch {
	case st.Mode == "external":
		fmt.Fprintf(w, "meta leader: (not visible to a client of an external NATS cluster)\n")
	case st.MetaLeader == "":
		fmt.Fprintf(w, "meta leader: none\n")
	case !st.Ready:
		fmt.Fprintf(w, "meta leader: %s, last known: no quorum reached from here (%d nodes)\n", st.MetaLeader, st.ClusterSize)
	default:
		fmt.Fprintf(w, "meta leader: %s (%d nodes)\n", st.MetaLeader, st.ClusterSize)
	}
	fmt.Fprintf(w, "replicas:    %d\n", st.Replicas)
	if st.IndexLag != nil {
		fmt.Fprintf(w, "index lag:   %d sequences\n", *st.IndexLag)
	}
	if st.Mode == "embedded" {
		fmt.Fprintf(w, "routes:      %d peers connected\n", len(st.Routes))
		for _, r := range st.Routes {
			rtt := ""
			if r.RTT != "" {
				rtt = ", rtt " + r.RTT
			}
			fmt.Fprintf(w, "  %s (%s%s)\n", r.Node, r.Addr, rtt)
		}
	}
	if !st.Ready {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tLEADER\tMESSAGES\tLAST SEQ\tREPLICAS")
	for _, s := range st.Streams {
		var reps []string
		for _, r := range s.Replicas {
			state := "lagging"
			switch {
			case r.Offline:
				state = "offline"
			case r.Current:
				state = "current"
			case r.Lag > 0:
				state = fmt.Sprintf("lagging %d", r.Lag)
			}
			reps = append(reps, r.Node+" "+state)
		}
		leader := s.Leader
		if leader == "" {
			leader = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", s.Name, leader, s.Messages, s.LastSeq, strings.Join(reps, ", "))
	}
	if len(st.Streams) == 0 {
		fmt.Fprintln(tw, "(no rtbus streams yet)\t\t\t\t")
	}
	tw.Flush()
}
