#include "snapshotter/git/object_store.hpp"

#include <string_view>
#include <system_error>

namespace snapshotter::git {
namespace {

// "00" .. "ff": a fan-out directory of loose objects.
bool is_fan_out(std::string_view name) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    return name.size() == 2 && hex(name[0]) && hex(name[1]);
}

} // namespace

ObjectStore measure_object_store(const std::filesystem::path& repo) {
    ObjectStore store;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(repo / "objects", ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code file_ec;
        if (!it->is_regular_file(file_ec))
            continue;
        if (auto size = it->file_size(file_ec); !file_ec)
            store.bytes += size;
        if (it.depth() != 1)
            continue;
        const auto dir = it->path().parent_path().filename().native();
        if (is_fan_out(dir))
            ++store.loose_objects;
        else if (dir == "pack" && it->path().extension() == ".pack")
            ++store.packs;
    }
    return store;
}

bool needs_repack(const ObjectStore& store) {
    return store.packs > k_packs_to_repack || store.loose_objects > k_loose_objects_to_pack;
}

} // namespace snapshotter::git
