# Developer workflow; the real work is in CMake and scripts/.
#   make init | build | fmt | lint | test | run [JOB_FILE=path] | install [PREFIX=dir] | clean

BUILD_DIR := build
CMAKE_CONFIGURE := cmake -S . -B $(BUILD_DIR) -G Ninja -DSNAPSHOTTER_WERROR=ON
FORMAT_SOURCES = $(shell find $(wildcard src tests bench fuzz) -type f \( -name '*.cpp' -o -name '*.hpp' \) | sort)
LINT_SOURCES = $(shell find src -type f -name '*.cpp' | sort)
# clang-tidy 14 (Debian 12's default) cannot parse libstdc++ 12's <expected>;
# Debian 12's clang-tidy-19 can.
CLANG_TIDY ?= $(shell command -v clang-tidy-19 || command -v clang-tidy)
JOB_FILE ?=
PREFIX ?=

.PHONY: init build fmt lint test run install clean

# Install the build and test dependencies (Debian 12, apt-get as root).
init:
	bash scripts/install-deps.sh --test

# Build output goes to stderr so that `make -s run | jq` sees only the result.
$(BUILD_DIR)/build.ninja:
	$(CMAKE_CONFIGURE) >&2

# Configure once, then build the binary and the tests.
build: $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) >&2

# Format every C++ source in place.
fmt:
	clang-format -i $(FORMAT_SOURCES)

# clang-tidy over src with the build's compile commands, two files at a time.
lint: build
	printf '%s\n' $(LINT_SOURCES) | xargs -P 2 -n 1 $(CLANG_TIDY) -p $(BUILD_DIR) --quiet

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# Run the job in JOB_FILE, or the one in $$SNAPSHOTTER_JOB_JSON.
run: build
ifneq ($(strip $(JOB_FILE)),)
	$(BUILD_DIR)/snapshotter --job-file $(JOB_FILE)
else
	@test -n "$$SNAPSHOTTER_JOB_JSON" || { echo "make run: set JOB_FILE=path or SNAPSHOTTER_JOB_JSON" >&2; exit 2; }
	$(BUILD_DIR)/snapshotter
endif

install: build
	cmake --install $(BUILD_DIR) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD_DIR)
