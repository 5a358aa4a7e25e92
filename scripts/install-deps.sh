#!/usr/bin/env bash
# Install what snapshotter needs on Debian 12, idempotently: apt-get runs
# only when a package is missing. Run as root, or as a user with sudo.
#
#   scripts/install-deps.sh          runtime and build dependencies, and the
#                                    developer tools (tests, format, lint)
#   scripts/install-deps.sh --test   also the test servers (lighttpd, sshd; git
#                                    http-backend comes with git), the git-lfs
#                                    client, and a check
#                                    that moto and boto3 import for S3 tests
#
# The runtime and build halves are scripts/install-runtime-deps.sh and
# scripts/install-build-deps.sh, the two scripts the container image runs.
set -euo pipefail
scripts=$(dirname "${BASH_SOURCE[0]}")
source "$scripts/lib/apt.sh"

with_test=0
for arg in "$@"; do
    case "$arg" in
    --test) with_test=1 ;;
    -h | --help)
        apt_usage "$0" 12
        exit 0
        ;;
    *)
        echo "install-deps.sh: unknown argument: $arg" >&2
        apt_usage "$0" 12 >&2
        exit 2
        ;;
    esac
done

bash "$scripts/install-runtime-deps.sh"
bash "$scripts/install-build-deps.sh" --dev

if [[ $with_test -eq 1 ]]; then
    test_packages=(lighttpd openssh-server tmux) # tmux: a real terminal for test_people_cli
    # Ceph RGW, the second S3 server of the integration tests (tests/integration/rgw.py).
    test_packages+=(ceph-mon ceph-osd ceph-mgr radosgw ceph-common)
    # JGit and Dulwich, the two v0-only git:// servers of tests/integration/test_server_matrix.py.
    test_packages+=(jgit-cli python3-dulwich)
    # git-lfs, the real client that pushes and checks LFS content in tests/integration/test_lfs.py.
    test_packages+=(git-lfs)
    # Integration tests are Python; any python3 on PATH will do (ours may be pyenv's).
    command -v python3 >/dev/null 2>&1 || test_packages+=(python3)
    apt_install_missing install-deps.sh "${test_packages[@]}"
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
