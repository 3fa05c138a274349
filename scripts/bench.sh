#!/usr/bin/env bash
# The full benchmark suite: duet, Boost.Asio and libuv side by side, built
# in Release (-O2 -DNDEBUG), 5 alternating runs each, plus duet's W1-W4 as
# wasm under Node; writes
# bench/results/results.{json,md}. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh native bench wasm
export NODE_PATH=/usr/share/nodejs  # Emscripten's optimiser loads Debian's acorn
cmake --preset bench >/dev/null
cmake --build --preset bench
cmake --preset wasm-bench >/dev/null
cmake --build --preset wasm-bench
exec python3 bench/run_bench.py --build-dir build/bench --wasm-build-dir build/wasm-bench --runs "${RUNS:-5}" \
  --out bench/results "$@"
