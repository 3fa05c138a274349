#!/usr/bin/env bash
# README command 2: install what is missing, build every configuration and
# run every test:
#   release      native -O2, all tests (plus the find_package consumer)
#   asan-ubsan   native, AddressSanitizer + UBSan (leaks included)
#   tsan         native, ThreadSanitizer
#   clang        native with clang-19 and libc++: release, then ASan + UBSan
#   wasm         Emscripten build, the same core tests under Node, the web
#                driver's suite as a guest of Node's loop, and the real-browser
#                checks in headless Chromium (tests/web/browser)
#   wasm-fibers  Emscripten's fiber flavour (no tail calls; fiber tests with Asyncify) under Node
#   windows      MinGW-w64 cross build, the same core tests under Wine
#   bench-smoke  the benchmark suite with tiny N against Boost.Asio and libuv
# Every stage runs even if an earlier one failed; each prints its time, and
# the last line sums up the tests of every stage.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh native clang wasm windows bench browser || exit 1

declare -a stage_names stage_results stage_times
total_passed=0
total_failed=0

run_stage() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  local start=$SECONDS
  echo "=== stage $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start))
  # ctest: "100% tests passed, 0 tests failed out of 12"
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [[ -n $line ]]; then
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    total_passed=$((total_passed + total - failed))
    total_failed=$((total_failed + failed))
  elif [[ $rc -eq 0 ]]; then
    total_passed=$((total_passed + 1))
  fi
  if [[ $rc -ne 0 && -z $line ]]; then total_failed=$((total_failed + 1)); fi
  if [[ $rc -ne 0 && -n $line && $failed -eq 0 ]]; then total_failed=$((total_failed + 1)); fi
  stage_names+=("$name")
  stage_results+=("$([[ $rc -eq 0 ]] && echo ok || echo FAILED)")
  stage_times+=("$took")
  echo "=== stage $name: $([[ $rc -eq 0 ]] && echo ok || echo FAILED) in ${took}s"
  rm -f "$log"
}

bench_smoke() {
  cmake --preset bench >/dev/null &&
    cmake --build --preset bench &&
    cmake --preset wasm-bench >/dev/null &&
    cmake --build --preset wasm-bench &&
    python3 bench/run_bench.py --build-dir build/bench --wasm-build-dir build/wasm-bench \
      --browser-build-dir build/wasm --smoke --out build/bench/smoke
}

export NODE_PATH=/usr/share/nodejs
run_stage release cmake --workflow --preset release
run_stage asan-ubsan cmake --workflow --preset asan-ubsan
run_stage tsan cmake --workflow --preset tsan
run_stage clang-release cmake --workflow --preset clang-release
run_stage clang-asan cmake --workflow --preset clang-asan-ubsan
run_stage wasm cmake --workflow --preset wasm
run_stage wasm-fibers cmake --workflow --preset wasm-fibers
run_stage windows cmake --workflow --preset windows
run_stage bench-smoke bench_smoke

echo
echo "=== summary"
rc=0
for i in "${!stage_names[@]}"; do
  printf '  %-12s %-7s %4ss\n' "${stage_names[$i]}" "${stage_results[$i]}" "${stage_times[$i]}"
  [[ ${stage_results[$i]} == ok ]] || rc=1
done
echo "$total_passed passed, $total_failed failed"
exit $rc
