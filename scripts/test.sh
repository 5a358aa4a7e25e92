#!/usr/bin/env bash
# The one test command: install dependencies (with the test servers),
# configure with warnings as errors, build, and run every test (unit and
# integration) through ctest. Exits with ctest's status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --test
cmake -S . -B build -G Ninja -DSNAPSHOTTER_WERROR=ON
cmake --build build
status=0
ctest --test-dir build --output-on-failure -j2 --timeout 900 || status=$?
exit "$status"
