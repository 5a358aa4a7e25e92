# shellcheck shell=bash
# Sourced by build-image.sh and run-image.sh: pick the container engine.
#
#   engine_pick build|run
#
# sets ENGINE to the first usable of podman, buildah (build only) and docker
# (only when its daemon answers: the docker client alone cannot build), or to
# $ENGINE when the caller set it; fails naming the Debian packages otherwise.

engine_usable() {
    case "$1" in
    podman | buildah) command -v "$1" >/dev/null 2>&1 ;;
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

engine_pick() {
    local purpose=$1 candidates=(podman buildah docker) e
    [[ $purpose == run ]] && candidates=(podman docker)
    if [[ -n ${ENGINE:-} ]]; then
        if ! engine_usable "$ENGINE" || [[ " ${candidates[*]} " != *" $ENGINE "* ]]; then
            echo "ENGINE=$ENGINE cannot $purpose images here (usable: ${candidates[*]}; docker needs its daemon)" >&2
            return 1
        fi
        return 0
    fi
    for e in "${candidates[@]}"; do
        if engine_usable "$e"; then
            ENGINE=$e
            return 0
        fi
    done
    echo "no container engine to $purpose images: install the Debian package podman" \
        "(or buildah, or run a docker daemon)" >&2
    return 1
}
