#!/usr/bin/env bash
# The test command: installs what the suite needs (Debian packages), builds, and runs every
# test (unit + e2e with real DCMTK peers on loopback), then the PDU fuzzer for a bounded time.
#   scripts/test.sh            unit + e2e + 60 s fuzz   (what CI runs)
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
  cmake --build build-fuzz -j2 --target pdu_fuzz
  corpus_work=$(mktemp -d)
  trap 'rm -rf "$corpus_work" "$ctest_log"' EXIT
  echo "fuzz: pdu_fuzz for ${fuzz_seconds}s"
  ./build-fuzz/tests/fuzz/pdu_fuzz -max_total_time="$fuzz_seconds" -print_final_stats=0 \
    "$corpus_work" tests/fuzz/corpus/pdu 2>&1 | tail -n 3
fi

# The plain summary line, last, so the suite's result is the closing line of the output.
echo "tests: $((total - failed)) passed, ${failed} failed"
