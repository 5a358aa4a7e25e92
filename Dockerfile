# syntax=docker/dockerfile:1
# The snapshotter container image: build on Debian 12, run on Debian 12 slim.
#
#   docker build -t snapshotter .
#   docker run --rm -e SNAPSHOTTER_JOB_JSON="$(cat job.json)" snapshotter
#
# Both stages install packages only through the scripts the test suite runs on
# the host (tests/integration/test_container_image.py), mounted for the RUN
# and never copied into a layer; apt's caches are cache mounts, so no package
# list lands in the image either. Needs BuildKit (the default builder since
# Docker 23).

FROM debian:12 AS build
RUN --mount=type=bind,source=scripts,target=/tmp/snapshotter-scripts \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    bash /tmp/snapshotter-scripts/install-build-deps.sh
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
RUN cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSNAPSHOTTER_TESTS=OFF \
    && cmake --build /tmp/build \
    && cmake --install /tmp/build --prefix /opt/snapshotter --strip

FROM debian:12-slim AS runtime
RUN --mount=type=bind,source=scripts,target=/tmp/snapshotter-scripts \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    bash /tmp/snapshotter-scripts/install-runtime-deps.sh
# A fixed non-root uid, so that runAsNonRoot-style checks can verify it.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/snapshotter snapshotter
COPY --from=build /opt/snapshotter/bin/snapshotter /usr/local/bin/snapshotter
USER 10001:10001
ENV HOME=/home/snapshotter
WORKDIR /home/snapshotter
ENTRYPOINT ["/usr/local/bin/snapshotter"]
