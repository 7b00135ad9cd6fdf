#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in fuzz/ (libFuzzer, coverage-guided). The stable
# toolchain works with `-s none` (no sanitizer: Rust code is memory-safe; what is looked for is
# panics, hangs and runaway memory). Installs cargo-fuzz from crates.io when missing.
#
#   scripts/fuzz.sh                          # parser, manifests, admission: 60 s each
#   SECONDS_PER_TARGET=600 scripts/fuzz.sh parser
#
# Each target starts from a scratch corpus (fuzz/corpus/<target>, git-ignored) seeded with the
# test fixtures and examples; a crash leaves its input in fuzz/artifacts/<target>/ and makes the
# script exit 1. Limits per input: 10 s (a hang), 2 GiB RSS (runaway memory).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parser manifests admission)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --quiet
fi

echo "== cargo fuzz build -s none" >&2
cargo fuzz build -s none

status=0
printf '%-10s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus outcome
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  case $t in
    parser) find tests/fixtures -name '*.conf' -exec cp {} "$corpus/" \; ;;
    admission) cp tests/fixtures/admission/*.json "$corpus/" ;;
  esac
  find tests/fixtures examples -name '*.yaml' -exec cp {} "$corpus/" \;
  log=$(mktemp)
  if cargo fuzz run -s none "$t" "$corpus" -- -max_total_time="$SECONDS_PER_TARGET" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    outcome=ok
  else
    outcome="CRASH (see fuzz/artifacts/$t/ and $log)"
    status=1
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
  size=$(find "$corpus" -type f | wc -l)
  printf '%-10s %8s %12s %10s %8s  %s\n' "$t" "$SECONDS_PER_TARGET" "${execs:-?}" "${rate:-?}" "$size" "$outcome"
  [ "$outcome" = ok ] && rm -f "$log"
done
exit $status
