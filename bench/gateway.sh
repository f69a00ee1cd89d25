#!/usr/bin/env bash
# rtbusd's front-end streams over SSE, WebSocket and long-polling, next to the bare SSE
# broadcaster, in the same run (bench/gwload for rtbusd's three transports, ../shared/bench
# sseload + refsse for the ceiling). Loopback only; not CI.
#
# Targets: refsse (the bare broadcaster, 128-byte bodies), and rtbusd's GET /events/{tenant}
# (sse), GET /ws/{tenant} (ws) and GET /poll/{tenant} (poll), fed by POST /insert (synced to
# pebble, then published); each run streams a fresh tenant.
# Scenarios: closed-loop fan-out at each SUBS streams (MSGS x 1,000 / SUBS inserts, 4
# publishers), then latency: LAT_SUBS streams, LAT_RATE inserts/s (20 events/s each).
# Each scenario runs RUNS times, the targets interleaved in each round; medians. srv_us and
# gen_us: CPU time of the server (rtbusd or refsse) and of the load generator (gwload) per
# delivered event, from /proc and getrusage, the run's setup included; on a shared machine
# they move far less than the wall-clock figures. Before each rtbusd run the script waits
# for the streams of the last one to be closed (settle).
# First, memory per idle stream: IDLE streams held by a raw-TCP client, a fresh rtbusd for
# each transport, the growth of its RSS.
#
# SRV_CPUS and GEN_CPUS (taskset lists, such as 0 and 1) pin the servers and the load
# generators to CPUs of their own, so that neither waits for the other's core.
#
# Usage: bench/gateway.sh   (env: RUNS=3 MSGS=1000 SUBS="1000 5000" LAT_SUBS=1000
#                            LAT_RATE=20 LAT_MSGS=200 IDLE=10000; IDLE=0 skips memory;
#                            SRV_CPUS= GEN_CPUS=)
# Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED_BENCH:-$(cd ../shared/bench && pwd)}
RUNS=${RUNS:-3}; MSGS=${MSGS:-1000}; SUBS=${SUBS:-"1000 5000"}
LAT_SUBS=${LAT_SUBS:-1000}; LAT_RATE=${LAT_RATE:-20}; LAT_MSGS=${LAT_MSGS:-200}; IDLE=${IDLE:-10000}
. bench/lib.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building rtbusd, gwload, refsse and sseload in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
go build -o "$work/gwload" ./bench/gwload
(cd "$shared/refsse" && go build -o "$work/refsse" .)
(cd "$shared/sseload" && go build -o "$work/sseload" .)

# srv and gen run a server or a load generator on the CPUs given to it. They exec, so that
# $! is the server's own pid: call them only in subshells (&, $(...), a pipeline).
srv() { if [ -n "${SRV_CPUS:-}" ]; then exec taskset -c "$SRV_CPUS" "$@"; else exec "$@"; fi; }
gen() { if [ -n "${GEN_CPUS:-}" ]; then exec taskset -c "$GEN_CPUS" "$@"; else exec "$@"; fi; }

# start_rtbusd DIR: a fresh rtbusd on port 3203; sets rtbusd_pid.
start_rtbusd() {
  srv "$work/rtbusd" -B "$work/$1.sock" -http 127.0.0.1:3203 -internal off -data-dir "$work/$1" \
    -admin-token bench-admin-token -log-level warn & pids+=($!)
  rtbusd_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3203) 2>/dev/null && return 0; sleep 0.1; done
  echo "rtbusd did not start" >&2; exit 1
}

# socks PID: the sockets PID holds.
socks() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }

# settle: wait (30 s at most) until rtbusd holds no more sockets than after its start: the
# streams of the last run end at the keep-alive tick after their clients left (7.5 s at most),
# and a run must neither be charged with their teardown nor add its connections to theirs
# against the connection cap.
settle() {
  for _ in $(seq 300); do [ "$(socks "$rtbusd_pid")" -le $((rtbusd_socks + 8)) ] && return 0; sleep 0.1; done
  echo "rtbusd still holds $(socks "$rtbusd_pid") sockets" >&2
}

echo "$(machine); load $(cut -d' ' -f1-3 /proc/loadavg); servers on CPUs ${SRV_CPUS:-any}, load generators on ${GEN_CPUS:-any}"
if [ "$IDLE" != 0 ]; then
  echo
  echo "== memory per idle stream: $IDLE streams held by a raw-TCP client, a fresh rtbusd each, its RSS growth"
  for t in sse ws; do
    start_rtbusd "idle-$t"
    gen "$work/gwload" -base http://127.0.0.1:3203 -transport $t -idle "$IDLE" -pid "$rtbusd_pid" 2>&1 | tail -1
    kill "$rtbusd_pid"; wait "$rtbusd_pid" 2>/dev/null || true
    sleep 1
  done
fi

srv "$work/refsse" -addr 127.0.0.1:3200 >/dev/null 2>&1 & pids+=($!)
refsse_pid=$!
start_rtbusd data
rtbusd_socks=$(socks "$rtbusd_pid")
targets=(refsse sse ws poll)

# cputicks PID: the process's user + system CPU time so far, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)

# load TARGET SUBS MSGS RATE: one run, one JSON line appended to $work/TARGET.json, with the
# server's CPU time per delivered event (srv_us, the run's setup included) and the load
# generator's (gen_us; gwload only) added.
load() {
  local t=$1 subs=$2 msgs=$3 rate=$4 pid=$rtbusd_pid c0 line
  if [ "$t" = refsse ]; then pid=$refsse_pid; else settle; fi
  c0=$(cputicks "$pid")
  if [ "$t" = refsse ]; then
    line=$(gen "$work/sseload" -target generic -base http://127.0.0.1:3200 -suburl "http://127.0.0.1:3200/sse?topic={topic}" \
      -puburl "http://127.0.0.1:3200/pub?topic={topic}" -pubbody '{{payload}}' -pubct text/plain \
      -subs "$subs" -msgs "$msgs" -rate "$rate" -runs 1 -json -timeout 180s 2>>"$work/$t.err" | grep '^{' | tail -1) || true
  else
    line=$(gen "$work/gwload" -base http://127.0.0.1:3203 -transport "$t" -subs "$subs" -msgs "$msgs" -rate "$rate" \
      -json -timeout 180s 2>>"$work/$t.err" | grep '^{' | tail -1) || true
  fi
  [ -n "$line" ] || return 0
  local ticks=$(( $(cputicks "$pid") - c0 )) del gen
  del=$(sed -n 's/.*"delivered":\([0-9]*\).*/\1/p' <<<"$line")
  gen=$(sed -n 's/.*"loadgen_cpu_s":\([-0-9.e+]*\).*/\1/p' <<<"$line")
  awk -v l="$line" -v t="$ticks" -v hz="$tck" -v d="${del:-0}" -v g="${gen:-0}" \
    'BEGIN {d = d > 0 ? d : 1; printf "%s,\"srv_us\":%.3f,\"gen_us\":%.3f}\n", substr(l, 1, length(l) - 1), t / hz / d * 1e6, g / d * 1e6}' >>"$work/$t.json"
}

median() {
  sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print 0}'
}

scenario() {
  local name=$1 subs=$2 msgs=$3 rate=$4 t
  rm -f "$work"/*.json
  for r in $(seq "$RUNS"); do
    for t in "${targets[@]}"; do load "$t" "$subs" "$msgs" "$rate"; sleep 1; done
  done
  local ref sse ssep99
  ref=$(median "$work/refsse.json" events_per_s)
  sse=$(median "$work/sse.json" events_per_s)
  ssep99=$(median "$work/sse.json" lat_p99_us)
  echo
  echo "== $name: $subs streams, $msgs inserts, rate $([ "$rate" = 0 ] && echo "closed loop (4 publishers)" || echo "$rate/s"), median of $RUNS"
  printf '%-7s %12s %8s %7s %9s %9s %9s %8s %8s %12s %8s %8s\n' target events/s x_refsse x_sse p50_ms p99_ms max_ms p99/sse pub/s delivered srv_us gen_us
  for t in "${targets[@]}"; do
    [ -s "$work/$t.json" ] || { printf '%-7s (no result; see below)\n' "$t"; continue; }
    local ev p50 p99 mx del exp pub su gu
    ev=$(median "$work/$t.json" events_per_s); p50=$(median "$work/$t.json" lat_p50_us)
    p99=$(median "$work/$t.json" lat_p99_us); mx=$(median "$work/$t.json" lat_max_us)
    del=$(median "$work/$t.json" delivered); exp=$(median "$work/$t.json" expected); pub=$(median "$work/$t.json" pub_per_s)
    su=$(median "$work/$t.json" srv_us); gu=$(median "$work/$t.json" gen_us)
    awk -v t="$t" -v ev="$ev" -v ref="$ref" -v sse="$sse" -v p50="$p50" -v p99="$p99" -v mx="$mx" -v sp="$ssep99" -v d="$del" -v e="$exp" -v pub="$pub" -v su="$su" -v gu="$gu" \
      'BEGIN {printf "%-7s %12.0f %8.2f %7.2f %9.2f %9.2f %9.2f %8.2f %8.0f %6d/%-6d %8.2f %8.2f\n", t, ev, (ref>0?ev/ref:0), (sse>0?ev/sse:0), p50/1000, p99/1000, mx/1000, (sp>0?p99/sp:0), pub, d/1000, e/1000, su, gu}'
  done
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for t in "${targets[@]}"; do
    [ -s "$work/$t.err" ] && { echo "-- $t stderr:"; sort "$work/$t.err" | uniq -c | head -5; rm -f "$work/$t.err"; }
  done
  true
}

echo
echo "(delivered: thousands of events received / expected)"
for subs in $SUBS; do
  msgs=$((MSGS * 1000 / subs))
  scenario "fan-out" "$subs" "$((msgs > 0 ? msgs : 1))" 0
done
scenario "latency" "$LAT_SUBS" "$LAT_MSGS" "$LAT_RATE"
