#!/usr/bin/env bash
# rtbus's bare acknowledged round trips against the floor of this machine, in the same run.
# Not part of CI.
#   rtbus: `rtbus benchmark -s send.qos.processed,rpc.call0` against rtbusd on a UNIX socket.
#   floor: bench/roundtrip, the same frames and acks between two processes, its "broker"
#          doing nothing but acknowledge each frame.
# Each round runs the floor, rtbus, and the floor again; rtbus's figures are divided by the
# mean of the two floor figures around them, so that the machine's drift between rounds
# cancels. The medians of those ratios close the output.
# Usage: bench/roundtrip.sh [-w WORKERS] [-n ITERATIONS] [-rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
workers=8 n=200000 rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -w) workers=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [-w WORKERS] [-n ITERATIONS] [-rounds N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "building rtbusd, rtbus and roundtrip in $work" >&2
go build -o "$work/" ./cmd/rtbusd ./cmd/rtbus ./bench/roundtrip

"$work/rtbusd" -B "$work/rtbus.sock" -http off -log-level warn & pids+=($!)
"$work/roundtrip" -listen "$work/floor.sock" & pids+=($!)
for _ in $(seq 100); do
  [ -S "$work/rtbus.sock" ] && [ -S "$work/floor.sock" ] && break
  sleep 0.1
done

floor() { "$work/roundtrip" -dial "$work/floor.sock" -w "$workers" -n "$n" | awk '{print $3}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(go version)"
echo "workers: $workers, iterations: $n, rounds: $rounds"
printf '%-6s %-6s %12s %12s %12s %8s %8s\n' round load floor send.qos.p rpc.call0 'sqp/fl' 'c0/fl'
for r in $(seq "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  f1=$(floor)
  out=$("$work/rtbus" -b "$work/rtbus.sock" benchmark -w "$workers" -i "$n" -s send.qos.processed,rpc.call0 2>/dev/null)
  f2=$(floor)
  sqp=$(awk '$1=="send.qos.processed"{gsub(",","",$2); print $2}' <<<"$out")
  c0=$(awk '$1=="rpc.call0"{gsub(",","",$2); print $2}' <<<"$out")
  awk -v r="$r" -v l="$load" -v f1="$f1" -v f2="$f2" -v s="$sqp" -v c="$c0" 'BEGIN {
    f = (f1 + f2) / 2
    printf "%-6s %-6s %12.0f %12d %12d %8.2f %8.2f\n", r, l, f, s, c, s / f, c / f }'
done | tee "$work/rounds"
awk '{ s[NR] = $6; c[NR] = $7; fl[NR] = $3; sq[NR] = $4; c0[NR] = $5 }
  function med(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function max(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
  END {
    printf "best: floor %.0f, send.qos.processed %d, rpc.call0 %d\n", max(fl, NR), max(sq, NR), max(c0, NR)
    printf "median ratio to the floor: send.qos.processed %.2f, rpc.call0 %.2f\n", med(s, NR), med(c, NR) }' "$work/rounds"
