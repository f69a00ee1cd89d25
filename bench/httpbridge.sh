#!/usr/bin/env bash
# SSE fan-out of the HTTP bridge (rtbusd, full stack: POST /insert synced to pebble, then
# GET /events/{tenant} streams) next to the bare broadcaster refsse, both driven by the same
# load generator (../shared/bench/sseload) in the same run. Loopback only; not part of CI.
# Usage: bench/httpbridge.sh [SUBS...]   (default: 1000 5000); MSGS, RUNS, RATE, PUBCONC, IDLE, HTTP_PORT,
# REF_PORT override.
set -euo pipefail
cd "$(dirname "$0")/.."
HTTP_PORT=${HTTP_PORT:-3310} REF_PORT=${REF_PORT:-3311}
shared=${SHARED_BENCH:-$(cd ../shared/bench && pwd)}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building rtbusd, refsse and sseload in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
(cd "$shared/refsse" && go build -o "$work/refsse" .)
(cd "$shared/sseload" && go build -o "$work/sseload" .)
go build -o "$work/idlestreams" ./bench/idlestreams

"$work/rtbusd" -B "$work/bus.sock" -http 127.0.0.1:${HTTP_PORT} -data-dir "$work/data" \
  -admin-token bench-admin -log-level warn & pids+=($!)
rtbusd_pid=$!
"$work/refsse" -addr 127.0.0.1:${REF_PORT} >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/${HTTP_PORT}) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/${REF_PORT}) 2>/dev/null && break
  sleep 0.1
done
curl -fsS -X POST http://127.0.0.1:${HTTP_PORT}/users -d '{"username":"bench","password":"bench","tenant_id":"bench"}' >/dev/null
jwt=$(curl -fsS -X POST http://127.0.0.1:${HTTP_PORT}/login -d '{"username":"bench","password":"bench"}' | sed 's/.*"jwt":"\([^"]*\)".*/\1/')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(go version)"
msgs=${MSGS:-1000}; runs=${RUNS:-3}; rate=${RATE:-0}
sizes="${*:-1000 5000}"
[ "${FANOUT:-1}" = 0 ] && sizes=""   # FANOUT=0: the idle-stream measurement only
for subs in $sizes; do
  for subs1 in $subs; do  # (one level of words)
    echo "== $subs1 streams, $msgs events, rate ${rate:-closed loop}"
    echo "-- refsse"
    "$work/sseload" -target generic -base http://127.0.0.1:${REF_PORT} \
      -suburl "http://127.0.0.1:${REF_PORT}/sse?topic={topic}" -puburl "http://127.0.0.1:${REF_PORT}/pub?topic={topic}" \
      -pubbody '{{payload}}' -pubct text/plain -subs "$subs1" -msgs "$msgs" -rate "$rate" -runs "$runs" -pubconc "${PUBCONC:-4}"
    echo "-- rtbusd HTTP bridge"
    "$work/sseload" -target generic -base http://127.0.0.1:${HTTP_PORT} \
      -suburl "http://127.0.0.1:${HTTP_PORT}/events/bench?token=$jwt" -puburl "http://127.0.0.1:${HTTP_PORT}/insert" \
      -pubbody '{"event":"bench","data":{{payload}}}' -pubheader "Authorization: Bearer $jwt" \
      -subs "$subs1" -msgs "$msgs" -rate "$rate" -runs "$runs" -pubconc "${PUBCONC:-4}"
  done
done

# Memory per idle stream, on a tenant of its own whose state is one event (each stream gets
# one message at connect, then stays idle).
curl -fsS -X POST http://127.0.0.1:${HTTP_PORT}/users -d '{"username":"idle","password":"idle","tenant_id":"idle"}' >/dev/null
ijwt=$(curl -fsS -X POST http://127.0.0.1:${HTTP_PORT}/login -d '{"username":"idle","password":"idle"}' | sed 's/.*"jwt":"\([^"]*\)".*/\1/')
curl -fsS -X POST http://127.0.0.1:${HTTP_PORT}/insert -H "Authorization: Bearer $ijwt" -d '{"event":"idle","data":1}' >/dev/null
echo "== idle streams"
"$work/idlestreams" -url "http://127.0.0.1:${HTTP_PORT}/events/idle?token=$ijwt" -pid "$rtbusd_pid" -n "${IDLE:-10000}"
