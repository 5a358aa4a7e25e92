// libFuzzer target: the manifest and latest-pointer parsers, which read
// storage contents that are untrusted on restore.
#include "snapshotter/snapshot/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    auto manifest = snapshotter::snapshot::parse_manifest(text);
    auto latest = snapshotter::snapshot::parse_latest(text);
    return (manifest.has_value() && latest.has_value()) ? 0 : 0;
}
