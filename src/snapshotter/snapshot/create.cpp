// The snapshot of one repository: list the remote's refs with an engine,
// plan it (snapshot_plan.hpp: unchanged / empty / incremental / full, and how
// every ref moved), let the engine produce what the plan asks for, and
// publish in commit order: bundle, then table and manifest, then the latest pointer.
#include "snapshotter/snapshot/create.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/exactness.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/snapshot/snapshot_plan.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

namespace {

using SteadyClock = std::chrono::steady_clock;

nlohmann::json bundle_json(const BundleInfo& b) {
    return {{"key", b.key}, {"size", b.size}, {"sha256", b.sha256}};
}

// True when every bundle of `previous`'s chain is still in storage.
Result<bool> chain_intact(const Context& ctx, const Manifest& previous) {
    for (const auto& bundle : previous.bundles) {
        auto info = ctx.storage.head(bundle.key);
        if (!info)
            return fail(info.error());
        if (!*info || (*info)->size != bundle.size) {
            spdlog::warn("{}: bundle {} of snapshot {} is missing or truncated; taking a full snapshot",
                         previous.repository, bundle.key, previous.snapshot_id);
            return false;
        }
    }
    return true;
}

// The previous snapshot, and whether its chain is still in storage.
struct Previous {
    std::optional<Manifest> manifest; // nullopt when there is none or it is unreadable
    ChainState chain = ChainState::intact;
};

// The previous snapshot of `name` from `latest` (read here when not given); a
// missing or corrupt one is none, only a storage failure fails.
Result<Previous> read_previous(const Context& ctx, const std::string& name,
                               std::optional<LatestRead> latest) {
    if (!latest)
        latest = read_latest_manifest(ctx.storage, name);
    Previous previous;
    if (*latest) {
        previous.manifest = std::move(**latest);
    } else if (latest->error().kind == ErrorKind::Storage) {
        return fail(latest->error());
    } else {
        spdlog::warn("{}: previous snapshot unreadable ({}); taking a full snapshot", name,
                     latest->error().message);
    }
    if (previous.manifest) {
        auto intact = chain_intact(ctx, *previous.manifest);
        if (!intact)
            return fail(intact.error());
        if (!*intact)
            previous.chain = ChainState::broken;
    }
    return previous;
}

// What an unchanged or empty snapshot records without fetching: the parent's
// chain, or no refs and no bundle.
Produced without_fetch(const SnapshotPlan& plan, const PlanInput& input) {
    Produced produced;
    produced.head = input.listing.head;
    produced.ledger = plan.ledger;
    if (plan.kind == SnapshotKind::unchanged) {
        const auto& parent = *input.previous;
        produced.refs = parent.refs;
        produced.bundles = parent.bundles;
        produced.shallow = parent.shallow;
        produced.walk_anchor = parent.walk_anchor;
        if (parent.lfs) // the same commits need the same LFS objects: nothing is fetched
            produced.lfs = LfsOutcome{.set = parent.lfs, .found = 0};
    }
    return produced;
}

// Record in `manifest` what was produced after `plan`.
void record(Manifest& manifest, const SnapshotPlan& plan, Produced produced) {
    manifest.kind = (produced.replanned ? *produced.replanned : plan).kind;
    manifest.refs = std::move(produced.refs);
    set_head(manifest, produced.head);
    manifest.shallow = std::move(produced.shallow);
    manifest.bundles = std::move(produced.bundles);
    manifest.changes = std::move(produced.ledger.changes);
    manifest.preserved = std::move(produced.ledger.preserved);
    manifest.timings_ms.merge(produced.timings_ms);
    if (produced.lfs)
        manifest.lfs = produced.lfs->set;
    manifest.walk_anchor = std::move(produced.walk_anchor);
}

} // namespace

Result<RepoOutcome> snapshot_repository(const Context& ctx, const job::Repository& repo,
                                        std::optional<LatestRead> latest, const EngineChooser& choose) {
    const auto& options = ctx.job.options;
    const auto start = SteadyClock::now();
    const Deadline deadline(options.timeout_s);
    const auto remote = remote_access(repo, options, ctx.capabilities);
    Manifest manifest;
    const auto now = current_time();
    manifest.snapshot_id = new_snapshot_id(now);
    manifest.repository = repo.name;
    manifest.source_url = redact_url(repo.url);
    manifest.created_at = format_rfc3339(now);
    manifest.job_id = ctx.job.job_id;
    manifest.git_version = ctx.git.version();
    manifest.ref_patterns = repo.refs;

    // 1. List the remote's refs: the only network call for an unchanged
    //    repository. auto falls back to git when the server is not v2.
    auto step = SteadyClock::now();
    const EngineContext ec{ctx, repo, remote, deadline};
    auto chosen = choose(ec);
    if (!chosen)
        return fail(chosen.error());
    auto& engine = *chosen->engine;
    const auto& listing = chosen->listing;
    manifest.engine = std::string(engine.name());
    manifest.engine_fallback = chosen->fallback;
    manifest.timings_ms["list"] = elapsed_ms(step);
    manifest.object_format = listing.object_format;

    // 2. The previous snapshot; a missing, corrupt or broken one means a full snapshot.
    auto previous = read_previous(ctx, repo.name, std::move(latest));
    if (!previous)
        return fail(previous.error());

    // 3. The plan: what kind of snapshot, how every ref moved, what to fetch.
    const PlanInput input{.listing = listing,
                          .previous = previous->manifest,
                          .chain = previous->chain,
                          .patterns = repo.refs,
                          .options = options,
                          .snapshot_id = manifest.snapshot_id};
    const auto plan = snapshot_plan(input);
    if (plan.previous == PreviousRole::shallow_denied)
        spdlog::info("{}: the previous snapshot is shallow and options.allow_shallow is off; taking a full "
                     "snapshot",
                     repo.name);
    manifest.parent = plan.parent;
    const auto status =
        plan.kind == SnapshotKind::unchanged ? RepositoryStatus::unchanged : RepositoryStatus::ok;
    if (ctx.dry_run)
        return RepoOutcome{status,
                           {{"plan", plan.kind},
                            {"refs", listing.selected.size()},
                            {"refs_refused", listing.refused.size()},
                            {"refused_refs", refused_json(listing.refused)},
                            {"engine", manifest.engine},
                            {"snapshot_id", nullptr}}};

    // 4. Write what changed: an engine fetches for full and incremental
    //    snapshots; unchanged and empty ones need no bundle.
    auto produced = needs_fetch(plan.kind) ? engine.produce(plan, input) : without_fetch(plan, input);
    if (!produced)
        return fail(produced.error());
    const int rewritten = produced->ledger.rewritten;
    const int deleted = produced->ledger.deleted;
    const int updated = produced->ledger.updated;
    const std::optional<LfsOutcome> lfs = produced->lfs;
    record(manifest, plan, std::move(*produced));
    manifest.timings_ms["total"] = elapsed_ms(start);
    // The proof of HEAD, for every kind of snapshot: the manifest records the
    // HEAD that was listed (each engine checked it before its bundle was committed).
    if (auto s = check_recorded_head(repo.name, listing.head, head_state(manifest)); !s)
        return fail(s.error());

    // 5. Publish: manifest (never overwritten), then the latest pointer, which
    //    only moves forward (a concurrent job may have published a newer one).
    //    The table of refs and chain is shared with the parent when they are equal (tables.hpp).
    const auto parent_table = previous->manifest ? previous->manifest->table : std::nullopt;
    auto published = publish_manifest(ctx.storage, manifest, Overwrite::no, parent_table);
    if (!published)
        return fail(published.error());
    const auto& manifest_key = *published;
    // The snapshot is committed with its manifest: a pointer that cannot be
    // moved (a store whose conditional writes misbehave, an outage now) is a
    // warning, since readers fall back to the newest manifest.
    std::optional<std::string> latest_warning;
    if (auto moved = advance_latest(ctx.storage, repo.name, manifest.snapshot_id, manifest_key); !moved) {
        latest_warning = fmt::format("latest.json not advanced to {}: {}", manifest.snapshot_id,
                                     redact(moved.error().message));
        spdlog::warn("{}: {}", repo.name, *latest_warning);
    } else if (!*moved) {
        spdlog::info("{}: latest already names a newer snapshot than {}", repo.name, manifest.snapshot_id);
    }

    const bool wrote =
        !manifest.bundles.empty() && manifest.bundles.back().snapshot_id == manifest.snapshot_id;
    nlohmann::json detail = {
        {"snapshot_id", manifest.snapshot_id},
        {"kind", manifest.kind},
        {"engine", manifest.engine},
        {"engine_fallback", manifest.engine_fallback ? nlohmann::json(*manifest.engine_fallback) : nullptr},
        {"refs", manifest.refs.size()},
        {"refs_refused", listing.refused.size()},
        {"refused_refs", refused_json(listing.refused)},
        {"refs_rewritten", rewritten},
        {"refs_deleted", deleted},
        {"refs_updated", updated},
        {"bundle", wrote ? bundle_json(manifest.bundles.back()) : nlohmann::json(nullptr)}};
    spdlog::info("{}: {} snapshot {} ({} refs, {} engine)", repo.name, to_string(manifest.kind),
                 manifest.snapshot_id, manifest.refs.size(), manifest.engine);
    if (latest_warning)
        detail["warnings"] = nlohmann::json::array({*latest_warning});
    if (lfs) { // only for repositories whose LFS step ran, so other results stay as they were
        detail["lfs"] = lfs_outcome_json(*lfs);
        for (const auto& w : lfs->warnings)
            detail["warnings"].push_back(w);
    }
    return RepoOutcome{status,
                       std::move(detail),
                       wrote ? manifest.bundles.back().size : 0,
                       rewritten,
                       deleted,
                       latest_warning.has_value(),
                       updated,
                       lfs ? lfs_totals(*lfs) : LfsTotals{}};
}

} // namespace snapshotter::snapshot
