// libFuzzer target: the manifest, table (full or delta) and latest-pointer
// parsers, which read storage contents that are untrusted on restore.
#include "snapshotter/snapshot/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    auto manifest = snapshotter::snapshot::parse_manifest(text);
    auto latest = snapshotter::snapshot::parse_latest(text);
    // A table applied to a small base, as a chain's reader applies each table.
    snapshotter::snapshot::Manifest base;
    base.repository = "org/app";
    base.refs["refs/heads/main"] = {std::string(40, 'a'), ""};
    base.bundles.push_back({"x", "repos/org%2Fapp/bundles/x.bundle", 1, std::string(64, '0'), {}});
    if (auto table = snapshotter::snapshot::parse_table(text, base.repository, 16))
        (void)snapshotter::snapshot::apply_table(base, *table);
    return (manifest.has_value() && latest.has_value()) ? 0 : 0;
}
