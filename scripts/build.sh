#!/usr/bin/env bash
# Configures (once) and builds vkyolo into build/ (or $1). Extra arguments go to meson setup.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@"
fi
ninja -C "$dir"
