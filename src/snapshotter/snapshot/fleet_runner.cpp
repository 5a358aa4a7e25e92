#include "snapshotter/snapshot/fleet_runner.hpp"

#include "snapshotter/util/backoff.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/stop.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <new>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <thread>

namespace snapshotter::snapshot {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds k_backoff_cap{30'000};

// At most `cap` repositories of one host in flight.
class HostLimiter {
  public:
    explicit HostLimiter(int cap) : m_cap(cap) {}
    void acquire(const std::string& host) {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_in_flight[host] < m_cap; });
        ++m_in_flight[host];
    }
    void release(const std::string& host) {
        {
            std::lock_guard lock(m_mutex);
            --m_in_flight[host];
        }
        m_cv.notify_all();
    }

  private:
    int m_cap;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::map<std::string, int> m_in_flight;
};

// Counters shared by the workers, the watchdog and the progress line.
constexpr std::chrono::milliseconds k_worker_stagger{5};

struct FleetState {
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::size_t> rerun_skips{0}; // repositories FleetWork::skip() skipped
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<bool> no_new_work{false};
    std::atomic<bool> finished{false};
    std::string stop_reason; // written once before no_new_work is set
    std::mutex stop_mutex;
    std::condition_variable finished_cv; // wakes the watchdog at once when the workers are done

    void finish() {
        {
            std::lock_guard lock(stop_mutex);
            finished.store(true);
        }
        finished_cv.notify_all();
    }

    // Sleep `tick` unless the workers finish first; returns whether they did.
    bool wait_finished(std::chrono::milliseconds tick) {
        std::unique_lock lock(stop_mutex);
        return finished_cv.wait_for(lock, tick, [&] { return finished.load(); });
    }

    void stop(const std::string& reason) {
        std::lock_guard lock(stop_mutex);
        if (!no_new_work.load()) {
            stop_reason = reason;
            no_new_work.store(true);
        }
    }
};

// The process-wide hooks where `options` leaves them unset.
RunnerOptions with_default_hooks(RunnerOptions options) {
    if (!options.stop_requested)
        options.stop_requested = [] { return snapshotter::stop_requested(); };
    if (!options.abort_running)
        options.abort_running = [] { abort_all_processes(); };
    if (!options.aborted)
        options.aborted = [] { return processes_aborted(); };
    return options;
}

// Where the fleet stands, for the progress line.
Progress progress_of(const FleetState& state, std::size_t total) {
    return {.done = state.done.load(),
            .total = total,
            .in_flight = state.in_flight.load(),
            .bytes = state.bytes.load(),
            .current = {}};
}

// Sleep `duration` unless the job is told to stop first.
void interruptible_sleep(std::chrono::milliseconds duration, const FleetState& state,
                         const RunnerOptions& options) {
    auto end = SteadyClock::now() + duration;
    while (SteadyClock::now() < end && !state.no_new_work.load() && !options.stop_requested())
        std::this_thread::sleep_for(std::min(std::chrono::milliseconds{50},
                                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 end - SteadyClock::now() + std::chrono::milliseconds{1})));
}

// One attempt, with running out of memory (a hostile server, a repository
// too large for the machine) a failure of that repository, never the end of
// the process and of every other repository of the job.
Result<RepoOutcome> one_attempt(FleetWork& work, std::size_t index, int attempt) {
    try {
        return work.attempt(index, attempt);
    } catch (const std::bad_alloc&) {
        return fail(Error::internal("out of memory (std::bad_alloc); this repository was abandoned"));
    } catch (const std::length_error& e) {
        return fail(
            Error::internal(fmt::format("out of memory ({}); this repository was abandoned", e.what())));
    }
}

// Run one repository with retries of transient failures.
RepositoryRun run_one(const FleetItem& item, std::size_t index, FleetWork& work, FleetState& state,
                      const RunnerOptions& options) {
    const auto start = SteadyClock::now();
    RepositoryRun run;
    for (;;) {
        ++run.attempts;
        auto outcome = one_attempt(work, index, run.attempts);
        if (outcome) {
            run.status = outcome->status;
            run.outcome = *outcome;
            break;
        }
        const auto& e = outcome.error();
        bool transient = e.kind == ErrorKind::Git && e.transient();
        if (transient && run.attempts <= options.retries && !state.no_new_work.load() &&
            !options.stop_requested()) {
            // Exponential backoff with full jitter, as the AWS SDKs do.
            auto wait = backoff_delay(run.attempts, options.backoff_base, k_backoff_cap);
            spdlog::warn("{}: transient failure (attempt {} of {}), retrying in {} ms: {}", item.name,
                         run.attempts, options.retries + 1, wait.count(), e.message);
            interruptible_sleep(wait, state, options);
            continue;
        }
        spdlog::error("{}: {}", item.name, e.message);
        run.status = RepositoryStatus::failed;
        run.transient = transient;
        run.error = Error{e.kind, redact(e.message), e.cause};
        break;
    }
    run.duration_ms = elapsed_ms(start);
    return run;
}

} // namespace

FleetRun run_fleet(const std::vector<FleetItem>& items, FleetWork& work, const RunnerOptions& given,
                   Events& events) {
    const RunnerOptions options = with_default_hooks(given);
    const auto start = SteadyClock::now();
    const std::size_t total = items.size();
    std::vector<std::optional<RepositoryRun>> runs(total);

    // Workers take repositories in order; a per-host cap keeps one server
    // from being flooded; a watchdog enforces the deadline and SIGTERM grace.
    FleetState state;
    HostLimiter hosts(options.max_per_host);
    // Workers record the stop themselves too: the watchdog only looks every
    // tick and may never see a signal that lands as the last worker exits.
    auto stopping = [&] {
        if (options.stop_requested())
            state.stop("the job was interrupted");
        return state.no_new_work.load();
    };
    auto worker = [&] {
        for (;;) {
            if (stopping())
                return;
            std::size_t i = state.next.fetch_add(1);
            if (i >= total)
                return;
            if (auto skip = work.skip(i)) {
                runs[i] = RepositoryRun{.skip = std::move(*skip)};
                state.rerun_skips.fetch_add(1);
                state.done.fetch_add(1);
                continue;
            }
            const auto& host = items[i].host;
            hosts.acquire(host);
            // The wait for a slot of this host may outlast a SIGTERM or the
            // deadline: start no new repository then (it stays "skipped").
            if (stopping()) {
                hosts.release(host);
                return;
            }
            state.in_flight.fetch_add(1);
            runs[i] = run_one(items[i], i, work, state, options);
            state.bytes.fetch_add(runs[i]->outcome.bytes);
            state.in_flight.fetch_sub(1);
            hosts.release(host);
            state.done.fetch_add(1);
        }
    };
    std::thread watchdog([&] {
        std::optional<SteadyClock::time_point> stop_seen;
        while (!state.wait_finished(options.tick)) {
            auto now = SteadyClock::now();
            if (options.deadline.count() > 0 && now - start > options.deadline && !options.aborted()) {
                spdlog::error("job deadline of {} s reached; stopping",
                              std::chrono::duration_cast<std::chrono::seconds>(options.deadline).count());
                state.stop("the job deadline was reached");
                options.abort_running();
            }
            if (options.stop_requested() && !stop_seen) {
                stop_seen = now;
                state.stop("the job was interrupted");
                spdlog::warn("stop requested: no new repositories; running ones get {} s",
                             std::chrono::duration_cast<std::chrono::seconds>(options.grace).count());
            }
            if (stop_seen && now - *stop_seen > options.grace && !options.aborted()) {
                spdlog::warn("grace period over; aborting running repositories");
                options.abort_running();
            }
            events.progress(progress_of(state, total));
        }
        events.progress(progress_of(state, total));
    });
    std::vector<std::thread> workers;
    int threads =
        static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.concurrency), total));
    for (int t = 0; t < threads; ++t) {
        // Workers start a few ms apart: a burst of connections all at once
        // overflows small accept backlogs (git daemon listens with 5; sshd's
        // MaxStartups drops at random), and a dropped SYN costs a 1 s retry.
        if (t > 0)
            std::this_thread::sleep_for(k_worker_stagger);
        workers.emplace_back(worker);
    }
    for (auto& w : workers)
        w.join();
    state.finish();
    watchdog.join();

    // Repositories never started are "skipped" with the reason.
    FleetRun out;
    out.interrupted = state.no_new_work.load();
    out.stop_reason = state.stop_reason;
    out.skipped_by_work = state.rerun_skips.load();
    out.repositories.reserve(total);
    for (auto& run : runs)
        out.repositories.push_back(run ? std::move(*run)
                                       : RepositoryRun{.skip = {{"reason", state.stop_reason}}});
    return out;
}

} // namespace snapshotter::snapshot
