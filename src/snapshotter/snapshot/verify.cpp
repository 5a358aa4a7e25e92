// The verify action: for each selected snapshot, every bundle of its chain
// exists and matches its size and SHA-256, its header is readable and lists
// the refs the manifest expects; with a drill, the snapshot is restored into
// a scratch directory, fsck'd, and its refs compared with the manifest.
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/leftovers.hpp"
#include "snapshotter/snapshot/lfs_verify.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;

// Problems found in the chain of `manifest`; `checked` remembers bundles
// already verified in this run so a chain shared by many snapshots is read once.
std::vector<std::string> check_bundles(const Context& ctx, const Manifest& manifest,
                                       const std::filesystem::path& scratch, std::set<std::string>& checked) {
    std::vector<std::string> problems;
    for (const auto& bundle : manifest.bundles) {
        if (checked.contains(bundle.key + bundle.sha256))
            continue;
        auto file = scratch / "check.bundle";
        if (auto s = download_bundle(ctx.storage, bundle, file); !s) {
            problems.push_back(s.error().message);
            continue;
        }
        auto heads = ctx.git.bundle_heads(file);
        std::error_code ec;
        std::filesystem::remove(file, ec);
        if (!heads) {
            problems.push_back(
                fmt::format("bundle {} is not readable: {}", bundle.key, heads.error().message));
            continue;
        }
        // A full bundle written by this very snapshot lists every ref of it.
        if (bundle.snapshot_id == manifest.snapshot_id && manifest.kind == SnapshotKind::full) {
            for (const auto& [name, target] : manifest.refs) {
                auto it = heads->find(name);
                if (it == heads->end() || it->second.oid != target.oid)
                    problems.push_back(
                        fmt::format("bundle {} does not hold ref {} at {}", bundle.key, name, target.oid));
            }
        }
        if (problems.empty())
            checked.insert(bundle.key + bundle.sha256);
    }
    return problems;
}

std::vector<std::string> drill(const Context& ctx, const Manifest& manifest,
                               std::chrono::milliseconds timeout) {
    auto scratch = TempDir::create("drill");
    if (!scratch)
        return {scratch.error().message};
    auto repo = scratch->path() / "repo.git";
    if (auto refs =
            materialize(ctx.storage, ctx.git, manifest, repo, scratch->path(), timeout, Preserved::yes);
        !refs)
        return {fmt::format("restore drill: {}", refs.error().message)};
    if (auto s = ctx.git.fsck(repo, timeout); !s)
        return {fmt::format("restore drill: {}", s.error().message)};
    return {};
}

// The leftovers of the checked repositories, reported and never a failure:
// a running job has young ones, and none of them is part of a snapshot.
json leftovers_report(const Context& ctx) {
    auto scan = find_leftovers(ctx.storage, ctx.job.verify.repositories);
    if (!scan)
        return {{"error", redact(scan.error().message)}};
    const auto stale_after = std::chrono::seconds{job::defaults::k_gc_min_age_s};
    auto report = leftovers_summary(scan->items, Clock::now(), stale_after);
    json problems = json::array();
    for (const auto& p : scan->problems)
        problems.push_back(redact(p.message));
    report["problems"] = std::move(problems);
    if (report["stale"].get<std::size_t>() > 0)
        spdlog::warn("{} leftovers ({} bytes) idle for over {} s; run the gc action to remove them",
                     report["stale"].get<std::size_t>(), report["bytes"].get<std::uint64_t>(),
                     stale_after.count());
    return report;
}

} // namespace

Outcome run_verify(const Context& ctx) {
    const auto& spec = ctx.job.verify;
    const auto timeout = std::chrono::milliseconds{std::chrono::seconds{ctx.job.options.timeout_s}};

    // 1. Which repositories and snapshots.
    auto selected = repositories_or_all(ctx.storage, spec.repositories);
    if (!selected)
        return {nullptr, selected.error(), false};
    const std::vector<std::string> names = std::move(*selected);
    auto scratch = TempDir::create("verify");
    if (!scratch)
        return {nullptr, scratch.error(), false};

    json snapshots = json::array();
    std::size_t ok = 0, bad = 0;
    std::vector<std::string> first_problems;
    std::set<std::string> checked;
    LfsVerifier lfs(ctx.storage, spec.drill ? LfsHash::yes : LfsHash::no);
    LfsCheck lfs_total;
    ProgressScope shown(ctx.events, "verify", "repositories", names.size());
    std::size_t done = 0;
    for (const auto& name : names) {
        ctx.events.progress(
            {.done = done++, .total = names.size(), .in_flight = 1, .bytes = 0, .current = name});
        std::vector<std::string> ids;
        if (spec.snapshot == "all") {
            auto listed = list_snapshot_ids(ctx.storage, name);
            if (!listed)
                return {nullptr, listed.error(), false};
            ids = std::move(*listed);
            if (ids.empty()) {
                snapshots.push_back({{"repository", name},
                                     {"snapshot_id", nullptr},
                                     {"ok", false},
                                     {"drill", false},
                                     {"problems", {"no snapshot exists"}}});
                ++bad;
                continue;
            }
        } else {
            ids.push_back(spec.snapshot);
        }
        // 2. Check each snapshot; problems are collected, never thrown.
        for (const auto& id : ids) {
            std::vector<std::string> problems;
            json lfs_entry;
            auto manifest = resolve_snapshot(ctx.storage, name, id);
            std::string resolved_id = id;
            if (!manifest) {
                problems.push_back(manifest.error().message);
            } else {
                resolved_id = manifest->snapshot_id;
                problems = check_bundles(ctx, *manifest, scratch->path(), checked);
                if (problems.empty() && spec.drill)
                    problems = drill(ctx, *manifest, timeout);
                // The Git LFS objects its set names (lfs_verify.hpp).
                if (manifest->lfs)
                    lfs_entry = lfs.check(*manifest).add_to(problems, lfs_total, spec.drill);
            }
            for (auto& p : problems)
                p = redact(p);
            bool good = problems.empty();
            if (!good) {
                spdlog::error("{}@{}: {}", name, resolved_id, fmt::join(problems, "; "));
                if (first_problems.empty())
                    first_problems.push_back(fmt::format("{}@{}: {}", name, resolved_id, problems.front()));
            }
            (good ? ok : bad) += 1;
            snapshots.push_back({{"repository", name},
                                 {"snapshot_id", resolved_id},
                                 {"ok", good},
                                 {"drill", spec.drill && manifest.has_value()},
                                 {"problems", problems}});
            if (!lfs_entry.is_null())
                snapshots.back()["lfs"] = std::move(lfs_entry);
        }
    }
    json result = {{"action", "verify"},
                   {"snapshots", std::move(snapshots)},
                   {"summary", {{"checked", ok + bad}, {"ok", ok}, {"failed", bad}}},
                   {"leftovers", leftovers_report(ctx)}};
    if (lfs_total.objects > 0)
        result["summary"]["lfs"] = {{"objects", lfs_total.objects}, {"bytes", lfs_total.bytes}};
    if (bad > 0)
        return {std::move(result),
                Error::integrity(fmt::format("{} of {} snapshots failed verification; first: {}", bad,
                                             ok + bad, first_problems.empty() ? "" : first_problems.front())),
                false};
    if (ok == 0)
        return {std::move(result), Error::not_found("no snapshot to verify"), false};
    return {std::move(result), std::nullopt, false};
}

} // namespace snapshotter::snapshot
