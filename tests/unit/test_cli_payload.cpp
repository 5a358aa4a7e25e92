#include "snapshotter/cli/payload.hpp"
#include "snapshotter/job/job.hpp"

#include <cstdlib>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::cli;
using nlohmann::ordered_json;

namespace {

PayloadFlags with_storage(std::string url = "/backups") {
    PayloadFlags f;
    f.storage = std::move(url);
    return f;
}

// The payload built for `action`, which the job parser must accept.
ordered_json built(const std::string& action, const PayloadFlags& flags) {
    auto payload = build_payload(action, flags);
    EXPECT_TRUE(payload) << payload.error().message;
    if (!payload)
        return nullptr;
    auto job = job::parse_job(payload->dump());
    EXPECT_TRUE(job) << job.error().message << " in " << payload->dump();
    return *payload;
}

std::string usage_error(const std::string& action, const PayloadFlags& flags) {
    auto payload = build_payload(action, flags);
    EXPECT_FALSE(payload) << payload->dump();
    if (payload)
        return "";
    EXPECT_EQ(payload.error().kind, ErrorKind::Usage);
    return payload.error().message;
}

} // namespace

TEST(CliPayload, ListWithTheFewestFlags) {
    EXPECT_EQ(built("list", with_storage()).dump(),
              R"({"version":1,"action":"list","storage":{"url":"/backups"}})");
    auto f = with_storage();
    f.repos = {"org/app"};
    EXPECT_EQ(
        built("list", f).dump(),
        R"({"version":1,"action":"list","storage":{"url":"/backups"},"list":{"repository":"org/app"}})");
}

TEST(CliPayload, SnapshotRepositoriesCredentialsAndOptions) {
    auto f = with_storage("s3://bucket/git");
    f.storage_options = {"region=eu-west-1", "stall_timeout_s=30", "bucket_key=true", "addressing=path"};
    f.repos = {"https://git.example/org/app.git", "org/lib=https://git.example/org/lib.git"};
    f.refs = {"refs/heads/*"};
    f.token_env = "GIT_TOKEN";
    f.concurrency = 4;
    f.engine = "cli";
    auto p = build_payload("snapshot", f);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(
        p->dump(),
        R"({"version":1,"action":"snapshot","storage":{"url":"s3://bucket/git","region":"eu-west-1",)"
        R"("stall_timeout_s":30,"bucket_key":true,"addressing":"path"},"repositories":[)"
        R"({"url":"https://git.example/org/app.git","refs":["refs/heads/*"],"credentials":{"token_env":"GIT_TOKEN"}},)"
        R"({"url":"https://git.example/org/lib.git","name":"org/lib","refs":["refs/heads/*"],)"
        R"("credentials":{"token_env":"GIT_TOKEN"}}],"options":{"concurrency":4,"engine":"cli"}})");
    EXPECT_FALSE(p->contains("job_id")) << "a job_id is never invented: reruns would skip everything";
}

TEST(CliPayload, SnapshotSources) {
    auto f = with_storage();
    f.sources = {"github:org/acme", "gitlab:group/acme/platform"};
    f.api_url = "https://git.example/api/v4";
    EXPECT_EQ(built("snapshot", f).dump(),
              R"({"version":1,"action":"snapshot","storage":{"url":"/backups"},"sources":[)"
              R"({"type":"github","api_url":"https://git.example/api/v4","org":"acme"},)"
              R"({"type":"gitlab","api_url":"https://git.example/api/v4","group":"acme/platform"}]})");
    // The credential flags and --ref go to every source; an ssh key clones over ssh.
    f = with_storage();
    f.sources = {"bitbucket:workspace/team1"};
    f.repos = {"https://git.example/org/app.git"};
    f.token_env = "T";
    f.ssh_key_env = "K";
    f.refs = {"refs/heads/*"};
    auto p = build_payload("snapshot", f);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ((*p)["sources"].dump(),
              R"([{"type":"bitbucket","workspace":"team1","credentials":{"token_env":"T","ssh_key_env":"K"},)"
              R"("transport":"ssh","refs":["refs/heads/*"]}])");
    EXPECT_EQ((*p)["repositories"].size(), 1u);
    for (const char* bad : {"github", "github:org", "github:org/", ":org/acme", "github:/acme"}) {
        f = with_storage();
        f.sources = {bad};
        EXPECT_NE(usage_error("snapshot", f).find("expected TYPE:SCOPE/NAME"), std::string::npos) << bad;
    }
}

TEST(CliPayload, ScpLikeUrlsAreNotTakenForNames) {
    auto f = with_storage();
    f.repos = {"git@github.com:org/app.git", "/srv/git/a=b.git"};
    auto built_payload =
        build_payload("snapshot", f); // the parser would refuse the derived name "srv/git/a=b"
    ASSERT_TRUE(built_payload);
    auto& p = *built_payload;
    EXPECT_EQ(p["repositories"][0]["url"], "git@github.com:org/app.git");
    EXPECT_FALSE(p["repositories"][0].contains("name"));
    EXPECT_EQ(p["repositories"][1]["url"], "/srv/git/a=b.git");
}

TEST(CliPayload, JobIdOnlyWhenGiven) {
    auto f = with_storage();
    f.repos = {"/srv/git/app.git"};
    f.job_id = "resume-me";
    EXPECT_EQ(built("snapshot", f)["job_id"], "resume-me");
}

TEST(CliPayload, RestoreVerifyPruneGcMerge) {
    auto f = with_storage();
    f.repos = {"org/app"};
    f.snapshot = "latest";
    f.target = "/tmp/app.git";
    f.preserved = true;
    EXPECT_EQ(built("restore", f)["restore"].dump(),
              R"({"repository":"org/app","snapshot":"latest","target":"/tmp/app.git","preserved":true})");

    auto v = with_storage();
    v.repos = {"org/app", "org/lib"};
    v.snapshot = "all";
    v.drill = true;
    EXPECT_EQ(built("verify", v)["verify"].dump(),
              R"({"repositories":["org/app","org/lib"],"snapshot":"all","drill":true})");
    EXPECT_FALSE(built("verify", with_storage()).contains("verify"));

    auto p = with_storage();
    p.keep_daily = 7;
    p.keep_within = "30d";
    p.pinned = {"20261124T000000.000Z-abcdef"};
    EXPECT_EQ(built("prune", p)["prune"].dump(),
              R"({"keep_daily":7,"keep_within":"30d","pinned":["20261124T000000.000Z-abcdef"]})");

    auto g = with_storage();
    g.min_age_s = 7200;
    EXPECT_EQ(built("gc", g)["gc"].dump(), R"({"min_age_s":7200})");

    auto m = with_storage();
    m.job_id = "nightly";
    auto merged = built("merge-reports", m);
    EXPECT_EQ(merged["action"], "merge_reports");
    EXPECT_EQ(merged["merge_reports"].dump(), R"({"job_id":"nightly"})");
    EXPECT_FALSE(merged.contains("job_id"));
}

TEST(CliPayload, RestoreSeveralAsOfAndPushTo) {
    auto f = with_storage();
    f.repos = {"org/app", "org/lib"};
    f.as_of = "2026-11-24T00:00:00Z";
    f.target_dir = "/restore";
    EXPECT_EQ(
        built("restore", f)["restore"].dump(),
        R"({"repositories":["org/app","org/lib"],"as_of":"2026-11-24T00:00:00Z","target_dir":"/restore"})");
    auto all = with_storage();
    all.all = true;
    all.target_dir = "/restore";
    EXPECT_EQ(built("restore", all)["restore"].dump(), R"({"repositories":"all","target_dir":"/restore"})");
    auto one_into_dir = with_storage();
    one_into_dir.repos = {"org/app"};
    one_into_dir.target_dir = "/restore";
    EXPECT_EQ(built("restore", one_into_dir)["restore"]["repositories"].dump(), R"(["org/app"])");

    ::setenv("NEW_TOKEN", "tok-for-the-parser", 0); // the parser checks that token_env is set
    auto p = with_storage();
    p.repos = {"org/app"};
    p.push_to = "https://git.example/org/app.git";
    p.token_env = "NEW_TOKEN";
    p.force = true;
    EXPECT_EQ(built("restore", p)["restore"].dump(),
              R"({"repository":"org/app","push_to":{"url":"https://git.example/org/app.git",)"
              R"("credentials":{"token_env":"NEW_TOKEN"},"force":true}})");

    all.repos = {"org/app"};
    EXPECT_NE(usage_error("restore", all).find("not both"), std::string::npos);
    auto no_dir = with_storage();
    no_dir.repos = {"org/app", "org/lib"};
    EXPECT_NE(usage_error("restore", no_dir).find("--target-dir"), std::string::npos);
}

TEST(CliPayload, MissingRequiredFlagsAreUsageErrors) {
    EXPECT_NE(usage_error("list", PayloadFlags{}).find("--storage URL is required"), std::string::npos);
    EXPECT_NE(usage_error("snapshot", with_storage()).find("--repo"), std::string::npos);
    EXPECT_NE(usage_error("restore", with_storage()).find("--repo NAME"), std::string::npos);
    auto r = with_storage();
    r.repos = {"org/app"};
    EXPECT_NE(usage_error("restore", r).find("--target"), std::string::npos);
    EXPECT_NE(usage_error("merge-reports", with_storage()).find("--job-id"), std::string::npos);
    auto s = with_storage();
    s.storage_options = {"region"};
    EXPECT_NE(usage_error("list", s).find("KEY=VALUE"), std::string::npos);
}

TEST(CliPayload, BadValuesAreLeftToTheParser) {
    auto f = with_storage();
    f.keep_daily = -1;
    auto p = build_payload("prune", f);
    ASSERT_TRUE(p);
    auto job = job::parse_job(p->dump());
    ASSERT_FALSE(job);
    EXPECT_TRUE(job.error().message.starts_with("prune.keep_daily:")) << job.error().message;
}

TEST(CliPayload, ActionNamesAreTheSubcommands) {
    EXPECT_EQ(action_names(), (std::vector<std::string>{"snapshot", "restore", "verify", "list", "prune",
                                                        "gc", "merge-reports"}));
}
