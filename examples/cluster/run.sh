#!/usr/bin/env bash
# A three-node rtbus cluster on loopback, start to finish: builds rtbusd, starts three nodes
# (embedded NATS servers routed to each other, free ports, data in a temporary directory),
# signs a user up and inserts an event on node 1, streams it (SSE) from node 2, kills node 1,
# inserts on node 3, and shows node 2's stream going on. It stops the nodes and removes its
# files when it ends. Run it from anywhere in the repository: examples/cluster/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtbus-cluster.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
declare -A pub int
say() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  for f in "$tmp"/n*.log "$tmp"/stream.head "$tmp"/stream; do
    [ -f "$f" ] && { echo "--- ${f##*/}" >&2; tail -20 "$f" >&2; }
  done
  for n in 1 2 3; do # what each node still answering sees (GET /v1/cluster)
    [ -n "${int[$n]:-}" ] && curl -sS -m 2 -H "Authorization: Bearer $RTBUS_ADMIN_TOKEN" "${int[$n]}/v1/cluster" >&2 && echo >&2
  done
  exit 1
}

# until SECONDS CMD...: retry CMD every 0.2 s until it succeeds, at most SECONDS.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

say "building rtbusd"
(cd "$root" && go build -o "$tmp/rtbusd" ./cmd/rtbusd)

# Three free route ports: ports nobody answers on, picked at random below the range the
# system hands out for outgoing connections (32768 and up on Linux), where they could be taken.
ports=()
while [ "${#ports[@]}" -lt 3 ]; do
  p=$((20000 + RANDOM % 12000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
    ports+=("$p")
  fi
done

# One JWT secret and admin token for the three: a token made by one node is valid on all.
export RTBUS_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export RTBUS_ADMIN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export RTBUS_NTP=off # the example stays on loopback

start() { # start N: node N of 3
  local n=$1 peers=() i
  for i in 0 1 2; do [ "$i" -eq $((n - 1)) ] || peers+=("127.0.0.1:${ports[$i]}"); done
  "$tmp/rtbusd" -B "$tmp/n$n.sock" -http 127.0.0.1:0 -internal 127.0.0.1:0 -data-dir "$tmp/n$n" \
    -cluster demo -cluster-node "n$n" -cluster-listen "127.0.0.1:${ports[$((n - 1))]}" \
    -cluster-peers "$(IFS=,; echo "${peers[*]}")" 2>"$tmp/n$n.log" &
  pids[$n]=$!
}
addr() { # addr N "http bridge"|"internal API": the address node N logged
  sed -n "s/.*msg=\"$2 listening\" address=\(http:\/\/[0-9.:]*\).*/\1/p" "$tmp/n$1.log" | head -1
}
has_addr() { test -n "$(addr "$1" "$2")"; }

say "starting three nodes (routes on 127.0.0.1:${ports[0]}, :${ports[1]}, :${ports[2]})"
for n in 1 2 3; do start "$n"; done
for n in 1 2 3; do
  until_ok 30 has_addr "$n" "internal API" || fail "node $n did not start"
  pub[$n]=$(addr "$n" "http bridge") int[$n]=$(addr "$n" "internal API")
done
for n in 1 2 3; do
  until_ok 60 curl -fsS "${int[$n]}/readyz" || fail "node $n not ready"
  echo "node $n: ${pub[$n]} ready"
done
grep -h 'JetStream meta leader' "$tmp"/n1.log | tail -1

say "sign up and log in on node 1"
json='Content-Type: application/json'
curl -fsS -X POST "${pub[1]}/users" -H "$json" -d '{"username":"ann","password":"correct horse","tenant_id":"acme"}'; echo
jwt=$(curl -fsS -X POST "${pub[1]}/login" -H "$json" -d '{"username":"ann","password":"correct horse"}' |
  sed 's/.*"jwt":"\([^"]*\)".*/\1/')

say "streaming from node 2 (SSE)"
curl -sSN -D "$tmp/stream.head" "${pub[2]}/sse?token=$jwt" >"$tmp/stream" 2>/dev/null &
pids+=($!)
until_ok 10 grep -q '^event:' "$tmp/stream" || fail "node 2's stream did not start"

insert() { # insert NODE TEXT: the reply in $tmp/insert
  curl -fsS -X POST "${pub[$1]}/insert" -H "Authorization: Bearer $jwt" -H "$json" \
    -d "{\"event\":\"greeting\",\"data\":{\"text\":\"$2\"},\"collection_id\":\"lobby\"}" >"$tmp/insert"
}
say "insert on node 1"
insert 1 "hello from node 1" || fail "insert on node 1 refused"
cat "$tmp/insert"; echo
until_ok 10 grep -q 'hello from node 1' "$tmp/stream" || fail "node 2's stream did not deliver node 1's insert"
echo "node 2's stream got it"

say "killing node 1"
kill -9 "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
until_ok 30 curl -fsS "${int[3]}/readyz" || fail "node 3 not ready after node 1 died"

# If node 1 led the event log, the others elect a new leader first: inserts answer 503
# for those seconds, and a client retries.
say "insert on node 3"
t0=$SECONDS
until_ok 30 insert 3 "hello from node 3, node 1 is gone" || fail "insert on node 3 refused"
cat "$tmp/insert"; echo
echo "acknowledged after $((SECONDS - t0)) s"
until_ok 30 grep -q 'node 1 is gone' "$tmp/stream" || fail "node 2's stream did not deliver node 3's insert"
echo "node 2's stream got it after $((SECONDS - t0)) s"

say "node 2's stream, start to end"
cat "$tmp/stream"
say "done: the stream went on with a node down"
