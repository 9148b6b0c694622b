#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), one after another, with
# AddressSanitizer, and prints a table of executions, coverage and corpus size per target.
#
#   fuzz/run.sh              # the CI smoke: 30 s a target
#   fuzz/run.sh 1800         # the long run: 30 minutes a target
#   fuzz/run.sh 600 fuzz_jwt # one target
#
# New inputs go to fuzz/work/<target> (ignored by git), seeded from the committed corpus in
# fuzz/corpus/<target>, which a run never changes. A crash stops the script with a non-zero
# exit and leaves the input in fuzz/artifacts/<target>/: copy it into fuzz/corpus/<target>/,
# fix the bug and commit both (cargo test replays it from then on).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain the sanitizer flags
# need RUSTC_BOOTSTRAP=1, which this script sets.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# Build every target once; each run below then starts at once.
cargo fuzz build --sanitizer address

summary=()
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  log="work/$t.log"
  echo "== $t: ${secs}s" >&2
  # -print_final_stats prints stat::number_of_executed_units; the last "cov:" line carries
  # the coverage and corpus size reached.
  if ! cargo fuzz run --sanitizer address "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz/run.sh: $t failed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  last=$(grep -E '(#[0-9]+).*cov: [0-9]+' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  summary+=("$(printf '%-16s %8ss %12s %8s %8s %8s' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done

printf '%-16s %9s %12s %8s %8s %8s\n' target time executions cov features corpus
printf '%s\n' "${summary[@]}"
