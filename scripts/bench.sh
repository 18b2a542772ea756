#!/usr/bin/env bash
# Runs the shared session benchmark (../shared/bench) with Satchel beside its peers.
#
#   scripts/bench.sh                      # full run, seed defaults (~25 min)
#   QUICK=1 scripts/bench.sh              # smoke test
#   SATCHEL_ENV="SESSION_REFRESH_EACH_REQUEST=false" NAME=no-refresh scripts/bench.sh
#   FRAMEWORK=actix PEERS="plain actix_redis satchel_redis" NAME=actix scripts/bench.sh
#
# Satchel runs with RUST_LOG=warn unless SATCHEL_ENV sets RUST_LOG: the peers write no
# line per request, and `satchel serve` logs one access line per request at info.
#
# Builds `satchel` in release mode first. FRAMEWORK=actix serves every Satchel peer on
# actix-web instead of axum. Reports go to bench-results/ (any other knob of the shared
# run.sh, such as ROUNDS or SCENARIOS, passes through).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH="${BENCH:-$PWD/../shared/bench}"
cargo build --release --quiet -p satchel-cli
bin="$PWD/target/release/satchel"
if [[ "${FRAMEWORK:-axum}" != axum ]]; then
  wrapper="$(mktemp /tmp/satchel-"$FRAMEWORK".XXXXXX)"
  printf '#!/bin/sh\nexec %q "$@" --framework %q\n' "$bin" "$FRAMEWORK" >"$wrapper"
  chmod +x "$wrapper"
  bin="$wrapper"
fi
if [[ "${SATCHEL_ENV:-}" != *RUST_LOG=* ]]; then
  export SATCHEL_ENV="RUST_LOG=warn ${SATCHEL_ENV:-}"
fi
SATCHEL_BIN="$bin" RESULTS_DIR="${RESULTS_DIR:-$PWD/bench-results}" exec "$BENCH/run.sh"
