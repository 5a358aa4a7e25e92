#!/usr/bin/env bash
# Install what snapshotter needs on Debian 12, idempotently: apt-get runs
# only when a package is missing. Run as root, or as a user with sudo.
#
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   also the test servers (lighttpd; git
#                                    http-backend comes with git) and a check
#                                    that moto and boto3 import for S3 tests
set -euo pipefail

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }

with_test=0
for arg in "$@"; do
    case "$arg" in
    --test) with_test=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "install-deps.sh: unknown argument: $arg" >&2
        usage >&2
        exit 2
        ;;
    esac
done

build_packages=(
    g++ cmake ninja-build pkg-config make
    libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
    libgtest-dev libgmock-dev
    git ca-certificates clang-format clang-tidy
    # make lint: clang-tidy 14 cannot parse libstdc++ 12's <expected>, 19 can.
    clang-tidy-19
)
test_packages=(lighttpd)

# Root runs apt-get directly; anyone else needs sudo.
as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        as_root=(false)
    fi
fi

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

wanted=("${build_packages[@]}")
if [[ $with_test -eq 1 ]]; then
    wanted+=("${test_packages[@]}")
    # Integration tests are Python; any python3 on PATH will do (ours may be pyenv's).
    command -v python3 >/dev/null 2>&1 || wanted+=(python3)
fi

missing=()
for package in "${wanted[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if [[ ${#missing[@]} -gt 0 ]]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps.sh: missing packages (${missing[*]}) and no apt-get: this script is for Debian 12" >&2
        exit 1
    fi
    if [[ ${as_root[0]:-} == false ]]; then
        echo "install-deps.sh: missing packages (${missing[*]}); run as root or install sudo" >&2
        exit 1
    fi
    echo "install-deps.sh: installing ${missing[*]}" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "install-deps.sh: all ${#wanted[@]} packages already installed" >&2
fi

if [[ $with_test -eq 1 ]]; then
    if [[ ! -x /usr/lib/git-core/git-http-backend ]]; then
        echo "install-deps.sh: /usr/lib/git-core/git-http-backend is missing (it ships with git)" >&2
        exit 1
    fi
    if ! python3 -c 'import moto, boto3' >/dev/null 2>&1; then
        echo "install-deps.sh: WARNING: python3 cannot import moto and boto3; the S3 integration" \
            "tests will be skipped (moto_server is preinstalled on our machines; this script" \
            "does not pip install anything)" >&2
    fi
fi
