#!/usr/bin/env bash
# RPC against NATS request-reply, in the same run, on loopback. Not part of CI.
#   rtbus: `rtbus benchmark -s rpc.call,rpc.call+handle` against rtbusd on a UNIX socket
#          (rpc.call: .broker answers; rpc.call+handle: one handler client per worker).
#   NATS:  bench/natsrpc, -w requesters -> -w responders in a queue group, over TCP.
# nats-server is built from the Go module proxy into a temporary directory.
# Usage: bench/natsrpc.sh [-w WORKERS] [-n REQUESTS] [-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
workers=8 n=200000 runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    -w) workers=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [-w WORKERS] [-n REQUESTS] [-runs N]" >&2; exit 2 ;;
  esac
done
. bench/lib.sh

echo "building rtbusd, rtbus, nats-server and natsrpc in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
go build -o "$work/rtbus" ./cmd/rtbus
GOBIN="$work" GOFLAGS= go install github.com/nats-io/nats-server/v2@latest
(cd bench/natsrpc && go build -o "$work/natsrpc" .)

sock="$work/rtbus.sock"
"$work/rtbusd" -B "$sock" -log-level warn & pids+=($!)
"$work/nats-server" -a 127.0.0.1 -p 14223 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do
  [ -S "$sock" ] && (exec 3<>/dev/tcp/127.0.0.1/14223) 2>/dev/null && break
  sleep 0.1
done

machine
echo "nats-server $("$work/nats-server" --version | awk '{print $NF}'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
  echo "-- rtbus run $r"
  "$work/rtbus" -b "$sock" benchmark -w "$workers" -i "$n" -s rpc.call,rpc.call+handle 2>/dev/null
done
"$work/natsrpc" -nats nats://127.0.0.1:14223 -w "$workers" -n "$n" -runs "$runs"
