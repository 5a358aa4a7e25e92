#include "snapshotter/snapshot/publish.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/util/hash.hpp"

#include <fmt/format.h>

namespace snapshotter::snapshot {
namespace {

// Keeps the header of a bundle as it streams by (up to its blank line).
class HeaderScanner {
  public:
    void feed(std::span<const std::byte> chunk) {
        if (m_done)
            return;
        m_header.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        auto end = m_header.find("\n\n");
        if (end == std::string::npos && m_header.size() < (std::size_t{64} << 20))
            return;
        m_done = true;
        m_header.resize(end == std::string::npos ? m_header.size() : end + 2);
    }
    // The parsed header; an IntegrityError when it is malformed or incomplete.
    [[nodiscard]] Result<git::BundleHeader> header() const {
        auto parsed = git::parse_bundle_header(m_header);
        if (!parsed)
            return fail(parsed.error());
        return parsed->header;
    }

  private:
    std::string m_header;
    bool m_done = false;
};

} // namespace

Result<bool> advance_latest(storage::Storage& storage, const std::string& name, const std::string& id,
                            const std::string& manifest_key) {
    return storage.update(
        layout::latest_key(name),
        [&](const std::optional<std::string>& current) -> std::optional<std::string> {
            // An unreadable pointer is replaced; a newer one stays.
            if (current)
                if (auto named = parse_latest(*current); named && *named >= id)
                    return std::nullopt;
            return serialize_latest(id, manifest_key);
        },
        // A hint: readers take the newest manifest when it is lost or stale.
        Durability::atomic_only);
}

Result<std::string> publish_manifest(storage::Storage& storage, Manifest& manifest, Overwrite overwrite,
                                     const std::optional<TableRef>& base) {
    manifest.schema_version = k_manifest_schema_version;
    // Table first: a crash before the manifest leaves an orphan table for gc, never a manifest without it.
    if (auto s = publish_table(storage, manifest, base); !s)
        return fail(s.error());
    auto text = serialize_manifest(manifest);
    if (!text)
        return fail(text.error());
    auto key = layout::manifest_key(manifest.repository, manifest.snapshot_id);
    if (auto s = storage.put(key, *text, overwrite); !s)
        return fail(s.error());
    return key;
}

Result<BundleInfo> store_bundle(storage::Storage& storage, const git::GitApi& git,
                                const std::filesystem::path& repo, const std::vector<std::string>& revs,
                                const std::string& key, const std::string& snapshot_id,
                                std::chrono::milliseconds timeout, std::uint64_t max_bytes,
                                const std::function<Status(const git::BundleHeader&)>& check_header) {
    auto writer = storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    Sha256 hash;
    HeaderScanner header;
    std::uint64_t size = 0;
    auto streamed = git.bundle_create(
        repo, revs,
        [&](std::span<const std::byte> chunk) -> Status {
            hash.update(chunk);
            header.feed(chunk);
            size += chunk.size();
            if (max_bytes > 0 && size > max_bytes)
                return fail(Error::git(
                    fmt::format("the bundle is larger than {} bytes (options.max_pack_bytes)", max_bytes)));
            return (*writer)->write(chunk);
        },
        timeout);
    if (!streamed) {
        (*writer)->abort();
        return fail(streamed.error());
    }
    auto parsed = header.header();
    if (!parsed) {
        (*writer)->abort();
        return fail(parsed.error().with_context("bundle create"));
    }
    if (check_header)
        if (auto s = check_header(*parsed); !s) {
            (*writer)->abort();
            return fail(s.error());
        }
    if (auto s = (*writer)->commit(); !s)
        return fail(s.error());
    return BundleInfo{snapshot_id, key, size, hash.hex_digest(), parsed->prerequisites};
}

} // namespace snapshotter::snapshot
