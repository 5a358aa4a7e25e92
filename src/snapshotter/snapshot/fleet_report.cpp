#include "snapshotter/snapshot/fleet_report.hpp"

#include <fmt/format.h>

namespace snapshotter::snapshot {

using nlohmann::json;

json repository_entry(const std::string& name, const RepositoryRun& run) {
    json entry = {{"name", name}};
    entry["status"] = status_name(run.status);
    switch (run.status) {
    case RepositoryStatus::ok:
    case RepositoryStatus::unchanged:
        entry.update(run.outcome.detail);
        break;
    case RepositoryStatus::failed:
        entry["error"] = error_kind_name(run.error->kind);
        entry["message"] = run.error->message;
        entry["transient"] = run.transient;
        break;
    case RepositoryStatus::skipped:
        entry.update(run.skip);
        return entry;
    }
    entry["attempts"] = run.attempts;
    entry["duration_ms"] = run.duration_ms;
    return entry;
}

FleetTally tally_fleet(const std::vector<FleetItem>& items, const FleetRun& run) {
    FleetTally t;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& r = run.repositories[i];
        switch (r.status) {
        case RepositoryStatus::ok:
            ++t.ok;
            break;
        case RepositoryStatus::unchanged:
            ++t.unchanged;
            break;
        case RepositoryStatus::skipped:
            ++t.skipped;
            break;
        case RepositoryStatus::failed: {
            ++t.failed;
            const Error& e = *r.error;
            t.mixed_kinds = t.mixed_kinds || (t.first_failure && t.first_failure->kind != e.kind);
            if (!t.first_failure)
                t.first_failure = Error{e.kind, fmt::format("{}: {}", items[i].name, e.message)};
            break;
        }
        }
        t.refs_rewritten += r.outcome.refs_rewritten;
        t.refs_deleted += r.outcome.refs_deleted;
        t.latest_not_advanced += r.outcome.latest_stale ? 1 : 0;
        t.bytes += r.outcome.bytes;
        t.refs_updated += r.outcome.refs_updated;
        add_lfs_totals(t.lfs, r.outcome.lfs);
        t.entries.push_back(repository_entry(items[i].name, r));
    }
    return t;
}

json fleet_summary(const FleetTally& t, std::size_t total, const SourcesTally& sources,
                   std::size_t rerun_skips, long long duration_ms) {
    json summary = {{"total", total},
                    {"ok", t.ok},
                    {"unchanged", t.unchanged},
                    {"failed", t.failed},
                    {"skipped", t.skipped},
                    {"bytes", t.bytes},
                    {"refs_rewritten", t.refs_rewritten},
                    {"refs_deleted", t.refs_deleted},
                    {"latest_not_advanced", t.latest_not_advanced},
                    {"gone", sources.gone},
                    {"sources_failed", sources.failed},
                    {"duration_ms", duration_ms}};
    // Added later, after the fields above: refs the engine could not classify, and LFS totals.
    summary["refs_updated"] = t.refs_updated;
    summary["lfs_objects"] = t.lfs.objects;
    summary["lfs_bytes"] = t.lfs.bytes;
    summary["lfs_objects_uploaded"] = t.lfs.objects_uploaded;
    summary["lfs_bytes_uploaded"] = t.lfs.bytes_uploaded;
    summary["lfs_missing"] = t.lfs.missing;
    // Only when a rerun skipped something: the summary of every other run is unchanged.
    if (rerun_skips > 0)
        summary["skipped_already_committed"] = rerun_skips;
    return summary;
}

FleetVerdict fleet_verdict(const FleetTally& t, std::size_t total, bool interrupted,
                           const std::string& stop_reason, const SourcesTally& sources) {
    FleetVerdict out;
    if (interrupted) {
        out.error = Error::interrupted(fmt::format("{}: {} of {} repositories were not snapshotted",
                                                   stop_reason, t.skipped + t.failed, total));
    } else if (sources.failed > 0 && total == 0) {
        // Every source failed and nothing else was asked for.
        out.error = sources.failed == 1 ? *sources.first_error
                                        : Error{sources.first_error->kind,
                                                fmt::format("all {} sources failed; first: {}",
                                                            sources.failed, sources.first_error->message)};
    } else if (t.failed > 0 && t.ok + t.unchanged + t.skipped == 0 && sources.failed == 0) {
        out.error = t.failed == 1 ? *t.first_failure
                                  : Error{t.mixed_kinds ? ErrorKind::Git : t.first_failure->kind,
                                          fmt::format("all {} repositories failed; first: {}", t.failed,
                                                      t.first_failure->message)};
    } else if (t.failed > 0 || sources.failed > 0) {
        out.partial = true;
    }
    return out;
}

} // namespace snapshotter::snapshot
