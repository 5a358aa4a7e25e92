// The gc action: remove what killed runs left behind (snapshot/leftovers.hpp)
// once it has been idle for gc.min_age_s.
//
// Why an age protects a running job: a job commits a bundle, then (at most
// one repository's snapshot time later) the manifest that lists it. Between
// the two, the bundle looks exactly like an orphan. gc only takes orphans
// idle for min_age_s, so it never takes a bundle whose manifest is still to
// come as long as min_age_s exceeds the longest per-repository snapshot
// time; and just before deleting it re-reads the manifests present then and
// keeps every object one of them needs, so a manifest committed after the
// scan still saves its bundle. Tables (tables.hpp) and LFS objects and sets
// (lfs_gc.hpp) follow the same rules: a snapshot writes its table (again,
// when present) and uploads its LFS objects before its manifest, so what a
// manifest about to come names is never idle for min_age_s. Pending uploads
// of a running job are as young as its slowest upload, the same bound.
//
// Reads: the scan makes one pass over each repository's manifests
// (referenced.hpp: each manifest read once, with its tables and LFS set),
// and the re-check one more for each repository with something to delete.
// A repository whose pass fails keeps all its objects and is reported.
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/leftovers.hpp"
#include "snapshotter/snapshot/referenced.hpp"
#include "snapshotter/util/redact.hpp"

#include <fmt/format.h>
#include <map>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;

// Remove the orphans (bundles, tables, LFS objects and sets) `candidates` of
// repository `name`, keeping any that a manifest present now needs (one
// more pass, read right now). Returns the ones removed.
Result<std::vector<const Leftover*>> remove_orphans(storage::Storage& storage, const std::string& name,
                                                    const std::vector<const Leftover*>& candidates) {
    auto referenced = read_referenced(storage, name, LfsSets::read);
    if (!referenced)
        return fail(referenced.error());
    std::vector<const Leftover*> removed;
    std::vector<std::string> keys;
    for (const auto* item : candidates) {
        if (referenced->contains(item->key)) {
            spdlog::info("{}: {} gained a manifest since the scan; keeping it", name, item->key);
            continue;
        }
        removed.push_back(item);
        keys.push_back(item->key);
    }
    if (auto s = storage.remove(keys); !s)
        return fail(s.error());
    return removed;
}

} // namespace

Outcome run_gc(const Context& ctx) {
    const auto min_age = std::chrono::seconds{ctx.job.gc.min_age_s};
    const auto now = Clock::now();

    // 1. Find every leftover (one pass over each repository's manifests)
    //    and keep the ones idle long enough.
    ProgressScope shown(ctx.events, "gc", "leftovers", 0);
    ctx.events.progress({.done = 0, .total = 0, .in_flight = 0, .bytes = 0, .current = "scanning storage"});
    auto scan = find_leftovers(ctx.storage, {}, Orphans::chains_and_lfs);
    if (!scan)
        return {nullptr, scan.error(), false};
    std::vector<const Leftover*> old_enough;
    std::vector<Leftover> young;
    for (const auto& item : scan->items) {
        if (item.since && age_seconds(item, now) >= min_age.count())
            old_enough.push_back(&item);
        else
            young.push_back(item);
    }

    // 2. Remove them (unless this is a dry run): uploads are aborted; the
    //    orphans of each repository are re-checked against the manifests
    //    present right now.
    std::vector<const Leftover*> removed;
    std::vector<Error> problems = scan->problems;
    if (ctx.dry_run) {
        removed = old_enough;
    } else {
        std::map<std::string, std::vector<const Leftover*>> orphans;
        ctx.events.progress(
            {.done = 0, .total = old_enough.size(), .in_flight = 0, .bytes = 0, .current = "removing"});
        for (const auto* item : old_enough) {
            if (item->kind != Leftover::Kind::pending_upload) {
                orphans[item->repository].push_back(item);
            } else if (auto s = ctx.storage.abort_pending(item->upload); !s) {
                problems.push_back(s.error());
            } else {
                removed.push_back(item);
            }
        }
        for (const auto& [name, candidates] : orphans) {
            auto gone = remove_orphans(ctx.storage, name, candidates);
            if (!gone)
                problems.push_back(gone.error());
            else
                removed.insert(removed.end(), gone->begin(), gone->end());
        }
    }

    // 3. Report what went (or would go) and what stayed.
    json items = json::array();
    std::uint64_t bytes = 0;
    for (const auto* item : removed) {
        bytes += item->size;
        items.push_back(leftover_json(*item, now));
        spdlog::info("{} {} {} ({} bytes)", ctx.dry_run ? "would remove" : "removed", kind_name(item->kind),
                     item->key, item->size);
    }
    json messages = json::array();
    for (const auto& p : problems)
        messages.push_back(redact(p.message));
    json result = {{"action", "gc"},
                   {"dry_run", ctx.dry_run},
                   {"min_age_s", min_age.count()},
                   {"removed", {{"count", removed.size()}, {"bytes", bytes}, {"items", std::move(items)}}},
                   {"kept_young", leftovers_summary(young, now, min_age)},
                   {"problems", std::move(messages)}};
    if (!problems.empty())
        return {std::move(result),
                Error{problems.front().kind, fmt::format("gc could not finish: {} problem(s); first: {}",
                                                         problems.size(), redact(problems.front().message))},
                false};
    return {std::move(result), std::nullopt, false};
}

} // namespace snapshotter::snapshot
