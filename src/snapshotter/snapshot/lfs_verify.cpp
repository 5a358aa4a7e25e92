#include "snapshotter/snapshot/lfs_verify.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace snapshotter::snapshot {
namespace {

// Whether `set` records `oid` as missing upstream when the snapshot was taken.
bool recorded_missing(const LfsSet& set, const std::string& oid) {
    return std::ranges::binary_search(set.missing, oid, {}, &LfsMissing::oid); // sorted by oid
}

} // namespace

nlohmann::json LfsCheck::add_to(std::vector<std::string>& out, LfsCheck& total, bool hashed) const {
    out.insert(out.end(), problems.begin(), problems.end());
    total.objects += objects;
    total.bytes += bytes;
    return {{"objects", objects}, {"bytes", bytes},     {"hashed", hashed},
            {"missing", missing}, {"corrupt", corrupt}, {"missing_upstream", missing_upstream}};
}

Result<const std::map<std::string, std::uint64_t>*> LfsVerifier::listing(const std::string& name) {
    if (auto it = m_listings.find(name); it != m_listings.end())
        return &it->second;
    auto objects = m_storage.list(layout::lfs_prefix(name));
    if (!objects)
        return fail(objects.error());
    auto& sizes = m_listings[name];
    for (const auto& object : *objects)
        sizes[object.key] = object.size;
    return &sizes;
}

LfsCheck LfsVerifier::check(const Manifest& manifest) {
    LfsCheck out;
    if (!manifest.lfs)
        return out;
    out.missing_upstream = manifest.lfs->missing.size();
    auto objects = lfs_objects_of(m_storage, manifest);
    if (!objects) {
        out.problems.push_back(fmt::format("the LFS set cannot be read: {}", objects.error().message));
        return out;
    }
    auto stored = listing(manifest.repository);
    if (!stored) {
        out.problems.push_back(fmt::format("the LFS objects cannot be listed: {}", stored.error().message));
        return out;
    }
    for (const auto& object : *objects) {
        const auto key = layout::lfs_object_key(manifest.repository, object.oid);
        ++out.objects;
        out.bytes += object.size;
        auto it = (*stored)->find(key);
        if (it == (*stored)->end() && recorded_missing(*manifest.lfs, object.oid))
            continue; // the snapshot says so already (missing_upstream)
        if (it == (*stored)->end() || it->second != object.size) {
            out.missing.push_back(object.oid);
            out.problems.push_back(it == (*stored)->end()
                                       ? fmt::format("LFS object {} is missing", key)
                                       : fmt::format("LFS object {} has {} bytes, the set says {}", key,
                                                     it->second, object.size));
            continue;
        }
        if (m_hash == LfsHash::no)
            continue;
        auto known = m_hashed.find(key);
        if (known == m_hashed.end()) {
            Sha256 hash;
            std::uint64_t received = 0;
            auto read = m_storage.read(key, [&](std::span<const std::byte> chunk) -> Status {
                // Never read past the set's size: the object may have grown since the listing.
                received += chunk.size();
                if (received > object.size)
                    return fail(Error::integrity(fmt::format("larger than the set's {} bytes", object.size)));
                hash.update(chunk);
                return {};
            });
            if (!read) {
                out.problems.push_back(fmt::format("LFS object {}: {}", key, read.error().message));
                out.missing.push_back(object.oid);
                continue;
            }
            known = m_hashed.emplace(key, hash.hex_digest() == object.oid).first;
        }
        if (!known->second) {
            out.corrupt.push_back(object.oid);
            out.problems.push_back(fmt::format("LFS object {}: its SHA-256 is not its oid", key));
        }
    }
    return out;
}

} // namespace snapshotter::snapshot
