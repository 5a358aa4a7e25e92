// The prune action: apply the retention policy (retention.hpp) to each
// repository and delete what no kept snapshot needs (prune_plan.hpp).
//
// The order of the steps is what makes a crash at any moment harmless: every
// kept snapshot stays restorable, and a rerun finishes the work.
//  1. Read every manifest and plan.
//  2. Record in prune-pending.json the bundles this run may delete, and the
//     key of every bundle a rebase is about to write, before changing
//     anything: a rerun after a crash deletes them once nothing lists them.
//  3. Rebase, write new then switch: store the new full bundle, then rewrite
//     the kept manifests of that chain to replay it instead of the old
//     prefix, the oldest kept one last. A manifest not yet rewritten still
//     names the old bundles, and nothing has been deleted yet.
//  4. Delete the dropped manifests (those Object Lock retains stay).
//  5. Point latest.json at the newest manifest if it named a deleted one.
//  6. Re-list and re-read every manifest, with its tables and LFS set, in
//     one pass (referenced.hpp; one that cannot be read stops the deletion,
//     and a rerun finishes it), then delete the pending bundles none of them
//     lists: a snapshot committed meanwhile keeps its chain. The same for
//     the tables (tables.hpp) the manifests read at step 1 held: those no
//     manifest holds now go, a delta's bases staying with it (gc takes any a
//     crash leaves); and for the LFS objects and sets only the deleted
//     manifests needed (lfs_gc.hpp).
//     Bundles Object Lock still retains are reported, never hidden behind a
//     delete marker.
//  7. Keep in prune-pending.json only what is left (retained bundles).
// A rebase must not run while a snapshot of the same repository runs: that
// snapshot may have read the old chain before step 3 and commit after step 6.
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/lfs_gc.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/prune_plan.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/snapshot/referenced.hpp"
#include "snapshotter/util/json.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;

struct Loaded {
    Manifest manifest;
    std::uint64_t bytes = 0; // of the manifest object
};

// Every manifest of `name` present now, oldest first, read by the rule of
// referenced.hpp: one gone meanwhile is skipped; one that cannot be read
// stops the prune of this repository, since its chain would be unknown.
Result<std::vector<Loaded>> load_snapshots(storage::Storage& storage, const std::string& name) {
    std::vector<Loaded> out;
    auto read = for_each_manifest(storage, name, [&](Manifest& m, const storage::ObjectInfo& listed) {
        out.push_back({std::move(m), listed.size});
        return Status{};
    });
    if (!read)
        return fail(
            read.error().with_context("prune stops here: a manifest it cannot read may need any bundle"));
    return out;
}

Result<std::set<std::string>> read_pending(storage::Storage& storage, const std::string& name) {
    std::set<std::string> keys;
    auto text = storage.get(layout::prune_pending_key(name));
    if (!text) {
        if (text.error().kind == ErrorKind::NotFound)
            return keys;
        return fail(text.error());
    }
    const auto source = layout::prune_pending_key(name);
    auto doc = parse_json_bounded(*text);
    if (!doc) {
        spdlog::warn("{}: {} is not valid ({}); ignoring it", name, source, doc.error().message);
        return keys;
    }
    try {
        for (const auto& k : doc->at("bundles"))
            keys.insert(k.get<std::string>());
    } catch (const json::exception&) {
        spdlog::warn("{}: {} is not valid; ignoring it", name, source);
        return std::set<std::string>{};
    }
    // Only this repository's own bundles may ever be deleted from this list:
    // a planted or corrupted key stops the prune of this repository.
    for (const auto& k : keys)
        if (auto s = layout::check_within(k, name, layout::Area::bundles, source); !s)
            return fail(s.error());
    return keys;
}

Status write_pending(storage::Storage& storage, const std::string& name, const std::set<std::string>& keys) {
    auto key = layout::prune_pending_key(name);
    if (keys.empty()) {
        std::vector<std::string> one{key};
        return storage.remove(one);
    }
    return storage.put(key, json{{"bundles", keys}}.dump() + "\n", Overwrite::yes);
}

// Whether Object Lock still forbids deleting `key` (HEAD tells; list does not).
Result<bool> is_retained(storage::Storage& storage, const std::string& key) {
    auto info = storage.head(key);
    if (!info)
        return fail(info.error());
    return *info && (*info)->retain_until && *(*info)->retain_until > Clock::now();
}

// What deleting a set of keys did.
struct Deletion {
    std::vector<std::string> deleted;
    std::vector<std::string> retained;
    json failed = json::array();
};

// Delete `keys`, except those Object Lock retains.
Deletion delete_unretained(storage::Storage& storage, const std::vector<std::string>& keys) {
    Deletion d;
    std::vector<std::string> doomed;
    for (const auto& key : keys) {
        auto retained = is_retained(storage, key);
        if (!retained)
            d.failed.push_back({{"key", key}, {"error", redact(retained.error().message)}});
        else if (*retained)
            d.retained.push_back(key);
        else
            doomed.push_back(key);
    }
    if (auto s = storage.remove(doomed); !s) {
        for (const auto& key : doomed)
            d.failed.push_back({{"key", key}, {"error", redact(s.error().message)}});
        return d;
    }
    d.deleted = std::move(doomed);
    return d;
}

json bundles_json(const std::vector<BundleInfo>& bundles) {
    json out = json::array();
    for (const auto& b : bundles)
        out.push_back({{"key", b.key}, {"snapshot_id", b.snapshot_id}, {"size", b.size}});
    return out;
}

// The plan as reported by a dry run and a real one alike.
json plan_json(const PrunePlan& plan, std::size_t total) {
    json keep = json::array();
    for (auto it = plan.kept.rbegin(); it != plan.kept.rend(); ++it)
        keep.push_back({{"snapshot_id", it->first}, {"reasons", it->second}});
    json rebase = json::array();
    for (const auto& step : plan.rebases)
        rebase.push_back(
            {{"at", step.at}, {"replaces", bundles_json(step.prefix)}, {"manifests", step.manifests}});
    return {{"snapshots", total},
            {"keep", std::move(keep)},
            {"drop", plan.drop},
            {"drop_bundles", bundles_json(plan.delete_bundles)},
            {"kept_for_chain", bundles_json(plan.kept_for_chain)},
            {"rebase", std::move(rebase)},
            {"bytes_freed", plan.bytes_freed}};
}

// Build the repository holding every object of `at`'s chain and store one
// full bundle of it under `key`: the manifest's refs, its preserved tips,
// and a ref on every tip any bundle of the chain listed, so that whatever a
// later incremental of the chain assumes is in the new bundle too.
Result<BundleInfo> write_rebased_bundle(const Context& ctx, const Manifest& at, const std::string& key) {
    const auto timeout = std::chrono::milliseconds{std::chrono::seconds{ctx.job.options.timeout_s}};
    auto scratch = TempDir::create("rebase");
    if (!scratch)
        return fail(scratch.error());
    auto repo = scratch->path() / "repo.git";
    if (auto s = ctx.git.init_bare(repo, at.object_format); !s)
        return fail(s.error());
    // A shallow chain replays only into a repository that knows its boundary (as restore does).
    if (auto s = git::write_shallow(repo, at.shallow); !s)
        return fail(s.error());
    auto tips = replay_chain(ctx.storage, ctx.git, at.bundles, repo, scratch->path(), timeout, Tips::collect);
    if (!tips)
        return fail(tips.error());
    git::RefMap keep = at.refs;
    for (const auto& oid : *tips)
        keep["refs/snapshotter/chain/" + oid] = {oid, ""};
    std::vector<std::string> preserved;
    preserved.reserve(at.preserved.size());
    for (const auto& [k, oid] : at.preserved)
        preserved.push_back(oid);
    auto present = ctx.git.object_types(repo, preserved);
    if (!present)
        return fail(present.error());
    for (const auto& [k, oid] : at.preserved)
        if (present->contains(oid))
            keep[preserved_ref_name(k)] = {oid, ""};
    if (auto s = ctx.git.add_refs(repo, keep); !s)
        return fail(s.error());
    auto refs = ctx.git.local_refs(repo);
    if (!refs)
        return fail(refs.error());
    std::vector<std::string> revs;
    for (const auto& [name, target] : *refs)
        revs.push_back(name);
    return store_bundle(ctx.storage, ctx.git, repo, revs, key, at.snapshot_id, timeout);
}

// A bundle an earlier, interrupted rebase already wrote at `at`, found in a
// manifest it switched; nullopt when there is none.
std::optional<BundleInfo> earlier_rebase(const std::vector<Loaded>& loaded, const std::string& at) {
    for (const auto& l : loaded)
        if (!l.manifest.bundles.empty() && l.manifest.bundles.front().snapshot_id == at &&
            l.manifest.bundles.front().key.find(".rebased-") != std::string::npos)
            return l.manifest.bundles.front();
    return std::nullopt;
}

// Step 3: write each new full bundle, then switch the manifests to it.
Result<json> rebase(const Context& ctx, const std::vector<Loaded>& loaded, const PrunePlan& plan,
                    const std::vector<std::string>& keys) {
    std::map<std::string, const Manifest*> by_id;
    for (const auto& l : loaded)
        by_id[l.manifest.snapshot_id] = &l.manifest;
    json done = json::array();
    for (std::size_t i = 0; i < plan.rebases.size(); ++i) {
        const auto& step = plan.rebases[i];
        auto bundle = earlier_rebase(loaded, step.at);
        if (!bundle) {
            auto written = write_rebased_bundle(ctx, *by_id.at(step.at), keys[i]);
            if (!written)
                return fail(written.error().with_context(fmt::format("rebase at {}", step.at)));
            bundle = std::move(*written);
        }
        // The oldest kept snapshot last, so a rerun finds the new bundle above.
        std::vector<std::string> order(step.manifests.begin() + 1, step.manifests.end());
        order.push_back(step.at);
        for (const auto& id : order) {
            Manifest m = *by_id.at(id);
            m.bundles = rebased_chain(m.bundles, step, *bundle);
            // Its table (the chain is in it) first, then the manifest (current version, full table).
            if (auto s = publish_manifest(ctx.storage, m, Overwrite::yes); !s)
                return fail(s.error().with_context(fmt::format("rebase: rewrite manifest {}", id)));
        }
        spdlog::info("{}: rebased {} manifests onto a new full bundle at {} ({} bytes)",
                     by_id.at(step.at)->repository, order.size(), step.at, bundle->size);
        done.push_back({{"at", step.at},
                        {"key", bundle->key},
                        {"size", bundle->size},
                        {"manifests", step.manifests.size()}});
    }
    return done;
}

// Step 5: latest.json must name a manifest that exists.
Status repair_latest(storage::Storage& storage, const std::string& name, const std::set<std::string>& deleted,
                     const std::string& newest) {
    auto pointer = storage.get(layout::latest_key(name));
    if (pointer) {
        auto id = parse_latest(*pointer);
        if (id && !deleted.contains(*id))
            return {};
    } else if (pointer.error().kind != ErrorKind::NotFound) {
        return fail(pointer.error());
    }
    return storage.put(layout::latest_key(name), serialize_latest(newest, layout::manifest_key(name, newest)),
                       Overwrite::yes);
}

// Step 6 for tables: delete the tables the manifests read at step 1 held
// (dropped ones, or rewritten by a rebase) that no manifest present now holds
// (`named`: a delta's bases are held with it, tables.hpp). A failure is only
// logged: gc removes what is left once it is idle.
void delete_unnamed_tables(storage::Storage& storage, const std::string& name,
                           const std::vector<Loaded>& before, const std::set<std::string>& named) {
    std::vector<std::string> unnamed;
    for (const auto& l : before)
        for (const auto& table : l.manifest.table_chain)
            if (!named.contains(table.key) &&
                std::find(unnamed.begin(), unnamed.end(), table.key) == unnamed.end())
                unnamed.push_back(table.key);
    if (unnamed.empty())
        return;
    auto tables = delete_unretained(storage, unnamed);
    spdlog::info("{}: deleted {} tables no manifest names", name, tables.deleted.size());
    for (const auto& f : tables.failed)
        spdlog::warn("{}: table {} not deleted ({}); gc removes it later", name,
                     f.at("key").get<std::string>(), f.at("error").get<std::string>());
}

// Prune one repository; the result entry, or why it failed as a whole.
Result<json> prune_repository(const Context& ctx, const std::string& name) {
    const auto& spec = ctx.job.prune;

    // 1. Read and plan.
    auto loaded = load_snapshots(ctx.storage, name);
    if (!loaded)
        return fail(loaded.error());
    if (loaded->empty())
        return fail(Error::not_found(fmt::format("{}: no snapshot exists", name)));
    std::vector<std::string> ids;
    std::vector<StoredSnapshot> stored;
    for (const auto& l : *loaded) {
        ids.push_back(l.manifest.snapshot_id);
        stored.push_back({l.manifest.snapshot_id, l.manifest.bundles, l.bytes});
    }
    auto plan = plan_prune(stored, apply_retention(ids, spec.policy), spec.rebase ? Rebase::yes : Rebase::no);
    auto pending = read_pending(ctx.storage, name);
    if (!pending)
        return fail(pending.error());
    json entry = plan_json(plan, stored.size());
    entry["name"] = name;
    entry["pending"] = *pending;
    if (ctx.dry_run)
        return entry;

    // 2. Record what this run may delete before changing anything.
    std::set<std::string> candidates = *pending;
    for (const auto& b : plan.delete_bundles)
        candidates.insert(b.key);
    std::vector<std::string> rebase_keys;
    for (const auto& step : plan.rebases) {
        rebase_keys.push_back(layout::rebased_bundle_key(name, step.at, random_hex(3)));
        candidates.insert(rebase_keys.back());
    }
    if (auto s = write_pending(ctx.storage, name, candidates); !s)
        return fail(s.error());

    // 3. Rebase: new bundle, then the manifests that use it.
    auto rebased = rebase(ctx, *loaded, plan, rebase_keys);
    if (!rebased)
        return fail(rebased.error());
    entry["rebased"] = *rebased;

    // 4. Dropped manifests first.
    std::vector<std::string> manifest_keys;
    manifest_keys.reserve(plan.drop.size());
    for (const auto& id : plan.drop)
        manifest_keys.push_back(layout::manifest_key(name, id));
    auto manifests = delete_unretained(ctx.storage, manifest_keys);
    std::set<std::string> deleted_ids;
    for (const auto& key : manifests.deleted)
        deleted_ids.insert(*layout::snapshot_id_of_manifest_key(key));

    // 5. The latest pointer keeps naming an existing manifest.
    if (auto s = repair_latest(ctx.storage, name, deleted_ids, ids.back()); !s)
        return fail(s.error());

    // 6. Bundles, tables and LFS objects that no manifest present now needs:
    //    one pass over them, read after the deletion.
    auto present = read_referenced(ctx.storage, name, LfsSets::read);
    if (!present)
        return fail(present.error());
    std::vector<std::string> doomed;
    for (const auto& key : candidates)
        if (!present->bundles.contains(key))
            doomed.push_back(key);
    auto bundles = delete_unretained(ctx.storage, doomed);
    delete_unnamed_tables(ctx.storage, name, *loaded, present->tables);
    // 6b. Git LFS objects and sets only the deleted snapshots needed (lfs_gc.hpp); what
    //     fails to go is an orphan for gc.
    std::vector<const Manifest*> gone;
    for (const auto& l : *loaded)
        if (deleted_ids.contains(l.manifest.snapshot_id))
            gone.push_back(&l.manifest);
    const auto lfs = prune_lfs(ctx.storage, name, gone, *present);

    // 7. What is left to delete another day: retained or failed bundles.
    std::set<std::string> left(bundles.retained.begin(), bundles.retained.end());
    for (const auto& f : bundles.failed)
        left.insert(f.at("key").get<std::string>());
    if (auto s = write_pending(ctx.storage, name, left); !s)
        return fail(s.error());

    std::uint64_t bytes = 0;
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& l : *loaded) {
        sizes[layout::manifest_key(name, l.manifest.snapshot_id)] = l.bytes;
        for (const auto& b : l.manifest.bundles)
            sizes[b.key] = b.size;
    }
    for (const auto* list : {&manifests.deleted, &bundles.deleted})
        for (const auto& key : *list)
            bytes += sizes.contains(key) ? sizes[key] : 0;
    if (lfs) {
        bytes += lfs->bytes;
        entry["lfs"] = lfs->to_json();
    }
    json failed = manifests.failed;
    failed.insert(failed.end(), bundles.failed.begin(), bundles.failed.end());
    std::vector<std::string> retained = manifests.retained;
    retained.insert(retained.end(), bundles.retained.begin(), bundles.retained.end());
    entry["deleted"] = {{"manifests", std::vector<std::string>(deleted_ids.begin(), deleted_ids.end())},
                        {"bundles", bundles.deleted},
                        {"bytes", bytes}};
    entry["retained"] = retained;
    entry["failed"] = failed;
    spdlog::info("{}: kept {} of {} snapshots, deleted {} manifests and {} bundles ({} bytes){}", name,
                 plan.kept.size(), stored.size(), deleted_ids.size(), bundles.deleted.size(), bytes,
                 retained.empty() ? ""
                                  : fmt::format(", {} objects retained by Object Lock", retained.size()));
    return entry;
}

} // namespace

Outcome run_prune(const Context& ctx) {
    const auto& spec = ctx.job.prune;

    // Which repositories: the payload's, or every one in storage.
    auto selected = repositories_or_all(ctx.storage, spec.repositories);
    if (!selected)
        return {nullptr, selected.error(), false};
    const std::vector<std::string> names = std::move(*selected);

    json repos = json::array();
    std::size_t failed = 0, kept = 0, dropped = 0, retained = 0;
    std::uint64_t bytes_freed = 0, bytes_deleted = 0;
    std::set<std::string> pinned_seen;
    std::optional<Error> first_error;
    ProgressScope shown(ctx.events, "prune", "repositories", names.size());
    std::size_t done = 0;
    for (const auto& name : names) {
        ctx.events.progress(
            {.done = done++, .total = names.size(), .in_flight = 1, .bytes = 0, .current = name});
        auto entry = prune_repository(ctx, name);
        if (!entry) {
            spdlog::error("{}: prune failed: {}", name, entry.error().message);
            if (!first_error)
                first_error = entry.error();
            repos.push_back({{"name", name},
                             {"status", "failed"},
                             {"error", error_kind_name(entry.error().kind)},
                             {"message", redact(entry.error().message)}});
            ++failed;
            continue;
        }
        bool incomplete = entry->contains("failed") && !entry->at("failed").empty();
        (*entry)["status"] = incomplete ? "failed" : "ok";
        failed += incomplete ? 1 : 0;
        kept += entry->at("keep").size();
        dropped += entry->at("drop").size();
        bytes_freed += entry->at("bytes_freed").get<std::uint64_t>();
        if (entry->contains("deleted"))
            bytes_deleted += entry->at("deleted").at("bytes").get<std::uint64_t>();
        if (entry->contains("retained"))
            retained += entry->at("retained").size();
        for (const auto& k : entry->at("keep"))
            pinned_seen.insert(k.at("snapshot_id").get<std::string>());
        repos.push_back(std::move(*entry));
    }
    std::vector<std::string> pinned_missing;
    for (const auto& id : spec.policy.pinned)
        if (!pinned_seen.contains(id))
            pinned_missing.push_back(id);
    json result = {{"action", "prune"},
                   {"dry_run", ctx.dry_run},
                   {"repositories", std::move(repos)},
                   {"pinned_not_found", pinned_missing},
                   {"summary",
                    {{"total", names.size()},
                     {"failed", failed},
                     {"kept", kept},
                     {"dropped", dropped},
                     {"bytes_freed", bytes_freed},
                     {"bytes_deleted", bytes_deleted},
                     {"retained", retained}}}};
    if (names.empty())
        return {std::move(result), Error::not_found("no repository has snapshots"), false};
    if (failed == names.size())
        return {std::move(result),
                first_error ? *first_error
                            : Error::storage("every repository's prune failed to delete objects"),
                false};
    return {std::move(result), std::nullopt, failed > 0};
}

} // namespace snapshotter::snapshot
