#!/usr/bin/env bash
# Install what the snapshotter binary needs at run time on Debian 12,
# idempotently (apt-get runs only when a package is missing): git and
# openssh-client (snapshotter runs git, git runs ssh), ca-certificates, and
# the shared libraries the binary links against. Run as root, or as a user
# with sudo. The container image's runtime stage runs exactly this script;
# tests/integration/test_container_image.py runs it too and checks with ldd
# that these packages provide every library of the built binary.
#
#   scripts/install-runtime-deps.sh                   install what is missing
#   scripts/install-runtime-deps.sh --print-packages  print the packages, one a line
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

runtime_packages=(
    git openssh-client ca-certificates
    # Libraries of the binary; their own dependencies come with them.
    libcurl4 libssl3 libspdlog1.10 libfmt9 libstdc++6 libgcc-s1 libc6
    zlib1g libdeflate0
)

case "${1:-}" in
"") apt_install_missing install-runtime-deps.sh "${runtime_packages[@]}" ;;
--print-packages) printf '%s\n' "${runtime_packages[@]}" ;;
-h | --help) apt_usage "$0" 12 ;;
*)
    echo "install-runtime-deps.sh: unknown argument: $1" >&2
    apt_usage "$0" 12 >&2
    exit 2
    ;;
esac
