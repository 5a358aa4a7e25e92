// The job's CloudWatch EMF document (cli/metrics.hpp), built from the job's end.
#include "snapshotter/cli/metrics.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using nlohmann::json;

TEST(JobMetrics, EmfDocumentReportsEverySummaryField) {
    json summary = {{"ok", 3},
                    {"unchanged", 1},
                    {"failed", 2},
                    {"skipped", 0},
                    {"gone", 1},
                    {"sources_failed", 0},
                    {"refs_rewritten", 4},
                    {"refs_deleted", 5},
                    {"latest_not_advanced", 0},
                    {"bytes", 1234},
                    {"refs_updated", 6},
                    {"lfs_objects", 7},
                    {"lfs_bytes", 7000},
                    {"lfs_objects_uploaded", 2},
                    {"lfs_bytes_uploaded", 2000},
                    {"lfs_missing", 1}};
    auto emf =
        cli::emf_document({.action = "snapshot", .job_id = "job-1", .summary = summary, .duration_ms = 2500});
    EXPECT_EQ(emf.at("Action"), "snapshot");
    EXPECT_EQ(emf.at("job_id"), "job-1");
    EXPECT_EQ(emf.at("level"), "info");
    EXPECT_EQ(emf.at("RepositoriesOk"), 3);
    EXPECT_EQ(emf.at("RepositoriesFailed"), 2);
    EXPECT_EQ(emf.at("BytesWritten"), 1234);
    EXPECT_EQ(emf.at("RefsUpdated"), 6);
    EXPECT_EQ(emf.at("LfsObjects"), 7);
    EXPECT_EQ(emf.at("LfsBytes"), 7000);
    EXPECT_EQ(emf.at("LfsObjectsUploaded"), 2);
    EXPECT_EQ(emf.at("LfsBytesUploaded"), 2000);
    EXPECT_EQ(emf.at("LfsMissing"), 1);
    EXPECT_DOUBLE_EQ(emf.at("DurationSeconds").get<double>(), 2.5);
    const auto& directive = emf.at("_aws").at("CloudWatchMetrics").at(0);
    EXPECT_EQ(directive.at("Namespace"), cli::k_metrics_namespace);
    EXPECT_EQ(directive.at("Dimensions"), json::array({json::array({cli::k_metrics_dimension})}));
    ASSERT_EQ(directive.at("Metrics").size(), cli::job_metrics().size());
    for (const auto& m : cli::job_metrics())
        EXPECT_TRUE(emf.contains(std::string(m.name))) << m.name;
}

// A summary written before a metric existed (an older shard report) counts zero for it.
TEST(JobMetrics, MissingSummaryFieldCountsZero) {
    json summary = {{"ok", 1}, {"bytes", 10}};
    auto emf =
        cli::emf_document({.action = "snapshot", .job_id = "job-2", .summary = summary, .duration_ms = 1});
    EXPECT_EQ(emf.at("RepositoriesOk"), 1);
    EXPECT_EQ(emf.at("LfsBytesUploaded"), 0);
    EXPECT_EQ(emf.at("RefsUpdated"), 0);
}
