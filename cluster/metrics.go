package cluster

import "github.com/prometheus/client_golang/prometheus"

var (
	descReady = prometheus.NewDesc("rtbus_cluster_ready",
		"1 when JetStream answers on this node (it has a meta leader), 0 otherwise; checked every second.", nil, nil)
	descRoutes = prometheus.NewDesc("rtbus_cluster_routes",
		"Peers this node's embedded NATS server is routed to.", nil, nil)
	descMetaLeader = prometheus.NewDesc("rtbus_cluster_meta_leader",
		"1 when this node leads JetStream's meta group.", nil, nil)
	descStreamLeader = prometheus.NewDesc("rtbus_cluster_stream_leader",
		"1 when this node leads the rtbus stream (the event log, or a bucket's stream).", []string{"stream"}, nil)
	descReplicasCurrent = prometheus.NewDesc("rtbus_cluster_stream_replicas_current",
		"Replicas of the rtbus stream that are caught up, the leader included.", []string{"stream"}, nil)
	descIndexLag = prometheus.NewDesc("rtbus_cluster_index_lag",
		"Event-log sequences this node's index has yet to apply.", nil, nil)
)

// Collector exposes the node's cluster figures to Prometheus, read at scrape time from what
// the watcher last gathered (it never blocks on the network): readiness, routes, the
// leaders, the replicas and the index lag.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descRoutes, descMetaLeader, descStreamLeader, descReplicasCurrent, descIndexLag} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, bool01(n.Readiness() == nil))
	st := n.LastStatus()
	if n.srv != nil {
		ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(len(n.routes())))
		ch <- prometheus.MustNewConstMetric(descMetaLeader, prometheus.GaugeValue, bool01(st.MetaLeader != "" && st.MetaLeader == n.NodeName()))
	}
	for _, s := range st.Streams {
		ch <- prometheus.MustNewConstMetric(descStreamLeader, prometheus.GaugeValue, bool01(s.Leader == n.NodeName()), s.Name)
		cur := 0
		if s.Leader != "" {
			cur = 1
		}
		for _, r := range s.Replicas {
			if r.Current {
				cur++
			}
		}
		ch <- prometheus.MustNewConstMetric(descReplicasCurrent, prometheus.GaugeValue, float64(cur), s.Name)
	}
	if f := n.indexLag.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(descIndexLag, prometheus.GaugeValue, float64((*f)()))
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
