#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/fuzz_targets with cargo-fuzz (libFuzzer) on the nightly
# toolchain, each for a number of executions, and prints one line per target.
#
#   scripts/fuzz.sh                      # every target, 1,000,000 executions each
#   scripts/fuzz.sh 200000 session_id    # these targets, this many executions
#
# Inputs that reach new code are added to fuzz/corpus/<target>, which is then cut down to
# the inputs that reach an edge no other input reaches (commit it: the tests replay every
# saved input on the stable toolchain, `crates/satchel/tests/fuzz_corpus.rs`). An input that
# crashes a target is saved in fuzz/artifacts/<target> and fails the run; fix the code,
# then copy the input into the corpus so the tests keep it.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Builds go to
# $CARGO_TARGET_DIR (default fuzz/target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
runs=${1:-1000000}
shift || true
if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O >/dev/null
printf '| target | executions | exec/s | coverage (edges) | features | corpus | findings |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: | --- |\n'
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  started=$(date +%s.%N)
  if cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -runs="$runs" -print_final_stats=1 -max_len=4096 >"$log" 2>&1; then
    findings=none
  else
    findings="crash: $(ls -t "artifacts/$target" 2>/dev/null | head -1)"
    failed=1
  fi
  executed=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  speed=$(awk -v n="${executed:-0}" -v a="$started" -v b="$(date +%s.%N)" \
    'BEGIN { if (b > a) printf "%d", n / (b - a); else print "?" }')
  done_line=$(grep -E '^#[0-9]+\s+DONE' "$log" | tail -1)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  corpus=$(find "corpus/$target" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$target" "${executed:-?}" "${speed:-?}" \
    "${cov:-?}" "${ft:-?}" "$corpus" "$findings"
  if [[ $findings != none ]]; then
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -5 >&2
  fi
  rm -f "$log"
  # Keep the inputs that reach some edge no other input reaches: the corpus the tests
  # replay stays small, and covers the same code.
  cargo +nightly fuzz cmin -O "$target" "corpus/$target" -- -use_counters=0 >/dev/null 2>&1
done
exit "$failed"
