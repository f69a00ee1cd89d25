package httpbridge

import (
	"context"
	"net/http"
	"time"
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
