#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and prints a summary line per target
# (duration, executions, findings). Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it use the sanitizer flags it needs.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh verify_token login_body
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# Seeds: a few well-formed inputs so the fuzzer starts from the interesting shapes.
seed() { # target name content
    mkdir -p "corpus/$1"
    printf '%b' "$3" > "corpus/$1/seed-$2"
}
now=$(date +%s)
claims="{\"exi\":600,\"exp\":$((now + 86400 * 3650)),\"iat\":$now,\"iss\":\"datarhei-core\",\"jti\":\"x\",\"sub\":\"admin\",\"usefor\":\"access\"}"
seed verify_token signed "\\x01{\"alg\":\"HS256\",\"typ\":\"JWT\"}\\n$claims"
seed verify_token raw '\x00eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln'
seed verify_differential core "{\"alg\":\"HS256\",\"typ\":\"JWT\"}\\n$claims"
seed verify_differential kid "{\"alg\":\"HS256\",\"kid\":\"k\",\"typ\":\"JWT\"}\\n$claims"
seed bearer_header one 'Bearer abc.def.ghi'
seed bearer_header two 'bearer  abc\nBasic x'
seed login_body good '\x00\x01\x02{"username":"admin","password":"datarhei"}'
seed login_body wrong '\x00\x01\x02{"username":"admin","password":"x"}'
seed client_addr xff '\x0a\x00\x00\x01 10.0.0.0/8, ::1\n1.2.3.4, 10.1.1.1\n5.6.7.8'
seed auth0_tenants url 'auth0://client@tenant.eu.auth0.com?aud=https://api&user=auth0|1'
seed auth0_tenants b64 'eyJkb21haW4iOiJ4LmF1dGgwLmNvbSIsImF1ZGllbmNlIjoiYSIsImNsaWVudGlkIjoiYyIsInVzZXJzIjpbInUiXX0='
seed jwks_document rsa '{"keys":[{"kty":"RSA","use":"sig","kid":"k1","alg":"RS256","n":"sXch","e":"AQAB"}]}'
seed jwks_document ec '{"keys":[{"kty":"EC","use":"sig","kid":"k2","alg":"ES256","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}'

cargo fuzz build -O
mkdir -p logs
status=0
printf '%-22s %8s %14s %10s %s\n' target seconds executions exec/s findings
for t in "${targets[@]}"; do
    log="logs/$t.log"
    set +e
    cargo fuzz run -O "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ $rc -eq 0 ]; then
        findings=none
    else
        findings="CRASH (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
    printf '%-22s %8s %14s %10s %s\n' "$t" "$seconds" "${runs:-?}" "${rate:-?}" "$findings"
done
exit $status
