#!/usr/bin/env bash
# The static checks, the same for developers (make fmt-check, make type) and
# for CI (.ci/run), on the C++ files changed since a base commit or on all.
#
#   scripts/static-checks.sh fmt-check [--base REF | --all]
#       clang-format --dry-run -Werror with the repository's .clang-format
#   scripts/static-checks.sh fmt [--base REF | --all]
#       clang-format -i on the same files (make fmt)
#   scripts/static-checks.sh type [--base REF | --all]
#       clang-tidy (19: Debian 12's clang-tidy 14 cannot parse libstdc++ 12's
#       <expected>) with the repository's .clang-tidy, on the sources under
#       src/ (a changed header is checked through its .cpp). Needs only a
#       configured build tree (compile_commands.json), never a build.
#
# --base REF: the files that differ between REF and the working tree (added,
# copied, modified or renamed; deleted files are gone). Without --base or
# --all, REF is the merge base of HEAD and `main`. When REF cannot be resolved
# (a shallow clone that lacks HEAD~1, a clone of a single commit) the check
# says so and covers every file, so nothing is skipped in silence.
#
# Environment: BUILD_DIR (default build), CLANG_FORMAT, CLANG_TIDY, JOBS
# (clang-tidy processes at once, default 2). Exit status 1 when a check finds
# something, 2 for a usage error or a missing tool (named with its Debian
# package and `make init`).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
say() { echo "static-checks: $*" >&2; }

check=${1:-}
shift || true
case "$check" in
fmt | fmt-check | type) ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    say "unknown check '${check}' (fmt, fmt-check or type)"
    usage >&2
    exit 2
    ;;
esac

base="" all=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --all) all=1 ;;
    --base)
        [[ $# -ge 2 && -n $2 ]] || {
            say "--base needs a commit"
            exit 2
        }
        base=$2
        shift
        ;;
    *)
        say "unknown argument: $1"
        usage >&2
        exit 2
        ;;
    esac
    shift
done

# A tool by its command name, or exit 2 naming the package that has it.
need() {
    local command=$1 package=$2
    if ! command -v "$command" >/dev/null 2>&1; then
        say "$command is missing: install the Debian package $package (make init installs it)"
        exit 2
    fi
}

# The C++ files (one a line) to check: changed since the base, or all.
candidate_files() {
    if [[ $all -eq 0 ]]; then
        if [[ -z $base ]]; then
            base=$(git merge-base HEAD main 2>/dev/null) || base=""
            [[ -n $base ]] || say "no merge base with main here: checking every file"
        elif ! base=$(git rev-parse --verify --quiet "$base^{commit}"); then
            say "the base commit is not in this clone (shallow, or a single commit): checking every file"
            base=""
        fi
    fi
    if [[ $all -eq 1 || -z $base ]]; then
        git ls-files -- '*.cpp' '*.hpp'
    else
        git diff --name-only --diff-filter=ACMR "$base" -- '*.cpp' '*.hpp'
    fi
}

mapfile -t files < <(candidate_files)

case "$check" in
fmt)
    CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
    need "$CLANG_FORMAT" clang-format
    [[ ${#files[@]} -eq 0 ]] || "$CLANG_FORMAT" -i -- "${files[@]}"
    say "fmt: ${#files[@]} file(s) formatted"
    exit 0
    ;;
fmt-check)
    CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
    need "$CLANG_FORMAT" clang-format
    if [[ ${#files[@]} -eq 0 ]]; then
        say "fmt-check: no C++ file to check"
        exit 0
    fi
    say "fmt-check: ${#files[@]} file(s) with $("$CLANG_FORMAT" --version | head -1)"
    if ! "$CLANG_FORMAT" --dry-run -Werror -- "${files[@]}"; then
        say "fmt-check: not formatted as .clang-format says; 'make fmt' fixes the changed files"
        exit 1
    fi
    ;;
type)
    CLANG_TIDY=${CLANG_TIDY:-clang-tidy-19}
    need "$CLANG_TIDY" clang-tidy-19
    BUILD_DIR=${BUILD_DIR:-build}
    # A header is checked through the source file next to it.
    declare -A seen=()
    sources=()
    for f in "${files[@]}"; do
        [[ $f == src/* ]] || continue
        [[ $f == *.hpp ]] && f=${f%.hpp}.cpp
        [[ -f $f && -z ${seen[$f]:-} ]] || continue
        seen[$f]=1
        sources+=("$f")
    done
    if [[ ${#sources[@]} -eq 0 ]]; then
        say "type: no source file under src/ to check"
        exit 0
    fi
    if [[ ! -f $BUILD_DIR/compile_commands.json ]]; then
        need cmake cmake
        need ninja ninja-build
        say "type: configuring $BUILD_DIR for its compile_commands.json (no build)"
        cmake -S . -B "$BUILD_DIR" -G Ninja -DSNAPSHOTTER_WERROR=ON >&2
    fi
    say "type: ${#sources[@]} file(s) with $("$CLANG_TIDY" --version | grep -m1 -o 'version [0-9.]*')"
    # `--` ends xargs' own options; -P runs JOBS clang-tidy at once; any
    # failure makes xargs exit 123.
    if ! printf '%s\0' "${sources[@]}" |
        xargs -0 -n 1 -P "${JOBS:-2}" -- "$CLANG_TIDY" -p "$BUILD_DIR" --quiet --warnings-as-errors='*'; then
        say "type: clang-tidy found problems (checks in .clang-tidy)"
        exit 1
    fi
    ;;
esac
say "$check: ok"
