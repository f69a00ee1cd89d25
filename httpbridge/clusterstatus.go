package httpbridge

import (
	"context"
	"net/http"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/jslog"
)

// GET /v1/cluster (internal API): this node's view of the cluster (cluster.Status): routes,
// the JetStream meta leader, each rtbus stream's leader and replicas. A single node has no
// cluster: 404.
func (s *Server) v1Cluster(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Cluster == nil {
		return errorf(http.StatusNotFound, "not a cluster node: this rtbusd runs single-node")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, s.cfg.Cluster.Status(ctx))
	return nil
}

// indexLag is how many event-log sequences this node's copy of the stream holds that its
// index has not applied yet (rtbus_cluster_index_lag, GET /v1/cluster's index_lag).
func (s *Server) indexLag() uint64 {
	if s.db == nil { // New has not opened it yet
		return 0
	}
	last, applied := s.cfg.Cluster.StreamLastSeq(jslog.Stream), s.db.Applied()
	if last > applied {
		return last - applied
	}
	return 0
}
