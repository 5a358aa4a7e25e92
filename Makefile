# Developer workflow; the real work is in CMake and scripts/. `make` (or
# `make help`) lists the targets. Only `make init` installs packages; any
# other target that misses a tool names its Debian package and `make init`.
#
# Each target's line in `make help` is its `## ` comment below.

BUILD_DIR := build
CMAKE_CONFIGURE := cmake -S . -B $(BUILD_DIR) -G Ninja -DSNAPSHOTTER_WERROR=ON
JOB_FILE ?=
PREFIX ?=
# fmt-check and type: every file with ALL=1, else those changed since BASE
# (default: the merge base with main).
ALL ?=
BASE ?=
IMAGE ?= snapshotter:dev
BENCH ?= fleet_bench.py
BENCH_ARGS ?= --repos 50 --rounds 1
FUZZ_SECONDS ?= 60
SANITIZER ?= address
CHECK_SCOPE = $(if $(filter 1 yes true,$(ALL)),--all,$(if $(BASE),--base $(BASE)))

.DEFAULT_GOAL := help
.PHONY: help init build fmt fmt-check lint type test run docker-build docker-run bench fuzz sanitize \
	install clean

# A missing tool: name its package and `make init`, then stop.
need = @command -v $(1) >/dev/null 2>&1 || { echo "make: $(1) is missing: install the Debian package $(2) (make init installs it)" >&2; exit 2; }

help: ## List the targets (the default goal)
	@echo "usage: make <target> [VAR=value]"
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "variables: JOB_FILE PREFIX ALL=1 BASE=ref IMAGE=$(IMAGE) ENGINE=podman|buildah|docker"
	@echo "           BENCH=$(BENCH) BENCH_ARGS='$(BENCH_ARGS)' FUZZ_SECONDS=$(FUZZ_SECONDS) SANITIZER=address|thread"

init: ## Install the build, developer and test packages (Debian 12, as root or with sudo)
	bash scripts/install-deps.sh --test

# Build output goes to stderr so that `make -s run | jq` sees only the result.
$(BUILD_DIR)/build.ninja:
	$(call need,cmake,cmake)
	$(call need,ninja,ninja-build)
	$(CMAKE_CONFIGURE) >&2

build: $(BUILD_DIR)/build.ninja ## Configure once, then build the binary and the tests into build/
	cmake --build $(BUILD_DIR) >&2

fmt: ## Format the C++ files changed since main in place (ALL=1: every file)
	bash scripts/static-checks.sh fmt $(CHECK_SCOPE)

fmt-check: ## Check the formatting of the C++ files changed since main (ALL=1: every file)
	bash scripts/static-checks.sh fmt-check $(CHECK_SCOPE)

type: ## Static analysis: clang-tidy-19 on the src/ files changed since main (ALL=1: all); no build needed
	bash scripts/static-checks.sh type $(CHECK_SCOPE)

lint: fmt-check type ## Every static check CI runs: fmt-check, then type

test: build ## Run every test, unit and integration (ctest -j2)
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# Run the job in JOB_FILE, or the one in $$SNAPSHOTTER_JOB_JSON.
run: build ## Run the job in JOB_FILE=path, or the one in $SNAPSHOTTER_JOB_JSON
ifneq ($(strip $(JOB_FILE)),)
	$(BUILD_DIR)/snapshotter --job-file $(JOB_FILE)
else
	@test -n "$$SNAPSHOTTER_JOB_JSON" || { echo "make run: set JOB_FILE=path or SNAPSHOTTER_JOB_JSON" >&2; exit 2; }
	$(BUILD_DIR)/snapshotter
endif

docker-build: ## Build the container image IMAGE with podman, buildah or docker (scripts/build-image.sh)
	IMAGE=$(IMAGE) bash scripts/build-image.sh

docker-run: ## Run IMAGE with $SNAPSHOTTER_JOB_JSON, or JOB_FILE=path, as uid 10001
	IMAGE=$(IMAGE) JOB_FILE=$(JOB_FILE) bash scripts/run-image.sh

bench: build ## Run one benchmark: BENCH=fleet_bench.py|stream_bench.py BENCH_ARGS='...' (bench/README.md)
	python3 bench/$(BENCH) --bin $(BUILD_DIR)/snapshotter $(BENCH_ARGS)

fuzz: ## Build the fuzz targets (clang-19) and run each for FUZZ_SECONDS (fuzz/README.md)
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

sanitize: ## Build with SANITIZER=address (ASan+UBSan) or thread (TSan) and run the tests under it
	bash scripts/sanitize.sh $(SANITIZER)

install: build ## Install the binary under PREFIX (default CMake's, /usr/local)
	cmake --install $(BUILD_DIR) $(if $(PREFIX),--prefix $(PREFIX))

clean: ## Remove the build trees (build, build-asan, build-tsan, build-fuzz)
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
