// Running the repositories of a fleet: a worker pool that takes them in
// order, at most `max_per_host` of one host at a time, retries of transient
// failures with backoff, and a watchdog that enforces the job deadline and
// the grace period after SIGTERM and reports progress. What each repository
// is and what is done with it belongs to the caller (FleetWork): the runner
// knows nothing of git or storage, so unit tests drive it with a fake.
#pragma once

#include "snapshotter/snapshot/create.hpp"
#include "snapshotter/snapshot/events.hpp"
#include "snapshotter/snapshot/status.hpp"
#include "snapshotter/util/error.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// One repository of a fleet as the runner sees it.
struct FleetItem {
    std::string name; // for logs
    std::string host; // the per-host cap counts repositories by this key
};

// What the runner does with each repository; called from worker threads,
// for one index by one worker at a time.
class FleetWork {
  public:
    virtual ~FleetWork() = default;
    // Before the repository's host slot is taken: the fields of its
    // "skipped" entry (a reason) to skip it, or nothing to run it.
    virtual std::optional<nlohmann::json> skip(std::size_t index) = 0;
    // One attempt at the repository; `attempt` counts from 1.
    virtual Result<RepoOutcome> attempt(std::size_t index, int attempt) = 0;
};

// How the runner runs a fleet.
struct RunnerOptions {
    int concurrency = 1;                         // workers
    int max_per_host = 1;                        // repositories of one host in flight at most
    int retries = 0;                             // extra attempts after a transient Git failure
    std::chrono::milliseconds deadline{0};       // for the whole run (0: none); then running ones are aborted
    std::chrono::milliseconds grace{0};          // after a stop request, before running ones are aborted
    std::chrono::milliseconds backoff_base{500}; // retry n waits up to base * 2^n (full jitter), 30 s at most
    std::chrono::milliseconds tick{100};         // how often the watchdog looks and reports progress
    // The process-wide stop flag and abort of running children (util/stop.hpp,
    // util/process.hpp) by default; unit tests give their own.
    std::function<bool()> stop_requested;
    std::function<void()> abort_running;
    std::function<bool()> aborted;
};

// How one repository's run ended.
struct RepositoryRun {
    RepositoryStatus status = RepositoryStatus::skipped;
    nlohmann::json skip;        // skipped: the entry's fields (its reason)
    RepoOutcome outcome;        // ok, unchanged: what the last attempt produced
    std::optional<Error> error; // failed: the last attempt's error, message redacted
    bool transient = false;     // failed: that error was transient (retries ran out, or the job stopped)
    int attempts = 0;           // attempts made (0 when skipped)
    long long duration_ms = 0;  // from the first attempt to the end of the last
};

// What a run of the fleet did.
struct FleetRun {
    std::vector<RepositoryRun> repositories; // one per item, in the items' order
    bool interrupted = false;                // it stopped taking repositories (deadline, signal)
    std::string stop_reason;                 // why, when interrupted
    std::size_t skipped_by_work = 0;         // repositories FleetWork::skip() skipped
};

// Run `work` over `items` as `options` say, reporting progress to `events`.
// Repositories never started (the run stopped first) are skipped with the
// stop reason. Running out of memory in one attempt fails that repository only.
FleetRun run_fleet(const std::vector<FleetItem>& items, FleetWork& work, const RunnerOptions& options,
                   Events& events);

} // namespace snapshotter::snapshot
