// run_merge_reports in-process (snapshot/merge.cpp): the shard reports of a
// job summed into one report written to jobs/<job-id>.json, a missing shard
// making it partial, a dry run writing nothing, every malformed shard report
// an IntegrityError naming its key, and a storage failure a clean error.
#include "action_world.hpp"
#include "fault_storage.hpp"
#include "snapshotter/snapshot/fleet.hpp"

#include <functional>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;
using nlohmann::json;

namespace {

const std::string k_job = "nightly";

// A shard report as run_snapshot writes it, with one repository `name`.
json shard_report(int index, int count, const std::string& name, std::uint64_t bytes, bool failed = false) {
    return {{"action", "snapshot"},
            {"shard", {{"count", count}, {"index", index}}},
            {"repositories", json::array({{{"name", name}, {"status", failed ? "failed" : "ok"}}})},
            {"summary",
             {{"total", 1},
              {"ok", failed ? 0 : 1},
              {"unchanged", 0},
              {"failed", failed ? 1 : 0},
              {"skipped", 0},
              {"bytes", bytes},
              {"refs_rewritten", 0},
              {"refs_deleted", 0},
              {"latest_not_advanced", 0}}}};
}

// The key shard `index` of `count` writes its report to.
std::string shard_key(int index, int count) {
    return report_key(k_job, job::Shard{count, index});
}

void put_shard(storage::Storage& storage, int index, int count, const std::string& text) {
    ASSERT_TRUE(storage.put(shard_key(index, count), text, Overwrite::yes));
}

void put_shard(storage::Storage& storage, int index, int count, const json& report) {
    put_shard(storage, index, count, report.dump());
}

// A file:// storage in a temporary directory and a job: merging reads and
// writes only reports, so no upstream repository is made.
class Reports {
  public:
    Reports() : m_git(test_support::make_git()) {
        auto dir = TempDir::create("test-merge");
        EXPECT_TRUE(dir);
        m_dir.emplace(std::move(*dir));
        auto opened = storage::open({"file://" + m_dir->path().string(), {}});
        EXPECT_TRUE(opened) << opened.error().message;
        m_storage = std::move(*opened);
        m_job.merge_reports.job_id = k_job;
    }
    [[nodiscard]] storage::Storage& storage() { return *m_storage; }

    Outcome merge(storage::Storage& storage, bool dry_run = false) {
        return run_merge_reports(snapshot::Context{m_job, storage, m_git, dry_run});
    }

  private:
    git::Git m_git;
    std::optional<TempDir> m_dir;
    std::unique_ptr<storage::Storage> m_storage;
    job::Job m_job;
};

} // namespace

TEST(MergeReports, EveryShardSummedIntoTheJobReport) {
    Reports world;
    put_shard(world.storage(), 0, 2, shard_report(0, 2, "a/one", 100));
    put_shard(world.storage(), 1, 2, shard_report(1, 2, "b/two", 20, true));
    auto out = world.merge(world.storage());
    ASSERT_FALSE(out.error) << out.error->message;
    // A failed repository makes the merge partial.
    EXPECT_TRUE(out.partial);
    EXPECT_EQ(out.result["action"], "merge_reports");
    EXPECT_EQ(out.result["job_id"], k_job);
    EXPECT_EQ(out.result["shards"], 2);
    EXPECT_EQ(out.result["shards_found"], 2);
    EXPECT_TRUE(out.result["missing_shards"].empty());
    EXPECT_EQ(out.result["complete"], true);
    EXPECT_EQ(out.result["interrupted"], false);
    EXPECT_EQ(out.result["summary"]["total"], 2);
    EXPECT_EQ(out.result["summary"]["ok"], 1);
    EXPECT_EQ(out.result["summary"]["failed"], 1);
    EXPECT_EQ(out.result["summary"]["bytes"], 120);
    EXPECT_FALSE(out.result["summary"].contains("gone"));
    EXPECT_FALSE(out.result.contains("gone"));
    ASSERT_EQ(out.result["repositories"].size(), 2U);
    EXPECT_EQ(out.result["repositories"][0]["name"], "a/one");
    EXPECT_EQ(out.result["repositories"][1]["name"], "b/two");

    ASSERT_EQ(out.result["report"], "jobs/nightly.json");
    auto stored = world.storage().get("jobs/nightly.json");
    ASSERT_TRUE(stored) << stored.error().message;
    auto report = json::parse(*stored);
    EXPECT_TRUE(report.contains("merged_at"));
    EXPECT_EQ(report["summary"], out.result["summary"]);
}

TEST(MergeReports, AMissingShardMakesItIncompleteAndPartial) {
    Reports world;
    put_shard(world.storage(), 0, 3, shard_report(0, 3, "a/one", 1));
    put_shard(world.storage(), 2, 3, shard_report(2, 3, "c/three", 1));
    auto out = world.merge(world.storage());
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_TRUE(out.partial);
    EXPECT_EQ(out.result["complete"], false);
    EXPECT_EQ(out.result["shards_found"], 2);
    EXPECT_EQ(out.result["missing_shards"], json::array({1}));
}

TEST(MergeReports, SourcesGoneMergedAsOneSetAndFailedSourcesTheMostAnyShardSaw) {
    Reports world;
    auto first = shard_report(0, 2, "a/one", 1);
    first["gone"] = {"old/x", "old/y"};
    first["summary"]["sources_failed"] = 1;
    auto second = shard_report(1, 2, "b/two", 1);
    second["gone"] = {"old/y"};
    second["summary"]["sources_failed"] = 2;
    second["interrupted"] = true;
    put_shard(world.storage(), 0, 2, first);
    put_shard(world.storage(), 1, 2, second);
    auto out = world.merge(world.storage());
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_EQ(out.result["gone"], json::array({"old/x", "old/y"}));
    EXPECT_EQ(out.result["summary"]["gone"], 2);
    EXPECT_EQ(out.result["summary"]["sources_failed"], 2);
    EXPECT_EQ(out.result["interrupted"], true);
    EXPECT_FALSE(out.partial);
}

TEST(MergeReports, ADryRunWritesNothing) {
    Reports world;
    put_shard(world.storage(), 0, 1, shard_report(0, 1, "a/one", 1));
    auto out = world.merge(world.storage(), /*dry_run=*/true);
    ASSERT_FALSE(out.error) << out.error->message;
    EXPECT_FALSE(out.result.contains("report"));
    auto stored = world.storage().get("jobs/nightly.json");
    ASSERT_FALSE(stored);
    EXPECT_EQ(stored.error().kind, ErrorKind::NotFound);
}

TEST(MergeReports, NoShardReportIsNotFound) {
    Reports world;
    auto out = world.merge(world.storage());
    ASSERT_TRUE(out.error);
    EXPECT_EQ(out.error->kind, ErrorKind::NotFound);
    EXPECT_NE(out.error->message.find("no shard report of job nightly"), std::string::npos);
    EXPECT_TRUE(out.result.is_null());
}

TEST(MergeReports, EveryMalformedShardReportIsAnIntegrityErrorNamingItsKey) {
    struct Case {
        const char* what;
        std::function<void(json&)> spoil; // null: the text is not JSON at all
        const char* says;
    };
    const std::vector<Case> cases = {
        {"not json", nullptr, "is not a job report"},
        {"no shard", [](json& r) { r.erase("shard"); }, "is not a job report"},
        {"no repositories", [](json& r) { r.erase("repositories"); }, "is not a job report"},
        {"index out of range", [](json& r) { r["shard"]["index"] = 5; }, "no valid shard count and index"},
        {"count not a number", [](json& r) { r["shard"]["count"] = "2"; }, "no valid shard count and index"},
        {"too many shards", [](json& r) { r["shard"]["count"] = 1'000'000'000; },
         "no valid shard count and index"},
        {"another count", [](json& r) { r["shard"]["count"] = 3; },
         "says 3 shards, an earlier report said 2"},
        {"summary not a count", [](json& r) { r["summary"]["bytes"] = -1; }, "summary.bytes is not a count"},
        {"sources_failed not a count", [](json& r) { r["summary"]["sources_failed"] = "x"; },
         "summary.sources_failed is not a count"},
        {"gone not names", [](json& r) { r["gone"] = 7; }, "is not a job report"},
    };
    Reports world;
    put_shard(world.storage(), 0, 2, shard_report(0, 2, "a/one", 1));
    for (const auto& c : cases) {
        auto spoiled = shard_report(1, 2, "b/two", 1);
        if (c.spoil)
            c.spoil(spoiled);
        put_shard(world.storage(), 1, 2, c.spoil ? spoiled.dump() : std::string("{not json"));
        auto out = world.merge(world.storage());
        ASSERT_TRUE(out.error) << c.what;
        EXPECT_EQ(out.error->kind, ErrorKind::Integrity) << c.what;
        EXPECT_NE(out.error->message.find(shard_key(1, 2)), std::string::npos)
            << c.what << ": " << out.error->message;
        EXPECT_NE(out.error->message.find(c.says), std::string::npos) << c.what << ": " << out.error->message;
        EXPECT_TRUE(out.result.is_null()) << c.what;
        EXPECT_FALSE(world.storage().get("jobs/nightly.json")) << c.what << ": nothing may be written";
    }
}

TEST(MergeReports, AStorageFailureIsACleanError) {
    Reports world;
    put_shard(world.storage(), 0, 1, shard_report(0, 1, "a/one", 1));
    for (Op op : {Op::list, Op::get, Op::put}) {
        FaultStorage storage(world.storage());
        storage.fail_nth(op, 1);
        auto out = world.merge(storage);
        ASSERT_TRUE(out.error) << static_cast<int>(op);
        EXPECT_EQ(out.error->kind, ErrorKind::Storage);
        EXPECT_NE(out.error->message.find("injected fault"), std::string::npos) << out.error->message;
        EXPECT_TRUE(out.result.is_null());
    }
}
