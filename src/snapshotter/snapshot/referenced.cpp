#include "snapshotter/snapshot/referenced.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tuple>

namespace snapshotter::snapshot {
namespace {

// Why reading the manifest `key` of `name` failed (`error`), decided by the
// rule: nothing when the manifest is gone now, else the error, naming the key.
Status judge_failure(storage::Storage& storage, const std::string& name, const std::string& key,
                     const Error& error) {
    const auto present = storage.head(key);
    if (present && !*present) {
        spdlog::info("{}: manifest {} was deleted while being read ({}); it keeps nothing", name, key,
                     error.message);
        return {};
    }
    return fail(error.with_context(fmt::format("manifest {}", key)));
}

} // namespace

bool Referenced::contains(const std::string& key) const {
    return bundles.contains(key) || tables.contains(key) || lfs.contains(key);
}

Status for_each_manifest(storage::Storage& storage, const std::string& name, const ManifestVisitor& visit) {
    auto listed = storage.list(layout::manifests_prefix(name));
    if (!listed)
        return fail(listed.error().with_context(name));
    for (const auto& object : *listed) {
        auto id = layout::snapshot_id_of_manifest_key(object.key);
        if (!id || !is_snapshot_id(*id))
            continue;
        auto manifest = read_manifest(storage, name, *id);
        if (!manifest && manifest.error().kind == ErrorKind::NotFound)
            continue; // deleted since the listing
        auto visited = manifest ? visit(*manifest, object) : Status(fail(manifest.error()));
        if (!visited)
            if (auto s = judge_failure(storage, name, object.key, visited.error()); !s)
                return s;
    }
    return {};
}

Result<std::set<std::string>> lfs_keys_of(storage::Storage& storage, const Manifest& manifest) {
    std::set<std::string> keys;
    if (!manifest.lfs)
        return keys;
    auto objects = lfs_objects_of(storage, manifest);
    if (!objects)
        return fail(objects.error());
    for (const auto& object : *objects)
        keys.insert(layout::lfs_object_key(manifest.repository, object.oid));
    if (manifest.lfs->set_key)
        keys.insert(*manifest.lfs->set_key);
    return keys;
}

Result<Referenced> read_referenced(storage::Storage& storage, const std::string& name, LfsSets lfs) {
    Referenced out;
    // The set files read in this pass, as each manifest naming one describes
    // it: a set named again with the same digest, count and bytes (every
    // night without a new LFS object) lists what is already in `out.lfs`.
    std::set<std::tuple<std::string, std::string, std::uint64_t, std::uint64_t>> sets_read;
    auto visited = for_each_manifest(storage, name, [&](Manifest& m, const storage::ObjectInfo&) -> Status {
        // Its LFS set first: a manifest skipped after its set failed adds nothing.
        if (lfs == LfsSets::read && m.lfs) {
            std::tuple<std::string, std::string, std::uint64_t, std::uint64_t> set;
            if (m.lfs->set_key)
                set = {*m.lfs->set_key, m.lfs->set_sha256.value_or(""), m.lfs->count, m.lfs->bytes};
            if (!m.lfs->set_key || !sets_read.contains(set)) {
                auto keys = lfs_keys_of(storage, m);
                if (!keys)
                    return fail(keys.error());
                out.lfs.merge(*keys);
                if (m.lfs->set_key)
                    sets_read.insert(std::move(set));
            }
        }
        ++out.manifests;
        for (const auto& bundle : m.bundles)
            out.bundles.insert(bundle.key);
        // A delta table's bases too: a read of it needs them.
        for (const auto& table : m.table_chain)
            out.tables.insert(table.key);
        return {};
    });
    if (!visited)
        return fail(visited.error().with_context(
            fmt::format("{}: deleting nothing (a manifest that cannot be read may need any object)", name)));
    return out;
}

} // namespace snapshotter::snapshot
