// What a running action tells whoever presents it: how far it is, and how
// the job ended. The actions call these; the CLI decides what a person or a
// log collector sees (a progress line on a terminal, CloudWatch EMF metrics
// on stderr, or nothing): no action formats any of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace snapshotter::snapshot {

// Where a long action stands.
struct Progress {
    std::size_t done = 0;      // items finished (ok, failed or skipped)
    std::size_t total = 0;     // items in all
    std::size_t in_flight = 0; // items being worked on now
    std::uint64_t bytes = 0;   // bytes written or read so far, when the action counts them
    std::string current;       // the item being worked on, when there is one at a time
};

// How a job ended, for its metrics.
struct JobEnd {
    std::string_view action;       // "snapshot"
    std::string_view job_id;       // the job's id
    const nlohmann::json& summary; // the result's "summary" object
    long long duration_ms = 0;     // the job's wall time so far
};

// Receives an action's events; every method may be called from any thread
// (the fleet's watchdog, a worker). The default methods do nothing.
class Events {
  public:
    virtual ~Events() = default;
    // Action `action` starts working through `total` items named `unit`
    // ("repositories", "snapshots", "leftovers").
    virtual void begin(std::string_view action, std::string_view unit, std::size_t total);
    // Where it stands now; called often (every 100 ms, or per item).
    virtual void progress(const Progress& progress);
    // The work is over (called before the result is returned).
    virtual void end();
    // The job is over and its report written (never on a dry run).
    virtual void job_end(const JobEnd& end);
};

// An Events that ignores everything (the default of Context).
Events& no_events();

// begin() now, end() when the scope is left, whichever way.
class ProgressScope {
  public:
    ProgressScope(Events& events, std::string_view action, std::string_view unit, std::size_t total)
        : m_events(events) {
        m_events.begin(action, unit, total);
    }
    ~ProgressScope() { m_events.end(); }
    ProgressScope(const ProgressScope&) = delete;
    ProgressScope& operator=(const ProgressScope&) = delete;

  private:
    Events& m_events;
};

} // namespace snapshotter::snapshot
