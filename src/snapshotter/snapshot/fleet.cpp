// The snapshot action over a whole fleet: this shard's repositories, run
// by the fleet runner (fleet_runner.hpp) with each repository's snapshot as
// its work, then the tally (fleet_report.hpp), the job report in storage,
// and the job's end reported to the events (whose metrics the CLI writes).
#include "snapshotter/snapshot/fleet.hpp"

#include "snapshotter/git/protocol.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/create.hpp"
#include "snapshotter/snapshot/fleet_report.hpp"
#include "snapshotter/snapshot/fleet_runner.hpp"
#include "snapshotter/snapshot/sources.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Each repository's snapshot, as the fleet runner's work.
class SnapshotWork final : public FleetWork {
  public:
    SnapshotWork(const Context& ctx, const std::vector<const job::Repository*>& repos)
        : m_ctx(ctx), m_repos(repos), m_latest(repos.size()) {}

    // A rerun of this job skips what it already committed (issue: idempotent reruns).
    std::optional<json> skip(std::size_t index) override {
        const auto& repo = *m_repos[index];
        LatestRead latest = read_latest_manifest(m_ctx.storage, repo.name);
        if (!m_ctx.dry_run && latest && *latest && (*latest)->job_id == m_ctx.job.job_id)
            return json{{"reason", "already snapshotted by this job"},
                        {"snapshot_id", (*latest)->snapshot_id}};
        m_latest[index] = std::move(latest);
        return std::nullopt;
    }

    // The first attempt uses the worker's read of the latest snapshot; a
    // retry reads it again (another job may have committed meanwhile).
    Result<RepoOutcome> attempt(std::size_t index, int attempt) override {
        std::optional<LatestRead> latest;
        if (attempt == 1)
            latest = std::move(m_latest[index]);
        m_latest[index].reset();
        return snapshot_repository(m_ctx, *m_repos[index], std::move(latest));
    }

  private:
    const Context& m_ctx;
    const std::vector<const job::Repository*>& m_repos;
    std::vector<std::optional<LatestRead>> m_latest; // read by skip(), used by the first attempt
};

} // namespace

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

Outcome run_snapshot(const Context& job_ctx) {
    // The job's repositories share what each smart-HTTP origin advertised:
    // later repositories of an origin skip that request (git/protocol.hpp).
    git::CapabilityMemo capabilities;
    Context ctx = job_ctx;
    if (ctx.capabilities == nullptr)
        ctx.capabilities = &capabilities;
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
    std::vector<FleetItem> items;
    for (const auto& r : all)
        if (!options.shard || shard_of(r.name, options.shard->count) == options.shard->index) {
            repos.push_back(&r);
            items.push_back({.name = r.name, .host = host_key(r.parsed)});
        }
    const std::size_t total = repos.size();

    // 3. The runner: workers, a cap per host, retries, deadline and SIGTERM grace.
    SnapshotWork work(ctx, repos);
    ctx.events.begin("snapshot", "repositories", total);
    FleetRun run = run_fleet(items, work,
                             {.concurrency = options.concurrency,
                              .max_per_host = options.max_per_host,
                              .retries = options.retries,
                              .deadline = std::chrono::seconds{options.deadline_s},
                              .grace = std::chrono::seconds{options.grace_s}},
                             ctx.events);
    ctx.events.end();

    // 4. Tally; repositories never started are "skipped" with the reason.
    FleetTally tally = tally_fleet(items, run);
    if (run.skipped_by_work > 0)
        spdlog::warn(
            "{} of {} repositories skipped: job {} already snapshotted them. Reusing a job_id resumes an "
            "interrupted run; leave job_id out (or give a new one) to take new snapshots",
            run.skipped_by_work, total, ctx.job.job_id);
    SourcesTally sources{
        .gone = expanded.gone.size(), .failed = expanded.failed, .first_error = expanded.first_error};
    json summary = fleet_summary(tally, total, sources, run.skipped_by_work, elapsed_ms(start));
    json result = {{"action", "snapshot"},
                   {"job_id", ctx.job.job_id},
                   {"dry_run", ctx.dry_run},
                   {"repositories", std::move(tally.entries)},
                   {"summary", summary}};
    if (!ctx.job.sources.empty()) {
        result["sources"] = std::move(expanded.report);
        result["gone"] = expanded.gone;
    }
    if (options.shard)
        result["shard"] = {
            {"count", options.shard->count}, {"index", options.shard->index}, {"of_total", all.size()}};

    // 5. The job report in storage, then the job's end (its metrics) to the events.
    if (!ctx.dry_run) {
        json report = result;
        report["started_at"] = started_at;
        report["finished_at"] = format_rfc3339(Clock::now());
        report["interrupted"] = run.interrupted;
        auto key = report_key(ctx.job.job_id, options.shard);
        // Compact: a job of unchanged repositories stores this and its manifests, little else.
        if (auto s = ctx.storage.put(key, report.dump() + "\n", Overwrite::yes); !s)
            spdlog::error("cannot write the job report {}: {}", key, s.error().message);
        else
            result["report"] = key;
        ctx.events.job_end({.action = "snapshot",
                            .job_id = ctx.job.job_id,
                            .summary = summary,
                            .duration_ms = elapsed_ms(start)});
    }

    auto verdict = fleet_verdict(tally, total, run.interrupted, run.stop_reason, sources);
    return {std::move(result), std::move(verdict.error), verdict.partial};
}

} // namespace snapshotter::snapshot
