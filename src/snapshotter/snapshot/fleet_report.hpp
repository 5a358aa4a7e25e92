// The tally of a fleet's run and what the job reports: one result entry per
// repository, the summary counts, and how the job as a whole ended. Pure
// functions of the runner's FleetRun (fleet_runner.hpp).
#pragma once

#include "snapshotter/snapshot/fleet_runner.hpp"
#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// What a fleet's repositories add up to.
struct FleetTally {
    std::size_t ok = 0;
    std::size_t unchanged = 0;
    std::size_t failed = 0;
    std::size_t skipped = 0;
    int refs_rewritten = 0;
    int refs_deleted = 0;
    int latest_not_advanced = 0; // committed, but latest.json could not be advanced
    std::uint64_t bytes = 0;
    int refs_updated = 0;               // moved refs the engine could not classify (Ledger::updated)
    LfsTotals lfs;                      // LFS objects and bytes needed, uploaded now, missing
    std::optional<Error> first_failure; // "<name>: <message>" of the first failed repository
    bool mixed_kinds = false;           // the failures are of more than one ErrorKind
    nlohmann::json entries = nlohmann::json::array(); // one result entry per repository, in order
};

// The result entry of repository `name` whose run ended as `run`.
nlohmann::json repository_entry(const std::string& name, const RepositoryRun& run);

// Add up `run`, whose repositories are `items` (same order).
FleetTally tally_fleet(const std::vector<FleetItem>& items, const FleetRun& run);

// What the sources of a job added beside its repositories (snapshot/sources.hpp).
struct SourcesTally {
    std::size_t gone = 0;             // repositories a source no longer lists
    std::size_t failed = 0;           // sources that failed
    std::optional<Error> first_error; // of the first failed source
};

// The result's "summary" object: counts of `tally` out of `total`
// repositories, the sources' counts, the job's duration, and (only when a
// rerun skipped something) skipped_already_committed.
nlohmann::json fleet_summary(const FleetTally& tally, std::size_t total, const SourcesTally& sources,
                             std::size_t rerun_skips, long long duration_ms);

// How the job as a whole ended.
struct FleetVerdict {
    std::optional<Error> error; // the job failed (exit 1): interrupted, every source or repository failed
    bool partial = false;       // some repositories or sources failed, others did not (exit 2)
};

// The verdict on a run of `total` repositories that tallied `tally`;
// `interrupted` and `stop_reason` as the runner reported them.
FleetVerdict fleet_verdict(const FleetTally& tally, std::size_t total, bool interrupted,
                           const std::string& stop_reason, const SourcesTally& sources);

} // namespace snapshotter::snapshot
