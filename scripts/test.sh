#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite: once in a
# release build, once under AddressSanitizer + UndefinedBehaviorSanitizer. GPU tests run on the
# device vkyolo picks (lavapipe without a GPU) with the Vulkan validation layers on: any
# validation message fails the test. Set VKYOLO_SHARED to the shared oracle/data folder if it is
# not ../shared beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
scripts/build.sh build -Dwerror=true
# The 'slow' suite (finite-difference sweeps of the whole backward, the 20-step training curve,
# ~10 minutes) runs with VKYOLO_SLOW_TESTS=1.
if [ "${VKYOLO_SLOW_TESTS:-0}" = 1 ]; then
	meson test -C build --num-processes "$jobs" --print-errorlogs
else
	meson test -C build --num-processes "$jobs" --print-errorlogs --no-suite slow
fi

# Sanitizers, on the unit, gpu and display suites (the golden suite repeats the same code on the oracle
# models, which takes minutes under ASan on lavapipe). The Vulkan loader and Mesa leak a few bytes from libraries they unload (frames
# without symbols, so LSan cannot suppress them): leak checking stays on for CPU-only tests and
# is off for GPU and display (X, SDL) tests, whose device memory accounting is asserted by the tests themselves.
scripts/build.sh build-asan -Dwerror=true -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_OPTIONS=detect_leaks=1 meson test -C build-asan --num-processes "$jobs" --print-errorlogs --suite unit
ASAN_OPTIONS=detect_leaks=0 meson test -C build-asan --num-processes "$jobs" --print-errorlogs --suite gpu --suite display
