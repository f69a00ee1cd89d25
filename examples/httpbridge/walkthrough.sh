#!/bin/sh
# The HTTP bridge with curl, against a running rtbusd (go run ./cmd/rtbusd): sign up, log in,
# watch the stream, insert an event now and one 5 seconds ahead. BASE overrides the address.
set -eu
BASE=${BASE:-http://127.0.0.1:8080}
USER=ann-$$

curl -fsS -X POST "$BASE/users" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$USER\",\"password\":\"correct horse\",\"tenant_id\":\"acme\"}"
echo
JWT=$(curl -fsS -X POST "$BASE/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$USER\",\"password\":\"correct horse\"}" | sed 's/.*"jwt":"\([^"]*\)".*/\1/')

# The stream, in the background for 8 seconds: the state, then each publication. Streams do
# not end by themselves, so curl stops it after 8 s (exit code 28, expected); any other
# failure is shown.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
(
  rc=0
  curl -fsSN --max-time 8 "$BASE/sse?token=$JWT" 2>"$errors" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 28 ]; then
    cat "$errors" >&2
    exit "$rc"
  fi
) &
stream=$!
sleep 1

curl -fsS -X POST "$BASE/insert" -H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' \
  -d '{"event":"greeting","data":{"text":"hello"},"collection_id":"lobby"}'
echo
curl -fsS -X POST "$BASE/insert" -H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' \
  -d "{\"event\":\"greeting\",\"data\":{\"text\":\"five seconds later\"},\"collection_id\":\"lobby\",\"timestamp\":$(($(date +%s) + 5))}"
echo
wait "$stream"
echo "(stream closed after 8 seconds)"
