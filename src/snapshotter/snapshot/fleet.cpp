// The snapshot action over a whole fleet: this shard's repositories, a worker
// pool with a cap per host, retries of transient failures, a job deadline,
// graceful stop on SIGTERM, live progress, then the job report and metrics.
#include "snapshotter/snapshot/fleet.hpp"

#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/create.hpp"
#include "snapshotter/snapshot/sources.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/stop.hpp"
#include "snapshotter/util/time.hpp"

#include <atomic>
#include <condition_variable>
#include <fmt/format.h>
#include <mutex>
#include <new>
#include <random>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <thread>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

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
    std::atomic<std::size_t> rerun_skips{0}; // repositories this job_id already committed
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

// Where the fleet stands, for the progress line.
Progress progress_of(const FleetState& state, std::size_t total) {
    return {.done = state.done.load(),
            .total = total,
            .in_flight = state.in_flight.load(),
            .bytes = state.bytes.load(),
            .current = {}};
}

// Sleep `duration` unless the job is told to stop first.
void interruptible_sleep(std::chrono::milliseconds duration, const FleetState& state) {
    auto end = SteadyClock::now() + duration;
    while (SteadyClock::now() < end && !state.no_new_work.load() && !stop_requested())
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
}

// snapshot_repository(), with running out of memory (a hostile server, a
// repository too large for the machine) a failure of that repository, never
// the end of the process and of every other repository of the job.
Result<RepoOutcome> snapshot_one_attempt(const Context& ctx, const job::Repository& repo,
                                         std::optional<LatestRead> latest) {
    try {
        return snapshot_repository(ctx, repo, std::move(latest));
    } catch (const std::bad_alloc&) {
        return fail(Error::internal("out of memory (std::bad_alloc); this repository was abandoned"));
    } catch (const std::length_error& e) {
        return fail(
            Error::internal(fmt::format("out of memory ({}); this repository was abandoned", e.what())));
    }
}

// Snapshot one repository with retries of transient failures.
json run_one(const Context& ctx, const job::Repository& repo, LatestRead latest, FleetState& state,
             RepoOutcome& outcome_out, std::optional<Error>& error_out) {
    const auto start = SteadyClock::now();
    json entry = {{"name", repo.name}};
    int attempts = 0;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (;;) {
        ++attempts;
        // The first attempt uses the worker's read of the latest snapshot; a
        // retry reads it again (another job may have committed meanwhile).
        // NOLINTNEXTLINE(bugprone-use-after-move): moved on the first attempt only
        auto outcome = attempts == 1 ? snapshot_one_attempt(ctx, repo, std::move(latest))
                                     : snapshot_one_attempt(ctx, repo, std::nullopt);
        if (outcome) {
            entry["status"] = outcome->status;
            entry.update(outcome->detail);
            outcome_out = *outcome;
            break;
        }
        const auto& e = outcome.error();
        bool transient = e.kind == ErrorKind::Git && e.transient();
        if (transient && attempts <= ctx.job.options.retries && !state.no_new_work.load() &&
            !stop_requested()) {
            // Exponential backoff with full jitter, as the AWS SDKs do.
            auto cap = std::min<long long>(30'000, 500LL << std::min(attempts, 10));
            std::uniform_int_distribution<long long> jitter(0, cap);
            auto wait = std::chrono::milliseconds{jitter(rng)};
            spdlog::warn("{}: transient failure (attempt {} of {}), retrying in {} ms: {}", repo.name,
                         attempts, ctx.job.options.retries + 1, wait.count(), e.message);
            interruptible_sleep(wait, state);
            continue;
        }
        spdlog::error("{}: {}", repo.name, e.message);
        entry["status"] = "failed";
        entry["error"] = error_kind_name(e.kind);
        entry["message"] = redact(e.message);
        entry["transient"] = transient;
        error_out = Error{e.kind, redact(e.message)};
        break;
    }
    entry["attempts"] = attempts;
    entry["duration_ms"] = elapsed_ms(start);
    return entry;
}

constexpr JobMetric k_job_metrics[] = {
    {"RepositoriesOk", "Count", "ok"},
    {"RepositoriesUnchanged", "Count", "unchanged"},
    {"RepositoriesFailed", "Count", "failed"},
    {"RepositoriesSkipped", "Count", "skipped"},
    {"RepositoriesGone", "Count", "gone"},
    {"SourcesFailed", "Count", "sources_failed"},
    {"RefsRewritten", "Count", "refs_rewritten"},
    {"RefsDeleted", "Count", "refs_deleted"},
    {"LatestNotAdvanced", "Count", "latest_not_advanced"},
    {"BytesWritten", "Bytes", "bytes"},
    {"DurationSeconds", "Seconds", ""},
};

void emit_metrics(const Context& ctx, const json& summary, long long duration_ms) {
    if (!spdlog::default_logger()->should_log(spdlog::level::info))
        return;
    json metrics = json::array();
    for (const auto& m : k_job_metrics)
        metrics.push_back({{"Name", m.name}, {"Unit", m.unit}});
    json emf = {
        {"_aws",
         {{"Timestamp",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count()},
          {"CloudWatchMetrics",
           {{{"Namespace", k_metrics_namespace},
             {"Dimensions", {json::array({k_metrics_dimension})}},
             {"Metrics", metrics}}}}}},
        // Also a well-formed log line of ours: ts, level, msg.
        {"ts", format_rfc3339(Clock::now())},
        {"level", "info"},
        {"msg", "job metrics (CloudWatch embedded metric format)"},
        {std::string(k_metrics_dimension), "snapshot"},
        {"job_id", ctx.job.job_id}};
    for (const auto& m : k_job_metrics)
        emf[std::string(m.name)] = m.summary_field.empty() ? json(static_cast<double>(duration_ms) / 1000.0)
                                                           : summary.at(std::string(m.summary_field));
    ctx.events.metrics(emf);
}

} // namespace

std::span<const JobMetric> job_metrics() {
    return k_job_metrics;
}

std::uint64_t stable_hash(std::string_view name) {
    std::uint64_t h = 1469598103934665603ULL; // FNV-1a 64
    for (unsigned char c : name) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

int shard_of(std::string_view name, int count) {
    // Jump consistent hash (Lamping & Veach): changing the shard count moves
    // only the share of repositories that must move.
    std::uint64_t key = stable_hash(name);
    long long b = -1, j = 0;
    while (j < count) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = static_cast<long long>(static_cast<double>(b + 1) *
                                   (static_cast<double>(1LL << 31) / static_cast<double>((key >> 33) + 1)));
    }
    return static_cast<int>(b);
}

std::string report_key(const std::string& job_id, const std::optional<job::Shard>& shard) {
    if (shard)
        return fmt::format("jobs/{}/shard-{:05}-of-{:05}.json", job_id, shard->index, shard->count);
    return fmt::format("jobs/{}.json", job_id);
}

Outcome run_snapshot(const Context& ctx) {
    const auto& options = ctx.job.options;
    const auto start = SteadyClock::now();
    const std::string started_at = format_rfc3339(Clock::now());

    // 1. Storage must be usable before any repository is touched.
    if (auto s = ctx.storage.check(); !s)
        return {nullptr, s.error(), false};

    // 2. The sources expanded into repositories (after the payload's own),
    //    then this shard's repositories, in that order.
    auto expanded = expand_sources(ctx);
    const auto& all = expanded.repositories;
    std::vector<const job::Repository*> repos;
    for (const auto& r : all)
        if (!options.shard || shard_of(r.name, options.shard->count) == options.shard->index)
            repos.push_back(&r);
    const std::size_t total = repos.size();
    std::vector<json> entries(total);
    std::vector<RepoOutcome> outcomes(total);
    std::vector<std::optional<Error>> errors(total);

    // 3. Workers take repositories in order; a per-host cap keeps one server
    //    from being flooded; a watchdog enforces the deadline and SIGTERM grace.
    FleetState state;
    HostLimiter hosts(options.max_per_host);
    // Workers record the stop themselves too: the watchdog only looks every
    // 100 ms and may never see a signal that lands as the last worker exits.
    auto stopping = [&] {
        if (stop_requested())
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
            const auto& repo = *repos[i];
            // A rerun of this job skips what it already committed (issue: idempotent reruns).
            LatestRead latest = read_latest_manifest(ctx.storage, repo.name);
            if (!ctx.dry_run && latest && *latest && (*latest)->job_id == ctx.job.job_id) {
                entries[i] = {{"name", repo.name},
                              {"status", "skipped"},
                              {"reason", "already snapshotted by this job"},
                              {"snapshot_id", (*latest)->snapshot_id}};
                state.rerun_skips.fetch_add(1);
                state.done.fetch_add(1);
                continue;
            }
            auto host = host_key(repo.parsed);
            hosts.acquire(host);
            // The wait for a slot of this host may outlast a SIGTERM or the
            // deadline: start no new repository then (it stays "skipped").
            if (stopping()) {
                hosts.release(host);
                return;
            }
            state.in_flight.fetch_add(1);
            entries[i] = run_one(ctx, repo, std::move(latest), state, outcomes[i], errors[i]);
            state.bytes.fetch_add(outcomes[i].bytes);
            state.in_flight.fetch_sub(1);
            hosts.release(host);
            state.done.fetch_add(1);
        }
    };
    ctx.events.begin("snapshot", "repositories", total);
    std::thread watchdog([&] {
        std::optional<SteadyClock::time_point> stop_seen;
        while (!state.wait_finished(std::chrono::milliseconds{100})) {
            auto now = SteadyClock::now();
            if (options.deadline_s > 0 && now - start > std::chrono::seconds{options.deadline_s} &&
                !processes_aborted()) {
                spdlog::error("job deadline of {} s reached; stopping", options.deadline_s);
                state.stop("the job deadline was reached");
                abort_all_processes();
            }
            if (stop_requested() && !stop_seen) {
                stop_seen = now;
                state.stop("the job was interrupted");
                spdlog::warn("stop requested: no new repositories; running ones get {} s", options.grace_s);
            }
            if (stop_seen && now - *stop_seen > std::chrono::seconds{options.grace_s} &&
                !processes_aborted()) {
                spdlog::warn("grace period over; aborting running repositories");
                abort_all_processes();
            }
            ctx.events.progress(progress_of(state, total));
        }
        ctx.events.progress(progress_of(state, total));
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
    ctx.events.end();

    // 4. Tally; repositories never started are "skipped" with the reason.
    std::size_t ok = 0, unchanged = 0, failed = 0, skipped = 0;
    int rewritten = 0, deleted = 0, latest_stale = 0;
    std::uint64_t bytes = 0;
    std::optional<Error> first_failure;
    bool mixed_kinds = false;
    json list = json::array();
    for (std::size_t i = 0; i < total; ++i) {
        auto& entry = entries[i];
        if (entry.is_null())
            entry = {{"name", repos[i]->name}, {"status", "skipped"}, {"reason", state.stop_reason}};
        auto status = entry.at("status").get<std::string>();
        if (status == "ok")
            ++ok;
        else if (status == "unchanged")
            ++unchanged;
        else if (status == "skipped")
            ++skipped;
        else {
            ++failed;
            const Error& e = *errors[i];
            mixed_kinds = mixed_kinds || (first_failure && first_failure->kind != e.kind);
            if (!first_failure)
                first_failure = Error{e.kind, fmt::format("{}: {}", repos[i]->name, e.message)};
        }
        rewritten += outcomes[i].refs_rewritten;
        deleted += outcomes[i].refs_deleted;
        latest_stale += outcomes[i].latest_stale ? 1 : 0;
        bytes += outcomes[i].bytes;
        list.push_back(std::move(entry));
    }
    if (std::size_t rerun = state.rerun_skips.load(); rerun > 0)
        spdlog::warn(
            "{} of {} repositories skipped: job {} already snapshotted them. Reusing a job_id resumes an "
            "interrupted run; leave job_id out (or give a new one) to take new snapshots",
            rerun, total, ctx.job.job_id);
    const bool interrupted = state.no_new_work.load();
    json summary = {{"total", total},
                    {"ok", ok},
                    {"unchanged", unchanged},
                    {"failed", failed},
                    {"skipped", skipped},
                    {"bytes", bytes},
                    {"refs_rewritten", rewritten},
                    {"refs_deleted", deleted},
                    {"latest_not_advanced", latest_stale},
                    {"gone", expanded.gone.size()},
                    {"sources_failed", expanded.failed},
                    {"duration_ms", elapsed_ms(start)}};
    // Only when a rerun skipped something: the summary of every other run is unchanged.
    if (std::size_t rerun = state.rerun_skips.load(); rerun > 0)
        summary["skipped_already_committed"] = rerun;
    json result = {{"action", "snapshot"},
                   {"job_id", ctx.job.job_id},
                   {"dry_run", ctx.dry_run},
                   {"repositories", std::move(list)},
                   {"summary", summary}};
    if (!ctx.job.sources.empty()) {
        result["sources"] = std::move(expanded.report);
        result["gone"] = expanded.gone;
    }
    if (options.shard)
        result["shard"] = {
            {"count", options.shard->count}, {"index", options.shard->index}, {"of_total", all.size()}};

    // 5. The job report in storage, then metrics on stderr.
    if (!ctx.dry_run) {
        json report = result;
        report["started_at"] = started_at;
        report["finished_at"] = format_rfc3339(Clock::now());
        report["interrupted"] = interrupted;
        auto key = report_key(ctx.job.job_id, options.shard);
        if (auto s = ctx.storage.put(key, report.dump(2) + "\n", Overwrite::yes); !s)
            spdlog::error("cannot write the job report {}: {}", key, s.error().message);
        else
            result["report"] = key;
        emit_metrics(ctx, summary, elapsed_ms(start));
    }

    Outcome out{std::move(result), std::nullopt, false};
    if (interrupted) {
        out.error = Error::interrupted(fmt::format("{}: {} of {} repositories were not snapshotted",
                                                   state.stop_reason, skipped + failed, total));
    } else if (expanded.failed > 0 && total == 0) {
        // Every source failed and nothing else was asked for.
        out.error = expanded.failed == 1 ? *expanded.first_error
                                         : Error{expanded.first_error->kind,
                                                 fmt::format("all {} sources failed; first: {}",
                                                             expanded.failed, expanded.first_error->message)};
    } else if (failed > 0 && ok + unchanged + skipped == 0 && expanded.failed == 0) {
        out.error =
            failed == 1
                ? *first_failure
                : Error{mixed_kinds ? ErrorKind::Git : first_failure->kind,
                        fmt::format("all {} repositories failed; first: {}", failed, first_failure->message)};
    } else if (failed > 0 || expanded.failed > 0) {
        out.partial = true;
    }
    return out;
}

} // namespace snapshotter::snapshot
