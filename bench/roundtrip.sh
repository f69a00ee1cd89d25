#!/usr/bin/env bash
# rtbus's bare acknowledged round trips against three floors on this machine, in the same run.
# Not part of CI.
#   rtbus:  `rtbus benchmark -s send.qos.processed,rpc.call0` against rtbusd on a UNIX socket.
#   go:     bench/roundtrip, the same frames and acks between two processes, its "broker"
#           doing nothing but acknowledge each frame, through plain net.Conn.
#   goraw:  bench/roundtrip -raw, the same with the system calls made as rtbus's transport
#           makes them (raw, and reads that wait for readiness); linux only.
#   tokio:  bench/roundtrip/tokio, the same on tokio (the BUS/RT reference broker's runtime)
#           at both ends; built from Debian's packaged crates (apt-get install
#           librust-tokio-dev) when cargo is here, else left out.
# Each round runs the floors, rtbus, and the floors again; rtbus's figures are divided by the
# mean of the two figures of a floor around them, so that the machine's drift between rounds
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
. bench/lib.sh

echo "building rtbusd, rtbus and roundtrip in $work" >&2
go build -o "$work/" ./cmd/rtbusd ./cmd/rtbus ./bench/roundtrip
tokio=""
if command -v cargo >/dev/null && ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1; then
  (cd bench/roundtrip/tokio && CARGO_TARGET_DIR="$work/cargo" cargo build --release -q)
  tokio="$work/cargo/release/roundtrip-tokio"
else
  echo "no tokio floor: it needs cargo and Debian's librust-tokio-dev" >&2
fi

"$work/rtbusd" -B "$work/rtbus.sock" -http off -log-level warn & pids+=($!)
"$work/roundtrip" -listen "$work/go.sock" & pids+=($!)
"$work/roundtrip" -raw -listen "$work/goraw.sock" & pids+=($!)
[ -n "$tokio" ] && { "$tokio" -listen "$work/tokio.sock" & pids+=($!); }
for _ in $(seq 100); do
  [ -S "$work/rtbus.sock" ] && [ -S "$work/go.sock" ] && [ -S "$work/goraw.sock" ] && { [ -z "$tokio" ] || [ -S "$work/tokio.sock" ]; } && break
  sleep 0.1
done

floors() {
  local g r t=0
  g=$("$work/roundtrip" -dial "$work/go.sock" -w "$workers" -n "$n" | awk '{print $3}')
  r=$("$work/roundtrip" -raw -dial "$work/goraw.sock" -w "$workers" -n "$n" | awk '{print $3}')
  [ -n "$tokio" ] && t=$("$tokio" -dial "$work/tokio.sock" "$workers" "$n" | awk '{print $3}')
  echo "$g $r $t"
}
machine
echo "workers: $workers, iterations: $n, rounds: $rounds"
printf '%-5s %-5s %8s %8s %8s %9s %9s %7s %7s %7s %7s %7s %7s\n' \
  round load go goraw tokio send.qos.p rpc.call0 sqp/go sqp/raw sqp/tok c0/go c0/raw c0/tok
for r in $(seq "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -r g1 r1 t1 < <(floors)
  out=$("$work/rtbus" -b "$work/rtbus.sock" benchmark -w "$workers" -i "$n" -s send.qos.processed,rpc.call0 2>/dev/null)
  read -r g2 r2 t2 < <(floors)
  sqp=$(awk '$1=="send.qos.processed"{gsub(",","",$2); print $2}' <<<"$out")
  c0=$(awk '$1=="rpc.call0"{gsub(",","",$2); print $2}' <<<"$out")
  awk -v r="$r" -v l="$load" -v g1="$g1" -v g2="$g2" -v r1="$r1" -v r2="$r2" -v t1="$t1" -v t2="$t2" -v s="$sqp" -v c="$c0" 'BEGIN {
    g = (g1 + g2) / 2; w = (r1 + r2) / 2; t = (t1 + t2) / 2
    printf "%-5s %-5s %8.0f %8.0f %8.0f %9d %9d %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f\n",
      r, l, g, w, t, s, c, s / g, s / w, t ? s / t : 0, c / g, c / w, t ? c / t : 0 }'
done | tee "$work/rounds"
awk '{ for (i = 3; i <= 13; i++) v[i, NR] = $i }
  function med(col,   a, i, j, t) {
    for (i = 1; i <= NR; i++) a[i] = v[col, i]
    for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }
  function best(col,   i, m) { m = v[col, 1]; for (i = 2; i <= NR; i++) if (v[col, i] > m) m = v[col, i]; return m }
  END {
    printf "best: go %.0f, goraw %.0f, tokio %.0f, send.qos.processed %d, rpc.call0 %d\n", best(3), best(4), best(5), best(6), best(7)
    printf "median ratios: send.qos.processed %.2f x go, %.2f x goraw, %.2f x tokio; rpc.call0 %.2f x go, %.2f x goraw, %.2f x tokio\n",
      med(8), med(9), med(10), med(11), med(12), med(13) }' "$work/rounds"
