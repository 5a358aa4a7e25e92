// The actions of a job, each a list of named steps: snapshot, restore,
// verify, list, merge_reports, gc. They read the validated job, talk to storage and git, and
// return the JSON result the CLI prints.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/events.hpp"
#include "snapshotter/storage/storage.hpp"

#include <nlohmann/json.hpp>
#include <optional>

namespace snapshotter::git {
class CapabilityMemo; // git/protocol.hpp
} // namespace snapshotter::git

namespace snapshotter::snapshot {

// What every action works with.
struct Context {
    const job::Job& job;
    storage::Storage& storage;
    const git::GitApi& git;
    bool dry_run = false;
    Events& events = no_events(); // progress and metrics go here
    // Smart-HTTP capabilities the job's repositories share (git/protocol.hpp,
    // CapabilityMemo); run_snapshot() sets one for its repositories; null: none.
    git::CapabilityMemo* capabilities = nullptr;
};

// The outcome of an action: its result object, and how it failed if it did.
struct Outcome {
    nlohmann::json result;      // printed under "result" (also on failure when not null)
    std::optional<Error> error; // set when the action failed as a whole (exit 1)
    bool partial = false;       // some repositories failed, others did not (exit 2)
};

// Snapshot every repository of the job (or, with dry_run, report the plan
// and write nothing).
Outcome run_snapshot(const Context& ctx);
// Restore one snapshot into a new bare repository.
Outcome run_restore(const Context& ctx);
// Check stored snapshots: checksums, bundle readability, optionally a drill.
Outcome run_verify(const Context& ctx);
// List snapshots, newest first.
Outcome run_list(const Context& ctx);
// Apply the retention policy of the job's prune section and delete what no
// kept snapshot needs (with dry_run: report the plan, change nothing).
Outcome run_prune(const Context& ctx);
// Merge the shard reports of a sharded job into jobs/<job-id>.json.
Outcome run_merge_reports(const Context& ctx);
// Remove leftovers (snapshot/leftovers.hpp) idle for at least gc.min_age_s
// (with dry_run: list them and remove nothing).
Outcome run_gc(const Context& ctx);

} // namespace snapshotter::snapshot
