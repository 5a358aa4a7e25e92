#!/usr/bin/env bash
# The local demo: install what is needed, build, then run the example
# payloads of examples/ against a small local git repository: snapshot it
# into ./snapshots (file storage), restore it into a fresh directory, verify
# the snapshot with a restore drill and list it, printing each JSON result
# line on stdout (logs go to stderr).
#
# The upstream is examples/demo-repo when it exists, otherwise a bare
# repository generated once under examples/.demo/upstream.git (two commits on
# main, a feature branch, a lightweight and an annotated tag). The payloads
# name their paths under /DEMO_ROOT; this script writes copies with the real
# paths to examples/.demo/payloads/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/examples/.demo

log() { echo "demo: $*" >&2; }

# A git that ignores the machine's and the user's configuration.
demo_git() {
    env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
        GIT_AUTHOR_NAME="snapshotter demo" GIT_AUTHOR_EMAIL=demo@example.invalid \
        GIT_COMMITTER_NAME="snapshotter demo" GIT_COMMITTER_EMAIL=demo@example.invalid \
        git "$@"
}

make_upstream() {
    local bare=$1 work
    work=$(mktemp -d)
    demo_git init --quiet --initial-branch=main "$work"
    echo "snapshotter demo" >"$work/README"
    demo_git -C "$work" add README
    demo_git -C "$work" commit --quiet -m "Add a README"
    demo_git -C "$work" tag v0.1
    echo "restorable snapshots of git repositories" >>"$work/README"
    demo_git -C "$work" commit --quiet -am "Say what it is for"
    demo_git -C "$work" tag -a v1.0 -m "Release 1.0"
    demo_git -C "$work" checkout --quiet -b feature
    echo "work in progress" >"$work/FEATURE"
    demo_git -C "$work" add FEATURE
    demo_git -C "$work" commit --quiet -m "Start a feature"
    demo_git -C "$work" checkout --quiet main
    demo_git init --quiet --bare --initial-branch=main "$bare"
    demo_git -C "$work" push --quiet --mirror "$bare"
    rm -rf "$work"
}

# Run one payload; its JSON result line goes to stdout.
run_step() {
    local step=$1 payload=$demo/payloads/$1.json status=0
    log "$step ($payload)"
    build/snapshotter --job-file "$payload" || status=$?
    if [[ $status -ne 0 ]]; then
        log "$step failed with exit code $status"
        exit "$status"
    fi
}

# 1. Dependencies and the binary.
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DSNAPSHOTTER_WERROR=ON >&2
cmake --build build --target snapshotter >&2

# 2. The upstream repository.
if [[ -d examples/demo-repo ]]; then
    upstream=$root/examples/demo-repo
else
    upstream=$demo/upstream.git
    if [[ ! -d $upstream ]]; then
        log "creating $upstream"
        make_upstream "$upstream"
    fi
fi

# 3. Payloads with real paths; a fresh restore target.
mkdir -p "$demo/payloads"
for step in snapshot restore verify list; do
    sed -e "s#/DEMO_ROOT/examples/.demo/upstream.git#$upstream#g" -e "s#/DEMO_ROOT#$root#g" \
        "examples/$step.json" >"$demo/payloads/$step.json"
done
rm -rf "$demo/restored"

# 4. Snapshot, restore, verify with a drill, list.
for step in snapshot restore verify list; do
    run_step "$step"
done

# 5. The restored repository has exactly the upstream's refs.
restored=$demo/restored/upstream.git
if diff <(demo_git -C "$upstream" for-each-ref) <(demo_git -C "$restored" for-each-ref) >&2; then
    log "the refs of $restored equal the upstream's"
else
    log "the refs of $restored differ from the upstream's"
    exit 1
fi
