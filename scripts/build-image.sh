#!/usr/bin/env bash
# Build the container image (make docker-build) with whichever engine works
# here: podman, buildah or docker (docker only when its daemon answers).
#
#   scripts/build-image.sh            build $IMAGE (default snapshotter:dev)
#
# Environment: IMAGE, ENGINE (podman, buildah or docker; default the first
# usable), BASE_IMAGE (default debian:12-slim) and BUILD_IMAGE (default
# debian:12), passed to the Dockerfile's build arguments; pin them by digest
# in production (docs/AWS_RUNBOOK.md). DEBIAN_MIRROR (default
# http://deb.debian.org/debian) for debootstrap. ISOLATION (podman and
# buildah: oci, the default, or chroot, for a machine whose OCI runtime cannot
# start containers, say a VM without CAP_SYS_RESOURCE or with hybrid cgroups).
#
# A base image the engine does not have and cannot pull (a machine whose only
# registry is a Debian mirror) is made locally: `debootstrap --variant=minbase
# bookworm` (as root; the package is debootstrap), imported under the same
# name. The root filesystem is kept in ~/.cache/snapshotter-image/ for the
# next time. Such a base is close to debian:12-slim; for debian:12 it is the
# same minimal system, which is all the build stage needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/engine.sh

IMAGE=${IMAGE:-snapshotter:dev}
BASE_IMAGE=${BASE_IMAGE:-debian:12-slim}
BUILD_IMAGE=${BUILD_IMAGE:-debian:12}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/snapshotter-image

say() { echo "build-image: $*" >&2; }

engine_pick build

has_image() {
    case "$ENGINE" in
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
    *) "$ENGINE" image exists "$1" 2>/dev/null || "$ENGINE" inspect --type image "$1" >/dev/null 2>&1 ;;
    esac
}

pull_image() { timeout 120 "$ENGINE" pull "$1" >&2; }

# A tarball of a minimal Debian 12 root filesystem, made once.
rootfs_tarball() {
    local tarball=$cache/bookworm-minbase.tar
    if [[ ! -s $tarball ]]; then
        command -v debootstrap >/dev/null 2>&1 || {
            say "no registry answers and debootstrap is missing: install the Debian package debootstrap"
            return 1
        }
        [[ $(id -u) -eq 0 ]] || {
            say "debootstrap needs root to make the base image"
            return 1
        }
        mkdir -p "$cache"
        local dir
        dir=$(mktemp -d "$cache/rootfs.XXXXXX")
        say "debootstrap --variant=minbase bookworm $dir $DEBIAN_MIRROR"
        debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >&2
        # What the official image leaves out too: downloaded packages and lists.
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
        tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    fi
    echo "$tarball"
}

import_image() {
    local name=$1 tarball=$2
    case "$ENGINE" in
    podman | docker) "$ENGINE" import "$tarball" "$name" >&2 ;;
    buildah)
        local ctr
        ctr=$(buildah from scratch)
        buildah add "$ctr" "$tarball" / >&2
        buildah commit --rm "$ctr" "$name" >&2
        ;;
    esac
}

# Each base image: already here, pulled, or made with debootstrap.
for base in "$BUILD_IMAGE" "$BASE_IMAGE"; do
    if has_image "$base"; then
        say "$base: present"
    elif pull_image "$base"; then
        say "$base: pulled"
    else
        say "$base: no registry has it for $ENGINE; making it with debootstrap"
        tarball=$(rootfs_tarball)
        import_image "$base" "$tarball"
    fi
done

args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_IMAGE=$BUILD_IMAGE" -t "$IMAGE" .)
say "$ENGINE building $IMAGE from $BUILD_IMAGE and $BASE_IMAGE"
isolation=()
[[ -n ${ISOLATION:-} ]] && isolation=(--isolation "$ISOLATION")
case "$ENGINE" in
podman) podman build --pull=never --layers "${isolation[@]}" "${args[@]}" ;;
buildah) buildah bud --pull-never --layers "${isolation[@]}" "${args[@]}" ;;
docker) DOCKER_BUILDKIT=1 docker build "${args[@]}" ;;
esac
say "built $IMAGE"
