#!/usr/bin/env bash
# Build the fuzz targets into build-fuzz and run each for N seconds (default 60)
# over its seed corpus in fuzz/corpus/<target>/.
#   scripts/fuzz.sh [seconds] [target...]
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CXX (clang++ selects
# libFuzzer; clang >= 16 is needed for libstdc++ 12's std::expected, so the
# default is GCC with the standalone driver, see fuzz/README.md).
# Findings are written to build-fuzz/findings/<target>/ (libFuzzer) or as
# crash-* files in build-fuzz/fuzz/ (standalone driver). Exits non-zero on the
# first target that crashes.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(fuzz_payload fuzz_manifest fuzz_pktline fuzz_bundle_header)
dir="${FUZZ_BUILD_DIR:-build-fuzz}"

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOTTER_FUZZ=ON \
  ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"}
cmake --build "$dir" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
corpus_root="$PWD/fuzz/corpus"
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "$dir/findings/$target"
  # libFuzzer writes new interesting inputs to the first directory; keep the
  # committed seed corpus read-only by giving it a scratch one first.
  (cd "$dir/fuzz" && "./$target" -max_total_time="$seconds" -print_final_stats=1 \
     -artifact_prefix="$PWD/../findings/$target/" "../findings/$target" "$corpus_root/$target")
done
