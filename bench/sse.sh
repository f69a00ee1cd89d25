#!/usr/bin/env bash
# SSE fan-out and latency of the HTTP bridge next to the bare broadcaster, in the same run,
# under the same load generator (../shared/bench: refsse, sseload). Loopback only; not CI.
#
# Targets, each on its own port, all running at once (sseload drives one at a time):
#   refsse     the bare broadcaster (the ceiling: fan-out of a 128-byte body, nothing else);
#              it writes all the messages queued for a stream in one write
#   hub        the sse package alone (httpbridge/internal/sse/ssebench): the event record the
#              bridge sends (~450 bytes), detached streams, queued messages in one writev
#   rtbusd     the whole bridge: POST /insert (synced to pebble, then published) and
#              GET /events/{tenant}?token=JWT (state on connect, then live)
# Scenarios: closed-loop fan-out at each SUBS streams (MSGS x 1,000 / SUBS inserts, so
# MSGS x 1,000 deliveries per run at every size; 4 publishers), then the
# latency run: LAT_RATE inserts/s to LAT_SUBS streams (20 x 1,000 = 20 k events/s offered).
# Each scenario runs RUNS times, the targets interleaved in each round so that the noise of a
# shared machine hits them alike; the table gives medians and the ratio to refsse. Every
# rtbusd run streams a fresh tenant (its own user), so the state sent on connect is empty.
# Then the idle-stream memory benchmark of the sse package (10,000 streams, server in a child
# process; heap and goroutine stacks after GC, per stream).
#
# Usage: bench/sse.sh            (env: RUNS=3 MSGS=1000 SUBS="1000 5000" PUBCONC=4
#                                 LAT_SUBS=1000 LAT_RATE=20 LAT_MSGS=200 IDLE=10000;
#                                 IDLE=0 skips memory; BASE=REV, a git revision, adds its
#                                 hub and rtbusd as targets hub@base and rtbusd@base,
#                                 interleaved with the others: before/after in one run)
# The memory section runs first, on fresh processes. pub/s is the publish (insert) rate
# sseload reached: in closed loop, rtbusd's synced inserts bound its fan-out there.
#
# Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED_BENCH:-$(cd ../shared/bench && pwd)}
RUNS=${RUNS:-3}; MSGS=${MSGS:-1000}; SUBS=${SUBS:-"1000 5000"}
PUBCONC=${PUBCONC:-4}; LAT_SUBS=${LAT_SUBS:-1000}; LAT_RATE=${LAT_RATE:-20}; LAT_MSGS=${LAT_MSGS:-200}; IDLE=${IDLE:-10000}
. bench/lib.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building rtbusd, ssebench, refsse and sseload in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
go build -o "$work/ssebench" ./httpbridge/internal/sse/ssebench
(cd "$shared/refsse" && go build -o "$work/refsse" .)
(cd "$shared/sseload" && go build -o "$work/sseload" .)
if [ -n "${BASE:-}" ]; then
  mkdir "$work/base"
  git archive "$BASE" | tar -x -C "$work/base"
  (cd "$work/base" && go build -o "$work/rtbusd-base" ./cmd/rtbusd && go build -o "$work/ssebench-base" ./httpbridge/internal/sse/ssebench)
fi

"$work/refsse" -addr 127.0.0.1:3100 >/dev/null 2>&1 & pids+=($!)
"$work/ssebench" -addr 127.0.0.1:3101 >/dev/null 2>&1 & pids+=($!)
"$work/rtbusd" -B "$work/bus.sock" -http 127.0.0.1:3103 -internal off -ntp off -data-dir "$work/data" \
  -admin-token bench-admin-token -log-level warn & pids+=($!)
rtbusd_pid=$!
targets=(refsse hub rtbusd)
if [ -n "${BASE:-}" ]; then
  "$work/ssebench-base" -addr 127.0.0.1:3104 >/dev/null 2>&1 & pids+=($!)
  "$work/rtbusd-base" -B "$work/bus-base.sock" -http 127.0.0.1:3105 -internal off -ntp off -data-dir "$work/data-base" \
    -admin-token bench-admin-token -log-level warn & pids+=($!)
  targets=(refsse hub hub@base rtbusd rtbusd@base)
fi
for port in 3100 3101 3103 $([ -n "${BASE:-}" ] && echo 3104 3105); do
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    [ $port = 3103 ] && ! kill -0 $rtbusd_pid 2>/dev/null && break
    sleep 0.1
  done
done
for i in 0 1; do
  kill -0 "${pids[$i]}" 2>/dev/null || { echo "a benchmark server did not start (ports 3100-3101 taken?)" >&2; exit 1; }
done
if ! (exec 3<>/dev/tcp/127.0.0.1/3103) 2>/dev/null || ! kill -0 $rtbusd_pid 2>/dev/null; then
  echo "rtbusd's HTTP bridge did not start: measuring the others only" >&2
  targets=(refsse hub)
fi

# signup NAME [PORT]: a fresh tenant "tenant-NAME" with one user NAME; prints the user's JWT.
n=0
signup() {
  local u=$1 port=${2:-3103}
  curl -fsS -X POST http://127.0.0.1:$port/users \
    -d "{\"username\":\"$u\",\"password\":\"bench-password\",\"tenant_id\":\"tenant-$u\"}" >/dev/null
  curl -fsS -X POST http://127.0.0.1:$port/login -d "{\"username\":\"$u\",\"password\":\"bench-password\"}" |
    sed 's/.*"jwt":"\([^"]*\)".*/\1/'
}

# load TARGET SUBS MSGS RATE: one sseload run, one JSON line appended to $work/TARGET.json.
load() {
  local target=$1 subs=$2 msgs=$3 rate=$4 base
  local -a args
  case $target in
  refsse | hub | hub@base)
    case $target in refsse) base=3100 ;; hub) base=3101 ;; hub@base) base=3104 ;; esac
    base=http://127.0.0.1:$base
    args=(-suburl "$base/sse?topic={topic}" -puburl "$base/pub?topic={topic}" -pubbody '{{payload}}')
    [ "$target" = refsse ] && args+=(-pubct text/plain)
    ;;
  rtbusd | rtbusd@base)
    local jwt tenant port=3103
    [ "$target" = rtbusd@base ] && port=3105
    base=http://127.0.0.1:$port
    n=$((n + 1))
    jwt=$(signup "bench$n-$$" $port) || { echo "sign-up or login failed" >>"$work/$target.err"; return 0; }
    tenant="tenant-bench$n-$$"
    # One collection: the tenant's state stays one event per name.
    args=(-suburl "$base/events/$tenant?token=$jwt" -puburl "$base/insert"
      -pubbody '{"event":"bench","collection_id":"bench","data":{{payload}}}' -pubheader "Authorization: Bearer $jwt")
    ;;
  esac
  "$work/sseload" -target generic -base "$base" "${args[@]}" -subs "$subs" -msgs "$msgs" -rate "$rate" -pubconc "$PUBCONC" \
    -runs 1 -json -timeout 180s 2>>"$work/$target.err" | grep '^{' >>"$work/$target.json" || true
}

# median FILE KEY
median() {
  sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print 0}'
}

# scenario NAME SUBS MSGS RATE
scenario() {
  local name=$1 subs=$2 msgs=$3 rate=$4 t
  rm -f "$work"/*.json
  for r in $(seq "$RUNS"); do
    for t in "${targets[@]}"; do
      load "$t" "$subs" "$msgs" "$rate"
      sleep 1
    done
  done
  local ref
  ref=$(median "$work/refsse.json" events_per_s)
  local refp99
  refp99=$(median "$work/refsse.json" lat_p99_us)
  echo
  echo "== $name: $subs streams, $msgs inserts, rate $([ "$rate" = 0 ] && echo "closed loop ($PUBCONC publishers)" || echo "$rate/s"), median of $RUNS"
  printf '%-11s %12s %8s %9s %9s %9s %8s %8s %12s\n' target events/s x_refsse p50_ms p99_ms max_ms x_p99 pub/s delivered
  for t in "${targets[@]}"; do
    [ -s "$work/$t.json" ] || { printf '%-11s (no result; see below)\n' "$t"; continue; }
    local ev p50 p99 mx del exp pub
    ev=$(median "$work/$t.json" events_per_s)
    p50=$(median "$work/$t.json" lat_p50_us)
    p99=$(median "$work/$t.json" lat_p99_us)
    mx=$(median "$work/$t.json" lat_max_us)
    del=$(median "$work/$t.json" delivered)
    exp=$(median "$work/$t.json" expected)
    pub=$(median "$work/$t.json" pub_per_s)
    awk -v t="$t" -v ev="$ev" -v ref="$ref" -v p50="$p50" -v p99="$p99" -v mx="$mx" -v rp="$refp99" -v d="$del" -v e="$exp" -v pub="$pub" \
      'BEGIN {printf "%-11s %12.0f %8.2f %9.2f %9.2f %9.2f %8.2f %8.0f %6d/%-6d\n", t, ev, (ref>0?ev/ref:0), p50/1000, p99/1000, mx/1000, (rp>0?p99/rp:0), pub, d/1000, e/1000}'
  done
  for t in "${targets[@]}"; do
    [ -s "$work/$t.err" ] && { echo "-- $t stderr:"; sort "$work/$t.err" | uniq -c | head -5; rm -f "$work/$t.err"; }
  done
  true
}

[ -n "${BASE:-}" ] && echo "base: $BASE = $(git rev-parse --short "$BASE"); current: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + uncommitted changes')"
echo "$(machine); load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$IDLE" != 0 ]; then
  echo
  echo "== memory per idle stream: $IDLE streams held open by a raw-TCP client, the server's RSS growth"
  for t in "${targets[@]}"; do
    case $t in
    refsse) url="http://127.0.0.1:3100/sse?topic=idle" pid=${pids[0]} ;;
    hub) url="http://127.0.0.1:3101/sse?topic=idle" pid=${pids[1]} ;;
    *@base) continue ;;
    rtbusd)
      n=$((n + 1))
      jwt=$(signup "bench$n-$$") || { echo "rtbusd: sign-up failed"; continue; }
      url="http://127.0.0.1:3103/events/tenant-bench$n-$$?token=$jwt" pid=$rtbusd_pid
      ;;
    esac
    printf '%-8s ' "$t"
    "$work/ssebench" -idle "$IDLE" -url "$url" -pid "$pid" 2>&1 | tail -1
    sleep 1
  done
  echo
  echo "== the same for the sse package in-process (server in a child process; live heap and stacks after GC)"
  RTBUS_SSE_IDLE_STREAMS=$IDLE go test ./httpbridge/internal/sse -run '^$' -bench IdleStreams -benchtime 1x |
    grep Benchmark
fi

echo
echo "(delivered: thousands of events received / expected)"
for subs in $SUBS; do
  # The same number of deliveries per run at every size (MSGS x 1,000).
  msgs=$((MSGS * 1000 / subs))
  scenario "fan-out" "$subs" "$((msgs > 0 ? msgs : 1))" 0
done
scenario "latency" "$LAT_SUBS" "$LAT_MSGS" "$LAT_RATE"

