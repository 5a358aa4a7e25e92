#!/usr/bin/env bash
# Build with sanitizers and run the tests under them.
#   scripts/sanitize.sh [address]  AddressSanitizer + UndefinedBehaviorSanitizer into build-asan,
#                                  then the whole ctest suite (unit and integration).
#   scripts/sanitize.sh thread     ThreadSanitizer into build-tsan, then the unit tests and every
#                                  test whose name mentions concurrency, fleet or s3.
# Extra arguments after the mode are passed to ctest (e.g. -L unit). Exits with ctest's status.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-address}"
shift || true
case "$mode" in
  address) dir=build-asan; sanitize="address,undefined" ;;
  thread) dir=build-tsan; sanitize="thread" ;;
  *) echo "usage: $0 [address|thread] [ctest args...]" >&2; exit 2 ;;
esac

# Fail on the first report instead of printing and carrying on; keep leak checking on.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

# -O1 -g1, as the sanitizer manuals suggest: fast enough to run, line tables for the
# reports' stack traces, and much less compile time than -O2 -g. Assertions stay on.
cmake -S . -B "$dir" -G Ninja -DSNAPSHOTTER_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSNAPSHOTTER_SANITIZE="$sanitize"
cmake --build "$dir"

status=0
if [[ "$mode" == thread ]]; then
  # Sanitized code runs several times slower: generous timeouts, unit tests plus the concurrent paths.
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 1800 -L unit "$@" || status=$?
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 1800 -LE unit \
    -R '(concurren|fleet|s3|S3|Fleet|Concurren)' "$@" || status=$?
else
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 1800 "$@" || status=$?
fi
exit "$status"
