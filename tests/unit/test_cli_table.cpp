#include "snapshotter/cli/table.hpp"
#include "snapshotter/util/text.hpp"

#include <gtest/gtest.h>
#include <sstream>

using namespace snapshotter;
using namespace snapshotter::cli;
using nlohmann::json;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

// The display column at which `needle` starts in `line`.
std::size_t column_of(const std::string& line, const std::string& needle) {
    auto at = line.find(needle);
    EXPECT_NE(at, std::string::npos) << needle << " not in: " << line;
    return at == std::string::npos ? 0 : display_width(line.substr(0, at));
}

json snapshot(std::string id, std::string kind, json changes, std::uint64_t bytes, int chain,
              json parent = "20261127T000000.000Z-aaaaaa") {
    return {{"snapshot_id", std::move(id)},
            {"created_at", "2026-11-28T07:35:45Z"},
            {"kind", std::move(kind)},
            {"refs", 12},
            {"changes", std::move(changes)},
            {"bytes", bytes},
            {"chain", chain},
            {"parent", std::move(parent)}};
}

json counts(int created, int fast_forward, int updated, int rewritten, int deleted) {
    return {{"created", created},
            {"fast_forward", fast_forward},
            {"updated", updated},
            {"rewritten", rewritten},
            {"deleted", deleted}};
}

} // namespace

TEST(CliTable, HumanBytes) {
    EXPECT_EQ(human_bytes(0), "0 B");
    EXPECT_EQ(human_bytes(860), "860 B");
    EXPECT_EQ(human_bytes(1023), "1023 B");
    EXPECT_EQ(human_bytes(1024), "1.0 KiB");
    EXPECT_EQ(human_bytes(1536), "1.5 KiB");
    EXPECT_EQ(human_bytes(1024 * 1024 - 1), "1.0 MiB"); // never "1024.0 KiB"
    EXPECT_EQ(human_bytes(std::uint64_t{12} << 20), "12.0 MiB");
    EXPECT_EQ(human_bytes(std::uint64_t{5} << 40), "5.0 TiB");
    EXPECT_EQ(human_bytes(UINT64_MAX), "16.0 EiB");
}

TEST(CliTable, ColumnsAlignByDisplayWidthWithUnicode) {
    auto text = render_columns({"NAME", "NUM"}, {{"リリース", "1"}, {"ü-branch", "100"}, {"a", "22"}},
                               {Align::left, Align::right});
    auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), 4u) << text;
    // "リリース" is 8 columns wide, so the second column starts at 10 everywhere...
    EXPECT_EQ(column_of(lines[0], "NUM"), 10u);
    EXPECT_EQ(lines[1], "リリース    1");
    // ... and numbers are right-aligned to its width, 3.
    EXPECT_EQ(lines[2], "ü-branch  100");
    EXPECT_EQ(lines[3], "a          22");
    for (const auto& line : lines)
        EXPECT_EQ(display_width(line), 13u) << line;
}

TEST(CliTable, CellsAreMadePrintableAndLinesTrimmed) {
    auto text = render_columns({"A", "B"}, {{"x\x1b]0;pwned\x07", ""}}, {});
    EXPECT_EQ(text.find('\x1b'), std::string::npos);
    EXPECT_EQ(text.find('\x07'), std::string::npos);
    for (const auto& line : lines_of(text))
        EXPECT_NE(line.back(), ' ') << line;
}

TEST(CliTable, ListTableShowsEverySnapshotNewestFirst) {
    json result = {
        {"action", "list"},
        {"repositories",
         json::array(
             {{{"name", "org/app"},
               {"snapshots",
                json::array(
                    {snapshot("20261128T073545.123Z-9f3a1c", "incremental", counts(2, 3, 1, 1, 4), 1536, 3),
                     snapshot("20261127T073545.123Z-000001", "unchanged", counts(0, 0, 0, 0, 0), 0, 2),
                     snapshot("20261126T073545.123Z-000000", "full", counts(0, 0, 0, 0, 0),
                              std::uint64_t{3} << 30, 1, nullptr)})}}})}};
    auto text = render_list_table(result);
    auto lines = lines_of(text);
    ASSERT_GE(lines.size(), 5u) << text;
    EXPECT_EQ(lines[0], "org/app: 3 snapshots");
    const std::string& header = lines[1];
    for (const char* column : {"CREATED (UTC)", "SNAPSHOT", "KIND", "REFS", "CHANGED", "SIZE", "CHAIN"})
        EXPECT_NE(header.find(column), std::string::npos) << column;
    EXPECT_EQ(lines[2].substr(0, 19), "2026-11-28 07:35:45");
    EXPECT_NE(lines[2].find("20261128T073545.123Z-9f3a1c"), std::string::npos);
    EXPECT_NE(lines[2].find("incremental"), std::string::npos);
    // fast_forward and updated are both "~".
    EXPECT_NE(lines[2].find("+2 ~4 !1 -4"), std::string::npos) << lines[2];
    EXPECT_NE(lines[2].find("1.5 KiB"), std::string::npos);
    EXPECT_NE(lines[3].find("none"), std::string::npos) << "nothing moved since the parent: " << lines[3];
    EXPECT_NE(lines[4].find("3.0 GiB"), std::string::npos);
    EXPECT_EQ(lines[4].find("none"), std::string::npos) << "a first snapshot has no parent: " << lines[4];
    // Every row's columns start where the header's do; numbers end where theirs do.
    for (int row = 2; row <= 4; ++row) {
        EXPECT_EQ(column_of(lines[row], "20261"), column_of(header, "SNAPSHOT")) << lines[row];
        EXPECT_EQ(display_width(lines[row]), display_width(header))
            << "CHAIN is right-aligned: " << lines[row];
    }
    EXPECT_NE(text.find("+created ~updated !rewritten"), std::string::npos) << "legend";
}

TEST(CliTable, ListTableOfSeveralRepositoriesAndUnreadableManifests) {
    json result = {{"action", "list"},
                   {"repositories",
                    json::array({{{"name", "org/alpha"},
                                  {"snapshots", json::array({{{"snapshot_id", "20261128T073545.123Z-bad000"},
                                                              {"error", "manifest: ünknown kind \"x\""}},
                                                             snapshot("20261127T073545.123Z-000001", "full",
                                                                      counts(1, 0, 0, 0, 0), 860, 1)})}},
                                 {{"name", "team/beta"},
                                  {"snapshots", json::array({snapshot("20261128T073545.123Z-000002", "empty",
                                                                      counts(0, 0, 0, 0, 3), 0, 0)})}}})}};
    auto text = render_list_table(result);
    EXPECT_NE(text.find("org/alpha: 2 snapshots\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nteam/beta: 1 snapshot\n"), std::string::npos) << text;
    EXPECT_NE(text.find("unreadable"), std::string::npos);
    EXPECT_NE(text.find("20261128T073545.123Z-bad000: manifest: ünknown kind \"x\""), std::string::npos)
        << text;
    EXPECT_NE(text.find("+1"), std::string::npos);
    EXPECT_NE(text.find("-3"), std::string::npos);
    EXPECT_NE(text.find("860 B"), std::string::npos);
}

TEST(CliTable, EmptyListsSaySo) {
    EXPECT_EQ(render_list_table({{"action", "list"}, {"repositories", json::array()}}), "no snapshots\n");
    auto text = render_list_table(
        {{"action", "list"},
         {"repositories", json::array({{{"name", "org/app"}, {"snapshots", json::array()}}})}});
    EXPECT_EQ(text.substr(0, text.find('\n') + 1), "org/app: no snapshots\n");
}

TEST(SnapshotTable, FailuresFirstThenSkippedThenTheRestWithASummary) {
    json result = {{"action", "snapshot"},
                   {"job_id", "nightly"},
                   {"dry_run", false},
                   {"repositories",
                    {{{"name", "org/ok"},
                      {"status", "ok"},
                      {"kind", "incremental"},
                      {"refs", 12},
                      {"refs_rewritten", 2},
                      {"refs_deleted", 1},
                      {"snapshot_id", "20261128T073545.123Z-abc"},
                      {"bundle", {{"size", 2048}}},
                      {"duration_ms", 1500}},
                     {{"name", "org/broken"},
                      {"status", "failed"},
                      {"error", "GitError"},
                      {"message", "fetch: connection refused"},
                      {"duration_ms", 20}},
                     {{"name", "org/again"},
                      {"status", "skipped"},
                      {"reason", "already snapshotted by this job"},
                      {"snapshot_id", "20261128T000000.000Z-xyz"}}}},
                   {"summary",
                    {{"total", 3},
                     {"ok", 1},
                     {"unchanged", 0},
                     {"failed", 1},
                     {"skipped", 1},
                     {"bytes", 2048},
                     {"duration_ms", 1600}}}};
    auto lines = lines_of(render_snapshot_table(result));
    ASSERT_GE(lines.size(), 7u);
    EXPECT_TRUE(lines[0].starts_with("REPOSITORY")) << lines[0];
    EXPECT_TRUE(lines[1].starts_with("org/broken")) << lines[1];
    EXPECT_TRUE(lines[2].starts_with("org/again")) << lines[2];
    EXPECT_TRUE(lines[3].starts_with("org/ok")) << lines[3];
    EXPECT_NE(lines[3].find("incremental"), std::string::npos);
    EXPECT_NE(lines[3].find("!2 -1"), std::string::npos) << lines[3];
    EXPECT_NE(lines[3].find("2.0 KiB"), std::string::npos) << lines[3];
    EXPECT_NE(lines[3].find("1.5 s"), std::string::npos) << lines[3];
    EXPECT_EQ(column_of(lines[1], "failed"), column_of(lines[2], "skipped"));
    std::string text = render_snapshot_table(result);
    EXPECT_NE(text.find("3 repositories: 1 ok, 0 unchanged, 1 failed, 1 skipped; 2.0 KiB written in 1.6 s"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("1 repository skipped: job nightly already snapshotted it"), std::string::npos)
        << text;
    EXPECT_NE(text.find("org/broken: GitError: fetch: connection refused"), std::string::npos) << text;
}

TEST(PruneTable, ThePlanWithReasonsAndBytes) {
    json result = {
        {"action", "prune"},
        {"dry_run", true},
        {"repositories",
         {{{"name", "org/app"},
           {"snapshots", 3},
           {"keep", {{{"snapshot_id", "S3"}, {"reasons", {"last", "daily"}}}}},
           {"drop", {"S2", "S1"}},
           {"bytes_freed", 3 * 1024 * 1024}}}},
        {"pinned_not_found", json::array()},
        {"summary",
         {{"total", 1}, {"failed", 0}, {"kept", 1}, {"dropped", 2}, {"bytes_freed", 3 * 1024 * 1024}}}};
    std::string text = render_prune_table(result);
    EXPECT_NE(text.find("org/app: keep 1 of 3 snapshots, would free 3.0 MiB"), std::string::npos) << text;
    auto lines = lines_of(text);
    EXPECT_NE(
        std::find_if(lines.begin(), lines.end(),
                     [](const std::string& l) { return l.starts_with("S3") && l.ends_with("last, daily"); }),
        lines.end())
        << text;
    EXPECT_NE(
        std::find_if(lines.begin(), lines.end(),
                     [](const std::string& l) { return l.starts_with("S2 ") && l.ends_with(" would drop"); }),
        lines.end())
        << text;
    EXPECT_NE(text.find("dry run, 1 repositories: 1 snapshots kept, 2 dropped, 3.0 MiB would be freed"),
              std::string::npos)
        << text;
}

TEST(ResultTable, EveryActionHasARendering) {
    EXPECT_NE(render_result({{"action", "verify"},
                             {"snapshots",
                              {{{"repository", "org/app"},
                                {"snapshot_id", "S1"},
                                {"ok", false},
                                {"drill", true},
                                {"problems", {"bundle b: checksum differs"}}}}},
                             {"summary", {{"checked", 1}, {"ok", 0}, {"failed", 1}}}})
                  .find("org/app@S1: bundle b: checksum differs"),
              std::string::npos);
    EXPECT_NE(render_result({{"action", "restore"},
                             {"repository", "org/app"},
                             {"snapshot_id", "S1"},
                             {"target", "/tmp/app.git"},
                             {"refs", 3},
                             {"preserved", 0}})
                  .find("/tmp/app.git"),
              std::string::npos);
    EXPECT_NE(
        render_result(
            {{"action", "gc"},
             {"dry_run", true},
             {"min_age_s", 86400},
             {"removed",
              {{"count", 1},
               {"bytes", 10},
               {"items", {{{"kind", "orphan_bundle"}, {"key", "k"}, {"bytes", 10}, {"age_s", 90000}}}}}},
             {"kept_young", {{"count", 0}}},
             {"problems", json::array()}})
            .find("would remove 1 leftover (10 B)"),
        std::string::npos);
    EXPECT_EQ(render_result({{"action", "merge_reports"}, {"x", 1}}),
              "{\n  \"action\": \"merge_reports\",\n  \"x\": 1\n}\n");
}

TEST(CliTable, RestoreOfSeveralRepositoriesFailuresFirst) {
    json result = {{"action", "restore"},
                   {"dry_run", false},
                   {"as_of", "2026-11-24T00:00:00Z"},
                   {"target_dir", "/restore"},
                   {"restored",
                    {{{"repository", "org/app"},
                      {"status", "ok"},
                      {"snapshot_id", "20261120T080000.000Z-dddddd"},
                      {"target", "/restore/org/app.git"},
                      {"refs", 4},
                      {"preserved", 0}},
                     {{"repository", "org/nope"},
                      {"status", "failed"},
                      {"error", "NotFound"},
                      {"message", "unknown repository \"org/nope\" (did you mean \"org/app\"?)"}}}},
                   {"summary", {{"total", 2}, {"ok", 1}, {"failed", 1}}}};
    std::string text = render_result(result);
    auto lines = lines_of(text);
    ASSERT_GE(lines.size(), 3u);
    EXPECT_TRUE(lines[1].starts_with("org/nope")) << text;
    EXPECT_TRUE(lines[2].starts_with("org/app")) << text;
    EXPECT_NE(lines[2].find("/restore/org/app.git"), std::string::npos) << text;
    EXPECT_NE(text.find("2 repositories: 1 restored, 1 failed (snapshots as of 2026-11-24T00:00:00Z)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("org/nope: NotFound: unknown repository \"org/nope\" (did you mean \"org/app\"?)"),
              std::string::npos)
        << text;
}

TEST(CliTable, SnapshotSummarySaysHowManyARerunSkipped) {
    json result = {
        {"action", "snapshot"},
        {"job_id", "nightly"},
        {"repositories",
         {{{"name", "org/a"}, {"status", "skipped"}, {"reason", "already snapshotted by this job"}}}},
        {"summary", {{"total", 1}, {"skipped", 1}, {"skipped_already_committed", 1}}}};
    EXPECT_NE(render_result(result).find("1 repository skipped: job nightly already snapshotted it"),
              std::string::npos);
}

TEST(CliTable, ListTableHasAnLfsColumnOnlyWhenASnapshotHasLfs) {
    auto with_lfs = snapshot("20261128T073545.123Z-9f3a1c", "incremental", counts(1, 0, 0, 0, 0), 100, 2);
    with_lfs["lfs"] = {{"objects", 3}, {"bytes", 3 << 20}, {"missing", 1}};
    json result = {
        {"action", "list"},
        {"repositories",
         json::array({{{"name", "org/app"},
                       {"snapshots", json::array({with_lfs, snapshot("20261127T073545.123Z-000001", "full",
                                                                     counts(1, 0, 0, 0, 0), 860, 1)})}}})}};
    auto text = render_list_table(result);
    auto lines = lines_of(text);
    ASSERT_GE(lines.size(), 4u) << text;
    EXPECT_NE(lines[1].find("LFS"), std::string::npos) << text;
    EXPECT_NE(lines[2].find("3.0 MiB (1 missing)"), std::string::npos) << text;
    EXPECT_NE(text.find("LFS: bytes of Git LFS content"), std::string::npos) << "legend";
    result["repositories"][0]["snapshots"][0].erase("lfs");
    EXPECT_EQ(render_list_table(result).find("LFS"), std::string::npos) << "no LFS, no column";
}
