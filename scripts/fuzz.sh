#!/usr/bin/env bash
# Build the fuzz targets into build-fuzz and run each for N seconds (default 60)
# over its seed corpus in fuzz/corpus/<target>/.
#   scripts/fuzz.sh [seconds] [target...]
#   scripts/fuzz.sh --runs N [target...]   N executions per target instead (the long run: 10000000)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CXX (default clang++-19:
# coverage-guided libFuzzer; clang >= 16 is needed for libstdc++ 12's
# std::expected, and Debian 12 ships clang 19 as clang-19. CXX=g++ builds the
# standalone driver instead, see fuzz/README.md). As root, clang-19 and
# libFuzzer (libclang-rt-19-dev) are installed when missing.
# Findings are written to build-fuzz/findings/<target>/ (libFuzzer) or as
# crash-* files in build-fuzz/fuzz/ (standalone driver). Exits non-zero on the
# first target that crashes.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time="${1:-60}")
if [[ "${1:-}" == --runs ]]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "usage: $0 --runs N [target...]" >&2; exit 2; }
  limit=(-runs="$2")
  shift
fi
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(fuzz_payload fuzz_manifest fuzz_pktline fuzz_bundle_header fuzz_pack_scan)
dir="${FUZZ_BUILD_DIR:-build-fuzz}"
CXX="${CXX:-clang++-19}"
if [[ "$CXX" == clang++-19 && ! -e /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.fuzzer-x86_64.a ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang-19 libclang-rt-19-dev
  else
    echo "fuzz.sh: clang-19 and libclang-rt-19-dev are needed (apt-get as root), or run with CXX=g++" >&2
    exit 2
  fi
fi

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPSHOTTER_FUZZ=ON \
  -DSNAPSHOTTER_TESTS=OFF -DCMAKE_CXX_COMPILER="$CXX"
cmake --build "$dir" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
corpus_root="$PWD/fuzz/corpus"
for target in "${targets[@]}"; do
  echo "== $target: ${limit[*]}"
  mkdir -p "$dir/findings/$target"
  # libFuzzer writes new interesting inputs to the first directory; keep the
  # committed seed corpus read-only by giving it a scratch one first.
  (cd "$dir/fuzz" && "./$target" "${limit[@]}" -print_final_stats=1 \
     -artifact_prefix="$PWD/../findings/$target/" "../findings/$target" "$corpus_root/$target")
done
