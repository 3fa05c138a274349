#!/usr/bin/env bash
# Installs what duet's build and tests need on Debian 12, skipping what is
# already present. Idempotent: a second run installs nothing and touches no
# package lists.
#
#   scripts/install-deps.sh [native] [clang] [wasm] [windows] [bench] [browser]
#
# With no argument it installs the "native" set. Each set is a list of Debian
# packages checked with dpkg-query; apt-get runs only when one is missing.
# "browser" also installs playwright-core from npm into tests/web/browser
# (package-lock.json pins it; skipped when present). It drives Debian's
# Chromium and never downloads a browser of its own.
set -euo pipefail

declare -A SETS=(
  [native]="build-essential cmake ninja-build catch2 ccache python3 libboost-context-dev libglib2.0-dev pkg-config"
  [clang]="clang-19 lld-19 libc++-19-dev libc++abi-19-dev libclang-rt-19-dev"
  [wasm]="emscripten nodejs"
  [windows]="g++-mingw-w64-x86-64-posix wine wine64"
  [bench]="libboost-dev libuv1-dev pkg-config"
  [browser]="chromium nodejs npm"
)

wanted=()
for set in "${@:-native}"; do
  [[ -n "${SETS[$set]+x}" ]] || { echo "install-deps: unknown set '$set'" >&2; exit 2; }
  wanted+=(${SETS[$set]})
done

missing=()
for pkg in "${wanted[@]}"; do
  # nodejs may come from outside Debian (the machine image ships node 20);
  # a working `node` on PATH is enough.
  if [[ $pkg == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ $pkg == npm ]] && command -v npm >/dev/null; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: nothing to install (${wanted[*]})"
fi

for set in "${@:-native}"; do
  if [[ $set == browser ]]; then
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/web/browser"
    if [[ -f $dir/node_modules/playwright-core/package.json ]]; then
      echo "install-deps: playwright-core already in tests/web/browser"
    else
      echo "install-deps: npm ci in tests/web/browser (playwright-core)"
      # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing,
      # but make sure no install script ever fetches a browser.
      (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done
