#!/usr/bin/env bash
# A bounded soak of the release example server on loopback: wrk drives a mix of good requests
# (protected route, refresh, the real user's login), bad tokens (alg none, bad signatures,
# garbage, over-long) and failing logins (random accounts from random forwarded addresses, so
# the login throttle's table fills up), then the script reports: the status mix, zero 5xx,
# zero panics in the server log, and the server's resident memory before and after.
#
#   scripts/soak.sh            # 60 s
#   SOAK_SECONDS=10 scripts/soak.sh
# Needs wrk (Debian: apt-get install -y wrk) and curl. Talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SOAK_SECONDS:-60}"
port="${SOAK_PORT:-18080}"
user=admin
password="soak-$(date +%s)-password"

cargo build --release --example core_server >/dev/null 2>&1 || cargo build --release --example core_server
log="$(mktemp -t soak-server.XXXXXX.log)"
CORE_ADDRESS="127.0.0.1:$port" \
CORE_API_AUTH_ENABLE=true \
CORE_API_AUTH_USERNAME="$user" \
CORE_API_AUTH_PASSWORD="$password" \
CORE_API_AUTH_JWT_SECRET="soak-secret-0123456789-0123456789" \
CORE_API_AUTH_LOGIN_FAILURE_DELAY=0 \
CORE_API_AUTH_TRUSTED_PROXIES=127.0.0.1/32 \
RUST_LOG=error \
    target/release/examples/core_server >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && break
    sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

pair=$(curl -fsS -H 'Content-Type: application/json' -H 'X-Forwarded-For: 198.51.100.1' \
    -d "{\"username\":\"$user\",\"password\":\"$password\"}" "http://127.0.0.1:$port/api/login")
access=$(printf '%s' "$pair" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
refresh=$(printf '%s' "$pair" | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
rss_before=$(rss)

out="$(mktemp -t soak-wrk.XXXXXX.txt)"
# RSS every 10 s while wrk runs: the throttle table fills up to its key cap, then stays flat.
samples="$(mktemp -t soak-rss.XXXXXX.txt)"
( while kill -0 "$pid" 2>/dev/null; do sleep 10; rss >>"$samples" 2>/dev/null || break; done ) &
sampler=$!
SOAK_ACCESS="$access" SOAK_REFRESH="$refresh" SOAK_USER="$user" SOAK_PASSWORD="$password" \
    wrk -t2 -c32 -d"${seconds}s" --timeout 10s -s scripts/soak.lua "http://127.0.0.1:$port" >"$out"
rss_after=$(rss)
kill "$sampler" 2>/dev/null || true

alive=no
curl -fsS "http://127.0.0.1:$port/ping" >/dev/null && alive=yes
kill -INT "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT

requests=$(awk '/requests in/ {print $1}' "$out")
rate=$(awk '/Requests\/sec/ {print $2}' "$out")
errors=$(grep -E '^ *Socket errors' "$out" || echo "Socket errors: none")
fivexx=$(awk '$1 == "STATUS" && $2 >= 500 {s += $3} END {print s + 0}' "$out")
panics=$(grep -c -i 'panicked' "$log" || true)

echo "soak: ${seconds}s, $requests requests ($rate/s), $errors"
awk '$1 == "STATUS" {printf "  status %s: %s\n", $2, $3}' "$out" | sort
grep LATENCY_P99_MS "$out" | sed 's/^/  /'
echo "  5xx responses: $fivexx"
echo "  panics in server log: $panics"
echo "  server alive at the end: $alive"
echo "  RSS before: ${rss_before} KiB, after: ${rss_after} KiB"
echo "  RSS every 10 s (KiB): $(tr '\n' ' ' <"$samples")"
rm -f "$out" "$samples"
if [ "$fivexx" -ne 0 ] || [ "$panics" -ne 0 ] || [ "$alive" != yes ]; then
    echo "soak FAILED (server log: $log)"
    exit 1
fi
rm -f "$log"
echo "soak passed"
