// A valid manifest for unit tests that need one to store or to edit.
#pragma once

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/manifest.hpp"

#include <string>
#include <vector>

namespace snapshotter::test {

// A full snapshot `id` of `repo` with one ref (refs/heads/main) whose
// restore chain is the bundles written by `bundle_ids`, each `bundle_size`
// bytes; a version-1 manifest (sets inline), as snapshotter wrote before
// tables, so that serialize_manifest() alone makes the stored object.
inline snapshot::Manifest sample_manifest(const std::string& repo, const std::string& id,
                                          const std::vector<std::string>& bundle_ids,
                                          std::uint64_t bundle_size = 3) {
    snapshot::Manifest m;
    m.schema_version = snapshot::k_manifest_schema_version_v1;
    m.snapshot_id = id;
    m.repository = repo;
    m.source_url = "https://example.invalid/" + repo + ".git";
    m.created_at = "2026-11-28T00:00:00Z";
    m.engine = "cli";
    m.object_format = "sha1";
    m.kind = snapshot::SnapshotKind::full;
    m.head = "refs/heads/main";
    m.head_kind = git::HeadKind::symbolic;
    m.refs["refs/heads/main"] = {std::string(40, 'a'), ""};
    for (const auto& b : bundle_ids)
        m.bundles.push_back(
            {b, snapshot::layout::bundle_key(repo, b), bundle_size, std::string(64, '0'), {}});
    return m;
}

} // namespace snapshotter::test
