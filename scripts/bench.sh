#!/usr/bin/env bash
# Runs the shared session benchmark (../shared/bench) with Satchel beside its peers.
#
#   scripts/bench.sh                      # full run, seed defaults (~25 min)
#   QUICK=1 scripts/bench.sh              # smoke test
#   SATCHEL_ENV="SESSION_REFRESH_EACH_REQUEST=false" NAME=no-refresh scripts/bench.sh
#   FRAMEWORK=actix PEERS="plain actix_redis satchel_redis" NAME=actix scripts/bench.sh
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
SATCHEL_BIN="$bin" RESULTS_DIR="${RESULTS_DIR:-$PWD/bench-results}" exec "$BENCH/run.sh"
