#include "snapshotter/snapshot/chain_haves.hpp"

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/snapshot/catalog.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

// Feeds one stored bundle to a commit-reporting pack scanner: the header is
// collected (bounded) and parsed, the pack after it scanned as it arrives.
// Packs hold their commits first (git writes them so), so the scan stops
// (complete() true, feed() failing) as soon as every walk from `tips` is:
// checked after each chunk that brought new commits.
class BundleCommitScan {
  public:
    BundleCommitScan(const BundleInfo& bundle, const std::string& object_format,
                     const std::vector<std::string>& tips, FirstParents& parents)
        : m_bundle(bundle), m_parents(parents), m_tips(tips),
          m_scanner(git::PackScanOptions{.object_format = object_format, .cache_bytes = 4U << 20},
                    git::PackScanCallbacks{.on_commit = [this](const git::ScannedCommit& c) -> Status {
                        if (m_parents.size() >= k_max_scanned_commits)
                            return fail(Error::internal(
                                fmt::format("more than {} commits scanned", k_max_scanned_commits)));
                        m_parents.emplace(c.oid, c.parents.empty() ? std::string{} : c.parents.front());
                        ++m_commits;
                        return {};
                    }}) {}

    // True once every walk was complete and the scan stopped early.
    [[nodiscard]] bool complete() const { return m_complete; }
    // Bundle bytes read.
    [[nodiscard]] std::uint64_t received() const { return m_received; }

    Status feed(std::span<const std::byte> chunk) {
        m_received += chunk.size();
        if (m_received > m_bundle.size)
            return fail(Error::integrity(
                fmt::format("bundle {}: larger than the manifest's {} bytes", m_bundle.key, m_bundle.size)));
        std::string_view data(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        if (!m_in_pack) {
            m_header.append(data);
            auto end = m_header.find("\n\n");
            if (end == std::string::npos) {
                if (m_header.size() > k_max_scanned_header)
                    return fail(Error::integrity(fmt::format("bundle {}: header longer than {} bytes",
                                                             m_bundle.key, k_max_scanned_header)));
                return {};
            }
            auto parsed = git::parse_bundle_header(std::string_view(m_header).substr(0, end + 2));
            if (!parsed)
                return fail(parsed.error().with_context(fmt::format("bundle {}", m_bundle.key)));
            m_in_pack = true;
            std::string rest = m_header.substr(parsed->size);
            m_header.clear();
            return scan(rest);
        }
        return scan(data);
    }

    Status finish() {
        if (auto summary = m_scanner.finish(); !summary)
            return fail(summary.error().with_context(fmt::format("bundle {}", m_bundle.key)));
        return {};
    }

  private:
    // Scan `data`, then stop once every walk is complete.
    Status scan(std::string_view data) {
        if (auto s = m_scanner.feed(data); !s)
            return s;
        if (m_commits == m_checked)
            return {};
        m_checked = m_commits;
        if (!spaced_ancestors(m_tips, m_parents).complete)
            return {};
        m_complete = true;
        return fail(Error::internal("every walk is complete"));
    }

    const BundleInfo& m_bundle;
    FirstParents& m_parents;
    const std::vector<std::string>& m_tips;
    git::PackScanner m_scanner;
    std::string m_header;
    std::uint64_t m_received = 0;
    std::size_t m_commits = 0, m_checked = 0;
    bool m_in_pack = false;
    bool m_complete = false;
};

} // namespace

SpacedAncestors spaced_ancestors(const std::vector<std::string>& tips, const FirstParents& parents,
                                 std::size_t per_tip) {
    SpacedAncestors out{.complete = true};
    std::set<std::string> seen;
    for (const auto& tip : tips) {
        std::string at = tip;
        std::size_t steps = 0, next = 1, found = 0;
        while (found < per_tip) {
            auto it = parents.find(at);
            if (it == parents.end()) {
                out.complete = false; // the rest of this history is in an older bundle
                break;
            }
            if (it->second.empty())
                break; // a root commit: the whole history was walked
            at = it->second;
            if (++steps == next) {
                out.by_tip[tip].insert(at);
                if (seen.insert(at).second)
                    out.commits.push_back(at);
                ++found;
                next *= 2;
            }
        }
    }
    return out;
}

std::vector<std::string> earlier_chain_tips(storage::Storage& storage, const std::string& name,
                                            const Manifest& parent) {
    std::set<std::string> known;
    for (const auto& [ref, target] : parent.refs) {
        known.insert(target.oid);
        known.insert(target.peeled);
    }
    for (const auto& [key, oid] : parent.preserved)
        known.insert(oid);
    std::vector<std::string> out;
    std::size_t read = 0;
    for (auto it = parent.bundles.rbegin(); it != parent.bundles.rend() && read < k_chain_manifests; ++it) {
        if (it->snapshot_id == parent.snapshot_id)
            continue;
        ++read;
        auto manifest = read_manifest(storage, name, it->snapshot_id);
        if (!manifest) {
            spdlog::info("{}: earlier snapshot {} not read for haves: {}", name, it->snapshot_id,
                         manifest.error().message);
            continue;
        }
        for (const auto& [ref, target] : manifest->refs)
            for (const auto* oid : {&target.oid, &target.peeled})
                if (!oid->empty() && known.insert(*oid).second)
                    out.push_back(*oid);
    }
    return out;
}

SpacedAncestors chain_ancestors(storage::Storage& storage, const Manifest& parent,
                                const std::vector<std::string>& tips, const std::string& object_format,
                                const std::vector<std::string>& wanted) {
    FirstParents parents;
    SpacedAncestors found;
    std::uint64_t budget = 0, scanned = 0;
    for (auto it = parent.bundles.rbegin(); it != parent.bundles.rend(); ++it) {
        if (budget + it->size > k_max_scanned_bytes) {
            spdlog::info("{}: bundle {} ({} bytes) not scanned for older commits: past {} bytes",
                         parent.repository, it->key, it->size, k_max_scanned_bytes);
            continue;
        }
        budget += it->size;
        BundleCommitScan scan(*it, object_format, tips, parents);
        auto s =
            storage.read(it->key, [&scan](std::span<const std::byte> chunk) { return scan.feed(chunk); });
        if (s)
            s = scan.finish();
        scanned += scan.received();
        found = spaced_ancestors(tips, parents);
        if (scan.complete())
            break;
        if (!s) {
            spdlog::info("{}: older commits: stopped scanning the chain: {}", parent.repository,
                         s.error().message);
            break;
        }
        if (found.complete)
            break;
    }
    std::set<std::string> present;
    for (const auto& oid : wanted)
        if (parents.contains(oid) && present.insert(oid).second)
            found.present.push_back(oid);
    // A present tip on a lost tip's first-parent line is a proper ancestor of
    // it (a branch reset back): the ledger can tell that rewrite apart too.
    for (const auto& tip : tips) {
        if (present.empty())
            break;
        std::string at = tip;
        for (std::size_t steps = 0; steps < parents.size(); ++steps) {
            auto it = parents.find(at);
            if (it == parents.end() || it->second.empty())
                break;
            at = it->second;
            if (present.contains(at))
                found.by_tip[tip].insert(at);
        }
    }
    spdlog::info(
        "{}: {} older commits of {} lost tip(s) found in {} bytes of the chain's bundles ({} commits "
        "read); {} wanted tip(s) already there",
        parent.repository, found.commits.size(), tips.size(), scanned, parents.size(), found.present.size());
    return found;
}

} // namespace snapshotter::snapshot
