// Git LFS pointer files (git-lfs docs/spec.md): the small text blob git
// stores in place of a large file. Parsed strictly, because every byte comes
// from a repository we do not control.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::lfs {

// A pointer file is smaller than this (spec: "less than 1024 bytes").
inline constexpr std::size_t k_max_pointer_bytes = 1023;
// No valid pointer is shorter ("version ...\noid sha256:<64>\nsize 0\n").
inline constexpr std::size_t k_min_pointer_bytes = 34 + 1 + 75 + 1 + 6 + 1;
// The largest size a pointer may state that we accept (16 TiB).
inline constexpr std::uint64_t k_max_object_size = std::uint64_t{1} << 44;

// What a pointer names: the object's SHA-256 (64 lowercase hex) and size.
struct Pointer {
    std::string oid;
    std::uint64_t size = 0;
    bool operator==(const Pointer&) const = default;
};

// The pointer `blob` is, or nullopt when it is not exactly one: UTF-8 lines
// of `key value\n`, `version` first with the v1 spec URL (or the pre-release
// hawser URL git-lfs still reads), then the other keys sorted and unique,
// keys of [a-z0-9.-], `oid sha256:<64 lowercase hex>`, `size <decimal>`
// without leading zeros and at most k_max_object_size, optional
// `ext-<digit>-<name> sha256:<hex>` extension lines, no other keys, the whole
// less than 1024 bytes. An empty blob is the pointer of an empty file and
// needs no fetch, so it is not a pointer here.
std::optional<Pointer> parse_pointer(std::string_view blob);

// The canonical text of `pointer` (what git-lfs writes).
std::string format_pointer(const Pointer& pointer);

} // namespace snapshotter::lfs
