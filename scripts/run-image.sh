#!/usr/bin/env bash
# Run the container image once (make docker-run) with podman or docker, as
# the image's user (uid 10001), the way the task definitions of
# docs/AWS_RUNBOOK.md run it: the payload in SNAPSHOTTER_JOB_JSON, or the file
# JOB_FILE mounted read-only and passed with --job-file. The AWS_* variables
# that are set (credentials, region) are passed through by name, never by
# value on the command line. Arguments go to snapshotter (--output table).
#
#   IMAGE=snapshotter:dev JOB_FILE=examples/list.json scripts/run-image.sh
#
# Environment: IMAGE (default snapshotter:dev), ENGINE (podman or docker),
# JOB_FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/engine.sh

IMAGE=${IMAGE:-snapshotter:dev}
engine_pick run

args=(run --rm --read-only --tmpfs /tmp)
for name in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION; do
    [[ -n ${!name:-} ]] && args+=(-e "$name")
done
command=()
if [[ -n ${JOB_FILE:-} ]]; then
    [[ -r $JOB_FILE ]] || {
        echo "run-image: cannot read JOB_FILE=$JOB_FILE" >&2
        exit 2
    }
    args+=(-v "$(realpath "$JOB_FILE"):/job.json:ro")
    command=(--job-file /job.json)
elif [[ -n ${SNAPSHOTTER_JOB_JSON:-} ]]; then
    args+=(-e SNAPSHOTTER_JOB_JSON)
else
    echo "run-image: set JOB_FILE=path or SNAPSHOTTER_JOB_JSON" >&2
    exit 2
fi
exec "$ENGINE" "${args[@]}" "$IMAGE" "${command[@]}" "$@"
