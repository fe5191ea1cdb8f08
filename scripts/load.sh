#!/usr/bin/env bash
# Loopback load test: the example server's protected route with a valid access token
# vs its public /ping route, with wrk. Bounded in time; stops the server it started.
#
#   scripts/load.sh                  # 10 s per route, 2 threads, 64 connections
#   DURATION=5s CONNECTIONS=32 ROUNDS=5 scripts/load.sh
#
# Needs wrk (installed from Debian's packages when missing and running as root) and curl.
# Only 127.0.0.1 is ever contacted.
set -euo pipefail

cd "$(dirname "$0")/.."

PORT="${PORT:-18080}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
ADDR="127.0.0.1:${PORT}"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing wrk from Debian's packages" >&2
        apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
    else
        echo "wrk is needed: apt-get install wrk" >&2
        exit 1
    fi
fi

cargo build --release --example core_server >&2
SERVER="target/release/examples/core_server"

LOG="$(mktemp)"
CORE_ADDRESS="$ADDR" \
CORE_API_AUTH_ENABLE=true \
CORE_API_AUTH_USERNAME=admin \
CORE_API_AUTH_PASSWORD=load-test-password \
CORE_API_AUTH_JWT_SECRET=load-test-secret-of-some-length \
CORE_API_AUTH_LOGIN_FAILURE_DELAY=0 \
RUST_LOG=warn \
    "$SERVER" >"$LOG" 2>&1 &
PID=$!
cleanup() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    curl -fsS "http://$ADDR/ping" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://$ADDR/ping" >/dev/null || { echo "server did not start:" >&2; cat "$LOG" >&2; exit 1; }

TOKEN="$(curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"load-test-password"}' "http://$ADDR/api/login" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
STATUS="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://$ADDR/api/v3/process")"
[ "$STATUS" = 200 ] || { echo "login failed (protected route answered $STATUS)" >&2; exit 1; }

# One wrk run; prints "<requests/s> <p50> <p90> <p99>" (latencies as wrk prints them).
run() {
    local out
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "$out" >&2
        echo "errors during the run" >&2
        exit 1
    fi
    local rps p50 p90 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p90="$(awk '$1 == "90%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    echo "$rps $p50 $p90 $p99"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds, against $ADDR (server and wrk share the machine)"
printf '%-34s %12s %10s %10s %10s\n' route "requests/s" p50 p90 p99
RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
    # Interleaved, so drift in a shared VM's speed hits both routes alike.
    read -r PUB_RPS PUB50 PUB90 PUB99 < <(run "http://$ADDR/ping")
    read -r PROT_RPS PROT50 PROT90 PROT99 < <(run -H "Authorization: Bearer $TOKEN" "http://$ADDR/api/v3/process")
    printf '%-34s %12s %10s %10s %10s\n' "[$round] GET /ping (public)" "$PUB_RPS" "$PUB50" "$PUB90" "$PUB99"
    printf '%-34s %12s %10s %10s %10s\n' "[$round] GET /api/v3/process (Bearer)" "$PROT_RPS" "$PROT50" "$PROT90" "$PROT99"
    RATIOS+=("$(awk -v a="$PROT_RPS" -v b="$PUB_RPS" 'BEGIN { printf "%.3f", a / b }')")
done
echo "protected / public requests/s per round: ${RATIOS[*]}"
printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median: %.3f\n", (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'
