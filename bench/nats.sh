#!/usr/bin/env bash
# One publisher -> one subscriber, 128-byte messages: rtbusd over a UNIX socket and TCP next
# to nats-server over TCP, all on loopback, in the same run. Not part of CI.
# nats-server is built from the Go module proxy into a temporary directory.
# Usage: [BROKER_GOGC=N] bench/nats.sh [-n MESSAGES] [-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

echo "building rtbusd, nats-server and the benchmark client in $work" >&2
go build -o "$work/rtbusd" ./cmd/rtbusd
GOBIN="$work" GOFLAGS= go install github.com/nats-io/nats-server/v2@latest
(cd bench/natscmp && go build -o "$work/natscmp" .)

# Both brokers are Go programs and run under the same GOGC (default: Go's own, 100). Either
# has a small live heap, so the collector runs often under load; BROKER_GOGC=400 trades
# memory for fewer collections in both alike.
gogc=${BROKER_GOGC:-100}
sock="$work/rtbus.sock"
GOGC=$gogc "$work/rtbusd" -B "$sock" -B 127.0.0.1:17777 -log-level warn & pids+=($!)
GOGC=$gogc "$work/nats-server" -a 127.0.0.1 -p 14222 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do
  [ -S "$sock" ] && (exec 3<>/dev/tcp/127.0.0.1/14222) 2>/dev/null && break
  sleep 0.1
done

machine
echo "nats-server $("$work/nats-server" --version | awk '{print $NF}'); brokers' GOGC=$gogc"
"$work/natscmp" -unix "$sock" -tcp 127.0.0.1:17777 -nats nats://127.0.0.1:14222 "$@"
