// Further haves for the stream engine's negotiation (git/stream.hpp, "Haves
// negotiation"), taken from the chain in storage when the server lost a
// previous tip (a branch reset, then a gc on the server): first the tips of
// earlier snapshots of the chain (their manifests), then exponentially spaced
// first-parent ancestors (1, 2, 4, 8, ... back) of each lost tip, read by
// scanning the chain's bundles newest first with the streaming pack scanner
// (git/pack_scan.hpp). Only the rare lost-tip case pays for it; an ordinary
// night never calls it. docs/streaming-engine.md, "Haves", has the costs.
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace snapshotter::snapshot {

// Earlier manifests of the chain whose tips are offered.
inline constexpr std::size_t k_chain_manifests = 8;
// Spaced ancestors offered per lost tip (the last one 2^(n-1) commits back).
inline constexpr std::size_t k_spaced_ancestors = 12;
// Commits remembered while scanning bundles (about 150 bytes each); the scan stops there.
inline constexpr std::size_t k_max_scanned_commits = 200'000;
// Bundle bytes scanned at most; larger bundles are skipped.
inline constexpr std::uint64_t k_max_scanned_bytes = std::uint64_t{512} << 20;
// A bundle header read while looking for its pack.
inline constexpr std::size_t k_max_scanned_header = std::size_t{32} << 20;

// Each scanned commit's first parent ("" for a root commit).
using FirstParents = std::unordered_map<std::string, std::string>;

// What spaced_ancestors() found for a set of tips.
struct SpacedAncestors {
    std::vector<std::string> commits; // 1, 2, 4, ... first-parent steps back from each tip, in tip order
    std::map<std::string, std::set<std::string>> by_tip; // those of each tip (proper ancestors of it)
    bool complete = false;            // every walk reached a root or `per_tip` commits; false: a walk
                                      // left `parents` (an older bundle holds the rest)
    std::vector<std::string> present; // chain_ancestors only: those of its `wanted` that the
                                      // scanned bundles hold as commits (in `wanted`'s order)
};

// The first-parent ancestors of each of `tips` at 1, 2, 4, ... steps back,
// at most `per_tip` of them per tip, as far as `parents` knows the history.
SpacedAncestors spaced_ancestors(const std::vector<std::string>& tips, const FirstParents& parents,
                                 std::size_t per_tip = k_spaced_ancestors);

// The distinct tips (oids and peeled oids, ref order) of the last
// k_chain_manifests snapshots of `parent`'s chain that wrote a bundle, other
// than `parent` itself, not already in `parent`'s refs or preserved tips.
// A manifest that cannot be read is skipped.
std::vector<std::string> earlier_chain_tips(storage::Storage& storage, const std::string& name,
                                            const Manifest& parent);

// The spaced first-parent ancestors of `tips` in the chain of `parent`: its
// bundles are scanned newest first (within k_max_scanned_bytes and
// k_max_scanned_commits) until every walk is complete (within a bundle too:
// git writes a pack's commits first). Every byte is checked
// as the scanner does (commit ids are hashed from their content); a bundle
// that cannot be read or scanned ends the scan with what was found so far.
// Of `wanted` (the tips the snapshot asks for), those the scanned bundles hold
// as commits are returned in `present`: the chain has them, with all they
// reach (a ref reset to an ancestor of its lost tip), so they are haves too;
// those on a lost tip's first-parent line join its `by_tip` set.
SpacedAncestors chain_ancestors(storage::Storage& storage, const Manifest& parent,
                                const std::vector<std::string>& tips, const std::string& object_format,
                                const std::vector<std::string>& wanted = {});

} // namespace snapshotter::snapshot
