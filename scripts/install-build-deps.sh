#!/usr/bin/env bash
# Install what building snapshotter needs on Debian 12, idempotently (apt-get
# runs only when a package is missing): the compiler, CMake, Ninja and the
# -dev packages. Run as root, or as a user with sudo. The container image's
# build stage runs exactly this script (without --dev).
#
#   scripts/install-build-deps.sh                   compiler, cmake, ninja, -dev packages
#   scripts/install-build-deps.sh --dev             also GoogleTest, clang-format and clang-tidy
#   scripts/install-build-deps.sh --print-packages  print the packages, one a line (with --dev: those too)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

build_packages=(
    g++ cmake ninja-build pkg-config make
    libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
    zlib1g-dev libdeflate-dev
)
dev_packages=(
    libgtest-dev libgmock-dev clang-format clang-tidy
    # make lint: clang-tidy 14 cannot parse libstdc++ 12's <expected>, 19 can.
    clang-tidy-19
)

with_dev=0 print_only=0
for arg in "$@"; do
    case "$arg" in
    --dev) with_dev=1 ;;
    --print-packages) print_only=1 ;;
    -h | --help)
        apt_usage "$0" 10
        exit 0
        ;;
    *)
        echo "install-build-deps.sh: unknown argument: $arg" >&2
        apt_usage "$0" 10 >&2
        exit 2
        ;;
    esac
done

wanted=("${build_packages[@]}")
[[ $with_dev -eq 1 ]] && wanted+=("${dev_packages[@]}")
if [[ $print_only -eq 1 ]]; then
    printf '%s\n' "${wanted[@]}"
else
    apt_install_missing install-build-deps.sh "${wanted[@]}"
fi
