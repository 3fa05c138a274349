#!/usr/bin/env bash
# The full benchmark suite: duet, Boost.Asio and libuv side by side, built
# in Release (-O2 -DNDEBUG), 5 alternating runs each, plus duet's W1-W4 as
# wasm under Node (W8), the browser driver's latency in Chromium (W9) and
# duet's IOCP echo server under Wine (indicative figures);
# writes
# bench/results/results.{json,md}. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh native bench wasm browser windows
export NODE_PATH=/usr/share/nodejs  # Emscripten's optimiser loads Debian's acorn
cmake --preset bench >/dev/null
cmake --build --preset bench
cmake --preset wasm-bench >/dev/null
cmake --build --preset wasm-bench
cmake --preset windows-bench >/dev/null  # duet's IOCP echo server, run under Wine (indicative)
cmake --build --preset windows-bench
cmake --preset wasm >/dev/null  # the page of the browser latency probe (W9)
cmake --build --preset wasm --target web_probe
exec python3 bench/run_bench.py --build-dir build/bench --wasm-build-dir build/wasm-bench --browser-build-dir build/wasm \
  --wine-build-dir build/windows-bench \
  --runs "${RUNS:-5}" \
  --out bench/results "$@"
