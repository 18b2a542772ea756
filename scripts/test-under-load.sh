#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 5) while a busy loop per CPU core
# and a loop starting processes (which delays a woken thread far more than a busy loop
# does) keep the machine loaded, and stops at the first failing run: a test that passes only
# on an idle machine fails here. Prints one line per run; each run's log is kept in
# $LOGS (default: a new temporary directory).
#   scripts/test-under-load.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
logs=${LOGS:-$(mktemp -d -t satchel-loaded.XXXXXX)}
mkdir -p "$logs"
# shellcheck source=services.sh
source scripts/services.sh >/dev/null
cargo test --workspace --all-features --no-run --quiet
hogs=()
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
for _ in $(seq "$(nproc)"); do
  yes >/dev/null &
  hogs+=("$!")
done
bash -c 'while :; do /bin/true; done' &
hogs+=("$!")
echo "under load: ${#hogs[@]} busy loops (one starting processes) on $(nproc) cores; logs in $logs"
for run in $(seq "$runs"); do
  started=$(date +%s)
  if cargo test --workspace --all-features >"$logs/run-$run.log" 2>&1; then
    passed=$(grep -Eo '[0-9]+ passed' "$logs/run-$run.log" | awk '{n += $1} END {print n}')
    echo "run $run: ok, $passed tests passed in $(($(date +%s) - started)) s"
  else
    echo "run $run: FAILED after $(($(date +%s) - started)) s (see $logs/run-$run.log):"
    grep -E '^test .* FAILED|panicked at' "$logs/run-$run.log" | head -20
    exit 1
  fi
done
