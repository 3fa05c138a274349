#!/usr/bin/env bash
# The full benchmark suite: duet, Boost.Asio and libuv side by side, built
# in Release (-O2 -DNDEBUG), 5 alternating runs each; writes
# bench/results/results.{json,md}. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh native bench
cmake --preset bench >/dev/null
cmake --build --preset bench
exec python3 bench/run_bench.py --build-dir build/bench --runs "${RUNS:-5}" --out bench/results "$@"
