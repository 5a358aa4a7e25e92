// The fleet runner (snapshot/fleet_runner.hpp) driven in-process by a fake
// per-repository function, and the tally and verdict (fleet_report.hpp).
// Nothing here waits on a clock for its verdict: sleeps only make workers
// overlap, and the deadline is seen through the test's own abort hook.
#include "snapshotter/snapshot/fleet_report.hpp"
#include "snapshotter/snapshot/fleet_runner.hpp"

#include <atomic>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <new>
#include <thread>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using AttemptFn = std::function<Result<RepoOutcome>(std::size_t index, int attempt)>;

// FleetWork whose attempts are `fn`; records every attempt.
class FakeWork final : public FleetWork {
  public:
    explicit FakeWork(AttemptFn fn) : m_fn(std::move(fn)) {}
    std::map<std::size_t, json> skips; // index -> skip fields

    std::optional<json> skip(std::size_t index) override {
        if (auto it = skips.find(index); it != skips.end())
            return it->second;
        return std::nullopt;
    }
    Result<RepoOutcome> attempt(std::size_t index, int attempt) override {
        {
            std::lock_guard lock(m_mutex);
            ++m_attempts[index];
        }
        return m_fn(index, attempt);
    }
    int attempts(std::size_t index) {
        std::lock_guard lock(m_mutex);
        return m_attempts[index];
    }

  private:
    AttemptFn m_fn;
    std::mutex m_mutex;
    std::map<std::size_t, int> m_attempts;
};

// Events that keep the last progress report.
class RecordingEvents final : public Events {
  public:
    void progress(const Progress& p) override {
        std::lock_guard lock(m_mutex);
        last = p;
        ++reports;
    }
    Progress last;
    int reports = 0;

  private:
    std::mutex m_mutex;
};

std::vector<FleetItem> items_of(std::size_t n, std::size_t hosts = 1) {
    std::vector<FleetItem> items;
    for (std::size_t i = 0; i < n; ++i)
        items.push_back(
            {.name = "org/repo-" + std::to_string(i), .host = "host-" + std::to_string(i % hosts)});
    return items;
}

RepoOutcome ok_outcome(std::uint64_t bytes = 10) {
    return {.status = RepositoryStatus::ok, .detail = {{"kind", "full"}}, .bytes = bytes};
}

// Runner options for tests: no process-wide hooks, tiny backoff and tick.
RunnerOptions test_options(int concurrency, int retries = 0) {
    return {.concurrency = concurrency,
            .max_per_host = concurrency,
            .retries = retries,
            .backoff_base = 1ms,
            .tick = 5ms,
            .stop_requested = [] { return false; },
            .abort_running = [] {},
            .aborted = [] { return false; }};
}

} // namespace

// ---------------------------------------------------------------- runner

TEST(FleetRunner, ResultsComeInTheItemsOrder) {
    auto items = items_of(24);
    FakeWork work([](std::size_t i, int) -> Result<RepoOutcome> {
        // Later items finish first.
        std::this_thread::sleep_for(std::chrono::microseconds(200 * (24 - i)));
        if (i % 5 == 0)
            return RepoOutcome{.status = RepositoryStatus::unchanged, .detail = json::object()};
        return ok_outcome(i);
    });
    RecordingEvents events;
    auto run = run_fleet(items, work, test_options(4), events);
    ASSERT_EQ(run.repositories.size(), items.size());
    EXPECT_FALSE(run.interrupted);
    auto tally = tally_fleet(items, run);
    ASSERT_EQ(tally.entries.size(), items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        EXPECT_EQ(tally.entries[i].at("name"), items[i].name);
        EXPECT_EQ(tally.entries[i].at("status"), i % 5 == 0 ? "unchanged" : "ok");
        EXPECT_EQ(tally.entries[i].at("attempts"), 1);
    }
    EXPECT_EQ(tally.ok, 19U);
    EXPECT_EQ(tally.unchanged, 5U);
    EXPECT_EQ(events.last.done, items.size());
    EXPECT_EQ(events.last.total, items.size());
    EXPECT_EQ(events.last.in_flight, 0U);
}

TEST(FleetRunner, RetriesTransientGitFailuresOnly) {
    auto items = items_of(5);
    FakeWork work([](std::size_t i, int attempt) -> Result<RepoOutcome> {
        switch (i) {
        case 0: // transient twice, then fine
            if (attempt <= 2)
                return fail(Error::git("fetch: Connection reset by peer", Cause::reset));
            return ok_outcome();
        case 1: // permanent: no retry
            return fail(Error::git("ls-remote: repository not found", Cause::refused));
        case 2: // a transient cause, but not a Git error: no retry
            return fail(Error{ErrorKind::Storage, "put: reset", Cause::reset});
        case 3: // transient every time: retries run out
            return fail(Error::git("fetch: server error (HTTP 503)", Cause::http_5xx));
        default: // words alone decide nothing
            return fail(Error::git("fetch: Connection reset by peer"));
        }
    });
    auto run = run_fleet(items, work, test_options(2, /*retries=*/3), no_events());
    EXPECT_EQ(work.attempts(0), 3);
    EXPECT_EQ(work.attempts(1), 1);
    EXPECT_EQ(work.attempts(2), 1);
    EXPECT_EQ(work.attempts(3), 4);
    EXPECT_EQ(work.attempts(4), 1);
    const auto& r = run.repositories;
    EXPECT_EQ(r[0].status, RepositoryStatus::ok);
    EXPECT_EQ(r[0].attempts, 3);
    EXPECT_EQ(r[1].status, RepositoryStatus::failed);
    EXPECT_FALSE(r[1].transient);
    EXPECT_FALSE(r[2].transient);
    EXPECT_EQ(r[3].status, RepositoryStatus::failed);
    EXPECT_TRUE(r[3].transient);
    EXPECT_EQ(r[3].attempts, 4);
    EXPECT_FALSE(r[4].transient);

    auto entry = repository_entry(items[3].name, r[3]);
    EXPECT_EQ(entry, (json{{"name", items[3].name},
                           {"status", "failed"},
                           {"error", "GitError"},
                           {"message", "fetch: server error (HTTP 503)"},
                           {"transient", true},
                           {"attempts", 4},
                           {"duration_ms", r[3].duration_ms}}));
}

TEST(FleetRunner, PerHostCapIsRespected) {
    auto items = items_of(16, /*hosts=*/2);
    std::mutex mutex;
    std::map<std::string, int> in_flight, peak;
    FakeWork work([&](std::size_t i, int) -> Result<RepoOutcome> {
        const auto& host = items[i].host;
        {
            std::lock_guard lock(mutex);
            peak[host] = std::max(peak[host], ++in_flight[host]);
        }
        std::this_thread::sleep_for(2ms);
        {
            std::lock_guard lock(mutex);
            --in_flight[host];
        }
        return ok_outcome();
    });
    auto options = test_options(6);
    options.max_per_host = 2;
    auto run = run_fleet(items, work, options, no_events());
    EXPECT_EQ(tally_fleet(items, run).ok, 16U);
    for (const auto& [host, n] : peak)
        EXPECT_LE(n, 2) << host;
}

TEST(FleetRunner, DeadlineAbortsRunningAndSkipsTheRest) {
    auto items = items_of(4);
    std::atomic<bool> aborted{false};
    FakeWork work([&](std::size_t, int) -> Result<RepoOutcome> {
        // A repository that runs until the runner aborts it.
        while (!aborted.load())
            std::this_thread::sleep_for(1ms);
        return fail(Error::interrupted("git stopped: the job is stopping"));
    });
    auto options = test_options(1);
    options.deadline = 50ms;
    options.abort_running = [&] { aborted.store(true); };
    options.aborted = [&] { return aborted.load(); };
    auto run = run_fleet(items, work, options, no_events());
    EXPECT_TRUE(run.interrupted);
    EXPECT_EQ(run.stop_reason, "the job deadline was reached");
    // The first is aborted while it runs (or, on a machine too busy to
    // start it in time, never started).
    EXPECT_NE(run.repositories[0].status, RepositoryStatus::ok);
    for (std::size_t i = 1; i < items.size(); ++i) {
        EXPECT_EQ(work.attempts(i), 0);
        EXPECT_EQ(repository_entry(items[i].name, run.repositories[i]),
                  (json{{"name", items[i].name},
                        {"status", "skipped"},
                        {"reason", "the job deadline was reached"}}));
    }
    auto tally = tally_fleet(items, run);
    auto verdict = fleet_verdict(tally, items.size(), run.interrupted, run.stop_reason, {});
    ASSERT_TRUE(verdict.error);
    EXPECT_EQ(verdict.error->kind, ErrorKind::Interrupted);
    EXPECT_EQ(verdict.error->message,
              "the job deadline was reached: 4 of 4 repositories were not snapshotted");
}

TEST(FleetRunner, AStopRequestStartsNothingNewAndEndsRetries) {
    auto items = items_of(3);
    std::atomic<bool> stop{false};
    FakeWork work([&](std::size_t, int) -> Result<RepoOutcome> {
        stop.store(true); // SIGTERM lands during the first repository
        return fail(Error::git("fetch: early EOF", Cause::reset));
    });
    auto options = test_options(1, /*retries=*/5);
    options.stop_requested = [&] { return stop.load(); };
    auto run = run_fleet(items, work, options, no_events());
    EXPECT_TRUE(run.interrupted);
    EXPECT_EQ(run.stop_reason, "the job was interrupted");
    EXPECT_EQ(work.attempts(0), 1); // no retry once stopping
    EXPECT_TRUE(run.repositories[0].transient);
    EXPECT_EQ(run.repositories[1].skip, (json{{"reason", "the job was interrupted"}}));
    EXPECT_EQ(run.repositories[2].status, RepositoryStatus::skipped);
}

TEST(FleetRunner, WorkSkipsAreCountedAndKeepTheirFields) {
    auto items = items_of(3);
    FakeWork work([](std::size_t, int) -> Result<RepoOutcome> { return ok_outcome(); });
    work.skips[1] = {{"reason", "already snapshotted by this job"}, {"snapshot_id", "s1"}};
    auto run = run_fleet(items, work, test_options(2), no_events());
    EXPECT_EQ(run.skipped_by_work, 1U);
    EXPECT_FALSE(run.interrupted);
    EXPECT_EQ(work.attempts(1), 0);
    EXPECT_EQ(repository_entry(items[1].name, run.repositories[1]),
              (json{{"name", items[1].name},
                    {"status", "skipped"},
                    {"reason", "already snapshotted by this job"},
                    {"snapshot_id", "s1"}}));
}

TEST(FleetRunner, RunningOutOfMemoryFailsOneRepository) {
    auto items = items_of(2);
    FakeWork work([](std::size_t i, int) -> Result<RepoOutcome> {
        if (i == 0)
            throw std::bad_alloc();
        return ok_outcome();
    });
    auto run = run_fleet(items, work, test_options(1), no_events());
    EXPECT_EQ(run.repositories[0].status, RepositoryStatus::failed);
    EXPECT_EQ(run.repositories[0].error->kind, ErrorKind::Internal);
    EXPECT_EQ(run.repositories[1].status, RepositoryStatus::ok);
}

// ---------------------------------------------------------------- tally and verdict

namespace {

RepositoryRun failed_run(ErrorKind kind, std::string message) {
    return {.status = RepositoryStatus::failed, .error = Error{kind, std::move(message)}, .attempts = 1};
}

} // namespace

TEST(FleetTally, CountsAndSummary) {
    auto items = items_of(5);
    FleetRun run;
    run.repositories = {
        {.status = RepositoryStatus::ok,
         .outcome = {.status = RepositoryStatus::ok,
                     .detail = json::object(),
                     .bytes = 100,
                     .refs_rewritten = 2,
                     .refs_deleted = 1,
                     .refs_updated = 3,
                     .lfs = {.objects = 4,
                             .bytes = 400,
                             .objects_uploaded = 1,
                             .bytes_uploaded = 100,
                             .missing = 1}}},
        {.status = RepositoryStatus::unchanged,
         .outcome = {.status = RepositoryStatus::unchanged,
                     .detail = json::object(),
                     .latest_stale = true,
                     .lfs = {.objects = 2, .bytes = 20}}},
        failed_run(ErrorKind::Git, "fetch: exit code 128"),
        failed_run(ErrorKind::Storage, "put: denied"),
        {.skip = {{"reason", "the job was interrupted"}}},
    };
    auto t = tally_fleet(items, run);
    EXPECT_EQ(t.ok, 1U);
    EXPECT_EQ(t.unchanged, 1U);
    EXPECT_EQ(t.failed, 2U);
    EXPECT_EQ(t.skipped, 1U);
    EXPECT_EQ(t.bytes, 100U);
    EXPECT_EQ(t.refs_rewritten, 2);
    EXPECT_EQ(t.refs_deleted, 1);
    EXPECT_EQ(t.latest_not_advanced, 1);
    EXPECT_EQ(t.refs_updated, 3);
    EXPECT_EQ(t.lfs.objects, 6U);
    EXPECT_EQ(t.lfs.bytes, 420U);
    EXPECT_EQ(t.lfs.objects_uploaded, 1U);
    EXPECT_EQ(t.lfs.bytes_uploaded, 100U);
    EXPECT_EQ(t.lfs.missing, 1U);
    EXPECT_TRUE(t.mixed_kinds);
    ASSERT_TRUE(t.first_failure);
    EXPECT_EQ(t.first_failure->message, "org/repo-2: fetch: exit code 128");

    SourcesTally sources{.gone = 2, .failed = 1, .first_error = Error::git("source: 500")};
    auto summary = fleet_summary(t, 5, sources, 0, 42);
    EXPECT_EQ(summary, (json{{"total", 5},
                             {"ok", 1},
                             {"unchanged", 1},
                             {"failed", 2},
                             {"skipped", 1},
                             {"bytes", 100},
                             {"refs_rewritten", 2},
                             {"refs_deleted", 1},
                             {"latest_not_advanced", 1},
                             {"gone", 2},
                             {"sources_failed", 1},
                             {"duration_ms", 42},
                             {"refs_updated", 3},
                             {"lfs_objects", 6},
                             {"lfs_bytes", 420},
                             {"lfs_objects_uploaded", 1},
                             {"lfs_bytes_uploaded", 100},
                             {"lfs_missing", 1}}));
    EXPECT_EQ(fleet_summary(t, 5, sources, 3, 42).at("skipped_already_committed"), 3);

    auto verdict = fleet_verdict(t, 5, false, "", sources);
    EXPECT_FALSE(verdict.error);
    EXPECT_TRUE(verdict.partial);
    EXPECT_FALSE(fleet_verdict(t, 5, false, "", {}).error);
}

TEST(FleetTally, EveryRepositoryFailing) {
    auto items = items_of(2);
    FleetRun one;
    one.repositories = {failed_run(ErrorKind::Git, "fetch: refused")};
    auto single = fleet_verdict(tally_fleet(items_of(1), one), 1, false, "", {});
    ASSERT_TRUE(single.error);
    EXPECT_EQ(single.error->message, "org/repo-0: fetch: refused");

    FleetRun two;
    two.repositories = {failed_run(ErrorKind::Storage, "a"), failed_run(ErrorKind::Storage, "b")};
    auto same = fleet_verdict(tally_fleet(items, two), 2, false, "", {});
    ASSERT_TRUE(same.error);
    EXPECT_EQ(same.error->kind, ErrorKind::Storage);
    EXPECT_EQ(same.error->message, "all 2 repositories failed; first: org/repo-0: a");

    two.repositories[1] = failed_run(ErrorKind::Integrity, "b");
    auto mixed = fleet_verdict(tally_fleet(items, two), 2, false, "", {});
    EXPECT_EQ(mixed.error->kind, ErrorKind::Git);
}

TEST(FleetTally, EverySourceFailingWithNothingElse) {
    SourcesTally one{.failed = 1, .first_error = Error::git("github org/x: HTTP 500")};
    EXPECT_EQ(fleet_verdict({}, 0, false, "", one).error->message, "github org/x: HTTP 500");
    SourcesTally two{.failed = 2, .first_error = Error::git("github org/x: HTTP 500")};
    EXPECT_EQ(fleet_verdict({}, 0, false, "", two).error->message,
              "all 2 sources failed; first: github org/x: HTTP 500");
    EXPECT_FALSE(fleet_verdict({}, 0, false, "", {}).error);
}

TEST(FleetTally, StatusNamesAreThePrintedOnes) {
    EXPECT_EQ(status_name(RepositoryStatus::ok), "ok");
    EXPECT_EQ(status_name(RepositoryStatus::unchanged), "unchanged");
    EXPECT_EQ(status_name(RepositoryStatus::failed), "failed");
    EXPECT_EQ(status_name(RepositoryStatus::skipped), "skipped");
}
