#!/usr/bin/env bash
# A bounded soak of a two-instance fleet under Redis faults, on loopback only: a private
# redis-server on a free port, two server processes sharing it (sessions, rotating refresh
# tokens), six clients cycling login -> calls on both instances -> two rotating refreshes ->
# logout, and Redis killed (SIGKILL) for 3 s every 15 s and restarted empty. After each
# logout's 204 the client polls the other instance with the access token every 5 ms: every one
# must be refused within 1 s, right after an outage too. Prints the logout count and the
# refusal delays (median, p99, p99.9, max); fails on a refusal later than 1 s or any answer
# other than 200/204/401/503 where expected.
#
#   scripts/fleet_soak.sh                       # 60 s
#   SOAK_SECONDS=180 scripts/fleet_soak.sh      # longer
#   SOAK_OUTAGE_EVERY=10 SOAK_OUTAGE_SECONDS=5 scripts/fleet_soak.sh
# Needs redis-server on PATH. Builds the fleet test binary in release (it is its own server).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "redis-server not on PATH"; exit 1; }
exec cargo test --release --features redis --test fleet -- \
    --ignored --exact soak_under_redis_faults --nocapture
