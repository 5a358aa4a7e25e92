// What a repository's object store holds on disk, and when a kept mirror's
// packs are rolled together. A kept mirror (options.cache_dir) is fetched into
// every night and never packed by git itself (gc.auto is 0): its fetches keep
// what they bring as a pack (fetch.unpackLimit=1, git/git.cpp), and
// GitApi::repack_geometric() bounds the number of those packs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace snapshotter::git {

// The files under a repository's objects/ directory, counted by one walk.
struct ObjectStore {
    std::uint64_t bytes = 0;       // every file: loose objects, packs and their indexes, commit-graphs
    std::size_t loose_objects = 0; // files in the objects/<xx>/ fan-out directories
    std::size_t packs = 0;         // objects/pack/*.pack
};

// One walk of `repo`/objects; an absent or unreadable part counts as nothing.
ObjectStore measure_object_store(const std::filesystem::path& repo);

// A store with more packs than this is repacked geometrically: a year of
// nights (a pack each) then stays about log2(objects / a night's objects)
// packs, and each repack rolls up only the small packs of the last weeks.
inline constexpr std::size_t k_packs_to_repack = 16;
// A store with more loose objects than this is repacked too: a mirror kept
// before fetches kept their packs held a year of nights' objects loose
// (16,000 files, 51-60 ms a walk of objects/ against 0.03 ms packed).
inline constexpr std::size_t k_loose_objects_to_pack = 256;

// Whether `store` is past either bound above.
bool needs_repack(const ObjectStore& store);

} // namespace snapshotter::git
