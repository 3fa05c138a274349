#!/usr/bin/env bash
# The browser demo: installs what is missing (Emscripten, Node), builds the
# wasm preset's demo and serves web/demo on http://127.0.0.1:8080/demo/
# (another port: PORT=9000 scripts/web-demo.sh). Ctrl+C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh native wasm
export NODE_PATH=/usr/share/nodejs
cmake --preset wasm >/dev/null
cmake --build --preset wasm --target web_demo
exec node web/demo/serve.mjs build/wasm "${PORT:-8080}"
