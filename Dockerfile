# The snapshotter container image: build on Debian 12, run on Debian 12 slim.
#
#   scripts/build-image.sh            (make docker-build: podman, buildah or docker)
#   docker build -t snapshotter .
#   docker run --rm -e SNAPSHOTTER_JOB_JSON="$(cat job.json)" snapshotter
#
# Builds with Docker 23+ (BuildKit has RUN --mount built in, so no `# syntax=`
# line and no frontend image to pull), `podman build` and `buildah bud` as
# Debian 12 ships them. No cache mount is `sharing=locked`: buildah 1.28 can
# leave such a lock held (two in one RUN hang the next RUN; with one per RUN,
# this file's runtime stage hung at its first RUN once, though a small repro
# did not). The default `shared` is safe for the package lists: apt locks
# them itself.
# Both stages install packages only through the scripts the test suite runs
# on the host (tests/integration/test_container_image.py), mounted for the RUN
# and never copied into a layer. The package lists are a cache mount, so they
# stay out of the image and are reused by the next build; /var/cache/apt is
# not, because the base image's docker-clean deletes the packages anyway.
#
# BASE_IMAGE (default debian:12-slim, the official image) is the runtime
# stage's base and BUILD_IMAGE (default debian:12) the build stage's; pin both
# by digest in production (docs/AWS_RUNBOOK.md, "The image"). On a machine
# without a registry scripts/build-image.sh makes them with debootstrap.
ARG BUILD_IMAGE=debian:12
ARG BASE_IMAGE=debian:12-slim

FROM ${BUILD_IMAGE} AS build
RUN --mount=type=bind,source=scripts,target=/tmp/snapshotter-scripts \
    --mount=type=cache,target=/var/lib/apt/lists \
    bash /tmp/snapshotter-scripts/install-build-deps.sh
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
RUN cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSNAPSHOTTER_TESTS=OFF \
    && cmake --build /tmp/build \
    && cmake --install /tmp/build --prefix /opt/snapshotter --strip

FROM ${BASE_IMAGE} AS runtime
RUN --mount=type=bind,source=scripts,target=/tmp/snapshotter-scripts \
    --mount=type=cache,target=/var/lib/apt/lists \
    bash /tmp/snapshotter-scripts/install-runtime-deps.sh
# A fixed non-root uid and gid, both named, so that runAsNonRoot-style checks
# can verify them and files written in a mounted volume show a known owner.
RUN groupadd --system --gid 10001 snapshotter \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/snapshotter snapshotter
COPY --from=build /opt/snapshotter/bin/snapshotter /usr/local/bin/snapshotter
USER 10001:10001
ENV HOME=/home/snapshotter
WORKDIR /home/snapshotter
ENTRYPOINT ["/usr/local/bin/snapshotter"]
