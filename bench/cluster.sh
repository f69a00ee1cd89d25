#!/usr/bin/env bash
# rtbusd's cluster mode next to a single node, in the same run (bench/clusterload starts the
# processes: one single node and a cluster of NODES on loopback, fresh data directories).
# Loopback only; not CI.
#
# Benchmarks (targets alternating in each of RUNS rounds; medians):
#   inserts   synced inserts/s with CONC closed-loop clients spread over the nodes, DURATION each
#   fanout    SUBS SSE streams spread over the nodes, MSGS inserts on the first node
#             (4 publishers): deliveries/s and insert-to-receive p50/p99
#   failover  SIGKILL of the event log's leader, FAILOVERS times: seconds to the next
#             acknowledged insert and to the first event of the stream resumed on another node
#
# Usage: bench/cluster.sh   (env: RUNS=3 NODES=3 CONC=8,64 DURATION=10s SUBS=1000 MSGS=200
#                            FAILOVERS=3 ONLY=inserts,fanout,failover)
# Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building rtbusd and clusterload in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
go build -o "$work/clusterload" ./bench/clusterload
echo "$(machine); load $(cut -d' ' -f1-3 /proc/loadavg) at start; $(date -u '+%Y-%m-%d %H:%M UTC')"
"$work/clusterload" -rtbusd "$work/rtbusd" -runs "${RUNS:-3}" -nodes "${NODES:-3}" -conc "${CONC:-8,64}" \
  -duration "${DURATION:-10s}" -subs "${SUBS:-1000}" -msgs "${MSGS:-200}" -failovers "${FAILOVERS:-3}" \
  -only "${ONLY:-inserts,fanout,failover}"
echo
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
