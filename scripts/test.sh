#!/usr/bin/env bash
# The test command: installs what the suite needs (Debian packages), builds, and runs every
# test (unit + e2e with real DCMTK peers on loopback), then the fuzzers for a bounded time (the
# PDU parsers FUZZ_SECONDS, the received data set half that).
#   scripts/test.sh            unit + e2e + 60 s + 30 s fuzz   (what CI runs)
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz run
# Every test carries the `unit` or the `e2e` label, the soak tests (kill -9 mid-ingest and
# mid-forward, several nodes) included: none is long enough to leave out of this run.
set -euo pipefail
cd "$(dirname "$0")/.."

labels='unit|e2e'
fuzz_seconds="${FUZZ_SECONDS:-60}"

bash scripts/setup.sh --test

cmake --preset default
cmake --build --preset default
ctest_log=$(mktemp)
trap 'rm -f "$ctest_log"' EXIT
ctest --test-dir build --output-on-failure -j2 -L "$labels" --timeout 900 | tee "$ctest_log"
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$ctest_log" | tail -n 1)
failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$ctest_log" | tail -n 1)

if [ "$fuzz_seconds" -gt 0 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build build-fuzz -j2 --target pdu_fuzz data_set_fuzz
  corpus_work=$(mktemp -d)
  trap 'rm -rf "$corpus_work" "$ctest_log"' EXIT
  echo "fuzz: pdu_fuzz for ${fuzz_seconds}s"
  mkdir -p "$corpus_work/pdu" "$corpus_work/data_set"
  ./build-fuzz/tests/fuzz/pdu_fuzz -max_total_time="$fuzz_seconds" -print_final_stats=0 \
    "$corpus_work/pdu" tests/fuzz/corpus/pdu 2>&1 | tail -n 3
  # The received data set (nesting walk + DCMTK's parse): half the time.
  echo "fuzz: data_set_fuzz for $((fuzz_seconds / 2))s"
  ./build-fuzz/tests/fuzz/data_set_fuzz -max_total_time="$((fuzz_seconds / 2))" \
    -print_final_stats=0 -rss_limit_mb=4096 "$corpus_work/data_set" tests/fuzz/corpus/data_set \
    2>&1 | tail -n 3
fi

# The plain summary line, last, so the suite's result is the closing line of the output.
echo "tests: $((total - failed)) passed, ${failed} failed"
