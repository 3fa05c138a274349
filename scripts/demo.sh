#!/usr/bin/env bash
# README command 1: install what is missing, build (native release), run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh native
cmake --preset release >/dev/null
cmake --build --preset release --target duet_chat_demo
exec build/release/examples/duet_chat_demo
