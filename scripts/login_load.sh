#!/usr/bin/env bash
# Login over HTTP on loopback: the example server against the real datarhei Core on
# the same machine, with wrk. Both answer POST /api/login (Core's plaintext user, the same
# credentials and JWT secret) and a protected GET /api/v3/process with a Bearer token. The
# example server runs twice: at its default log level and with RUST_LOG=warn. Every server logs
# into a file, as a deployment does. Rounds are interleaved, so drift in a shared VM's speed hits
# all servers alike; the script prints requests/s per run and the example / Core ratios per round
# with their medians.
#
#   scripts/login_load.sh /path/to/core          # or: CORE_BIN=/path/to/core scripts/login_load.sh
#   ROUNDS=5 DURATION=10s THREADS=2 CONNECTIONS=64 scripts/login_load.sh /path/to/core
#
# Core is not built or downloaded here: pass the path of a Core binary. To build one from a
# checkout of github.com/datarhei/core (it vendors its Go modules; go.mod asks for Go >= 1.21,
# Debian bookworm has it in bookworm-backports as golang-1.22-go):
#
#   cd core && GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 \
#       /usr/lib/go-1.22/bin/go build -trimpath -o /tmp/core .
#
# Core probes an ffmpeg binary at start-up (version and capabilities) and refuses to start
# without one; the login path never runs it. CORE_FFMPEG_BINARY, or `ffmpeg` on the PATH, is
# used when present, otherwise a stub that only prints a version line.
#
# The example server is target/release/examples/core_server, built here with
# `cargo build --release --example core_server`, unless SERVER names another binary.
# Needs wrk (apt-get install wrk) and curl; runs nothing that downloads. Only 127.0.0.1 is
# contacted. Stops every server it started.
set -euo pipefail

cd "$(dirname "$0")/.."

CORE_BIN="${1:-${CORE_BIN:-}}"
PORT="${PORT:-18180}"            # Core on PORT, the example on PORT+1 and PORT+2
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
USERNAME=admin
PASSWORD=login-load-password
SECRET=login-load-secret-0123456789-0123456789

if [ -z "$CORE_BIN" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    echo "error: give the path of a datarhei Core binary (argument or CORE_BIN)" >&2
    exit 2
fi
[ -x "$CORE_BIN" ] || { echo "error: $CORE_BIN is not an executable" >&2; exit 2; }
command -v wrk >/dev/null || { echo "error: wrk is needed: apt-get install wrk" >&2; exit 2; }
command -v curl >/dev/null || { echo "error: curl is needed" >&2; exit 2; }

if [ -z "${SERVER:-}" ]; then
    cargo build --release --example core_server >&2
    SERVER=target/release/examples/core_server
fi
SERVER="$(realpath "$SERVER")"
CORE_BIN="$(realpath "$CORE_BIN")"

WORK="$(mktemp -d -t login-load.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Core's ffmpeg: a real one when there is one, else the stub.
FFMPEG="${CORE_FFMPEG_BINARY:-$(command -v ffmpeg || true)}"
if [ -z "$FFMPEG" ]; then
    FFMPEG="$WORK/ffmpeg"
    printf '#!/bin/sh\necho "ffmpeg version 6.1.1 (stub for login_load.sh)"\n' >"$FFMPEG"
    chmod +x "$FFMPEG"
    FFMPEG_NOTE="stub (no ffmpeg here; Core only probes it at start-up)"
else
    FFMPEG_NOTE="$FFMPEG"
fi

NAMES=(core example example-warn)
LABELS=("datarhei Core" "example (default log level)" "example (RUST_LOG=warn)")
ADDRS=("127.0.0.1:$PORT" "127.0.0.1:$((PORT + 1))" "127.0.0.1:$((PORT + 2))")

for addr in "${ADDRS[@]}"; do
    if curl -s -o /dev/null --max-time 1 "http://$addr/"; then
        echo "error: something already listens on $addr (set PORT)" >&2
        exit 1
    fi
done

# A clean environment for every server: no CORE_* or RUST_LOG from the caller's shell.
mkdir -p "$WORK/core/db" "$WORK/core/data"
: >"$WORK/core/mime.types"
(
    cd "$WORK/core"
    exec env -i PATH=/usr/bin:/bin HOME="$WORK/core" \
        CORE_ADDRESS="${ADDRS[0]}" \
        CORE_UPDATE_CHECK=false \
        CORE_HOST_AUTO=false \
        CORE_DB_DIR="$WORK/core/db" \
        CORE_STORAGE_DISK_DIR="$WORK/core/data" \
        CORE_STORAGE_MIMETYPES_FILE="$WORK/core/mime.types" \
        CORE_FFMPEG_BINARY="$FFMPEG" \
        CORE_API_AUTH_ENABLE=true \
        CORE_API_AUTH_USERNAME="$USERNAME" \
        CORE_API_AUTH_PASSWORD="$PASSWORD" \
        CORE_API_AUTH_JWT_SECRET="$SECRET" \
        "$CORE_BIN"
) >"$WORK/core.log" 2>&1 &
PIDS+=($!)

start_example() { # <address> <log file> [RUST_LOG=…]
    env -i PATH=/usr/bin:/bin HOME="$WORK" \
        CORE_ADDRESS="$1" \
        CORE_API_AUTH_ENABLE=true \
        CORE_API_AUTH_USERNAME="$USERNAME" \
        CORE_API_AUTH_PASSWORD="$PASSWORD" \
        CORE_API_AUTH_JWT_SECRET="$SECRET" \
        "${@:3}" "$SERVER" >"$2" 2>&1 &
    PIDS+=($!)
}
start_example "${ADDRS[1]}" "$WORK/example.log"
start_example "${ADDRS[2]}" "$WORK/example-warn.log" RUST_LOG=warn

TOKENS=()
for i in "${!NAMES[@]}"; do
    addr="${ADDRS[$i]}"
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://$addr/api" 2>/dev/null && break
        sleep 0.1
    done
    if ! curl -fsS -o /dev/null "http://$addr/api"; then
        echo "error: ${LABELS[$i]} did not start on $addr:" >&2
        cat "$WORK/${NAMES[$i]}.log" >&2
        exit 1
    fi
    token="$(curl -fsS -X POST -H 'Content-Type: application/json' \
        -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}" "http://$addr/api/login" |
        sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
    status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$addr/api/v3/process")"
    [ "$status" = 200 ] || { echo "error: ${LABELS[$i]}: protected route answered $status after login" >&2; exit 1; }
    TOKENS+=("$token")
done

cat >"$WORK/login.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"$USERNAME","password":"$PASSWORD"}'
EOF

# One wrk run; prints "<requests/s> <p50> <p99>" (latencies as wrk prints them).
run() {
    local out
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "$out" >&2
        echo "error: errors during the run" >&2
        exit 1
    fi
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    echo "$rps $p50 $p99"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ r[NR] = $1 } END { printf "%.2f", (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "Core: $CORE_BIN ($(grep -o 'version="[^"]*"' "$WORK/core.log" | head -1)), ffmpeg: $FFMPEG_NOTE"
echo "example: $SERVER"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds; servers and wrk share the machine; logs go to files"
printf '%-52s %12s %10s %10s\n' run "requests/s" p50 p99
LOGIN_DEFAULT=() LOGIN_WARN=() GET_DEFAULT=() GET_WARN=()
for round in $(seq 1 "$ROUNDS"); do
    LOGIN=() GET=()
    for i in "${!NAMES[@]}"; do
        read -r rps p50 p99 < <(run -s "$WORK/login.lua" "http://${ADDRS[$i]}/api/login")
        printf '%-52s %12s %10s %10s\n' "[$round] POST /api/login       ${LABELS[$i]}" "$rps" "$p50" "$p99"
        LOGIN+=("$rps")
        read -r rps p50 p99 < <(run -H "Authorization: Bearer ${TOKENS[$i]}" "http://${ADDRS[$i]}/api/v3/process")
        printf '%-52s %12s %10s %10s\n' "[$round] GET /api/v3/process   ${LABELS[$i]}" "$rps" "$p50" "$p99"
        GET+=("$rps")
    done
    LOGIN_DEFAULT+=("$(ratio "${LOGIN[1]}" "${LOGIN[0]}")")
    LOGIN_WARN+=("$(ratio "${LOGIN[2]}" "${LOGIN[0]}")")
    GET_DEFAULT+=("$(ratio "${GET[1]}" "${GET[0]}")")
    GET_WARN+=("$(ratio "${GET[2]}" "${GET[0]}")")
done

echo
echo "example / Core requests/s, per round, and the median:"
printf '  %-44s %s   median %s\n' "login, example at its default log level:" "${LOGIN_DEFAULT[*]}" "$(median "${LOGIN_DEFAULT[@]}")"
printf '  %-44s %s   median %s\n' "login, example with RUST_LOG=warn:" "${LOGIN_WARN[*]}" "$(median "${LOGIN_WARN[@]}")"
printf '  %-44s %s   median %s\n' "protected GET, example at default log level:" "${GET_DEFAULT[*]}" "$(median "${GET_DEFAULT[@]}")"
printf '  %-44s %s   median %s\n' "protected GET, example with RUST_LOG=warn:" "${GET_WARN[*]}" "$(median "${GET_WARN[@]}")"
echo
echo "log lines written during the runs:"
for i in "${!NAMES[@]}"; do
    printf '  %-30s %s\n' "${LABELS[$i]}:" "$(wc -l <"$WORK/${NAMES[$i]}.log")"
done
