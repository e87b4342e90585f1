#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, list the Vulkan devices
# and run detection on a bundled sample with the bundled model, on the best device present
# (lavapipe when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
./build/apps/vkyolo devices
