#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/job.hpp"

#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>

using namespace snapshotter;
using namespace snapshotter::job;
using nlohmann::json;

namespace {

using EnvMap = std::map<std::string, std::string>;

GetEnv fake_env(EnvMap vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end())
            return std::nullopt;
        return it->second;
    };
}

const EnvMap k_env = {{"HOME", "/home/tester"}, {"GIT_TOKEN", "tok-123456"}};

// A valid snapshot payload; tests change one thing in it.
json snapshot_payload() {
    return json::parse(R"({"version": 1, "action": "snapshot", "job_id": "nightly-2026-11-28",
        "storage": {"url": "file:///var/snapshots"},
        "repositories": [{"url": "https://git.example.com/org/app.git", "name": "org/app",
                          "refs": ["refs/heads/*", "refs/tags/*"],
                          "credentials": {"token_env": "GIT_TOKEN"}}],
        "options": {"cache_dir": "/var/cache/snapshotter", "timeout_s": 3600}})");
}

Job parse_ok(const std::string& text, const EnvMap& env = k_env) {
    auto job = parse_job(text, fake_env(env));
    EXPECT_TRUE(job) << text << "\n-> " << (job ? "" : job.error().message);
    return job.value_or(Job{});
}

Job parse_ok(const json& payload, const EnvMap& env = k_env) {
    return parse_ok(payload.dump(), env);
}
Job parse_ok(const char* text, const EnvMap& env = k_env) {
    return parse_ok(std::string(text), env);
}

std::string parse_error(const std::string& text, const EnvMap& env = k_env) {
    auto job = parse_job(text, fake_env(env));
    EXPECT_FALSE(job) << "accepted: " << text;
    if (job)
        return "<accepted>";
    EXPECT_EQ(job.error().kind, ErrorKind::Payload) << job.error().message;
    return job.error().message;
}

std::string parse_error(const json& payload, const EnvMap& env = k_env) {
    return parse_error(payload.dump(), env);
}

// The message of the error `payload` gives must start with `prefix`.
#define EXPECT_PAYLOAD_ERROR(payload, prefix)                                                                \
    do {                                                                                                     \
        std::string message_ = parse_error(payload);                                                         \
        EXPECT_TRUE(message_.starts_with(prefix))                                                            \
            << "message: " << message_ << "\nexpected prefix: " << (prefix);                                 \
    } while (false)

json with(json base, const json::json_pointer& where, json value) {
    base[where] = std::move(value);
    return base;
}

json without(json base, const json::json_pointer& where) {
    base[where.parent_pointer()].erase(where.back());
    return base;
}

json restore_payload() {
    return json::parse(R"({"version": 1, "action": "restore", "storage": {"url": "/srv/snapshots"},
        "restore": {"repository": "org/app", "snapshot": "latest", "target": "/restore/app.git"}})");
}

json verify_payload() {
    return json::parse(R"({"version": 1, "action": "verify", "storage": {"url": "/srv/snapshots"},
        "verify": {"repositories": ["org/app"], "snapshot": "latest", "drill": true}})");
}

} // namespace

// ---------------------------------------------------------------- valid payloads

TEST(ParseJob, FullSnapshotPayload) {
    auto job = parse_ok(snapshot_payload());
    EXPECT_EQ(job.version, 1);
    EXPECT_EQ(job.action, Action::snapshot);
    EXPECT_EQ(job.job_id, "nightly-2026-11-28");
    EXPECT_EQ(job.storage.url, "file:///var/snapshots");
    ASSERT_EQ(job.repositories.size(), 1u);
    const auto& repo = job.repositories[0];
    EXPECT_EQ(repo.url, "https://git.example.com/org/app.git");
    EXPECT_EQ(repo.parsed.transport, Transport::https);
    EXPECT_EQ(repo.parsed.host, "git.example.com");
    EXPECT_EQ(repo.name, "org/app");
    EXPECT_EQ(repo.refs, (std::vector<std::string>{"refs/heads/*", "refs/tags/*"}));
    ASSERT_TRUE(repo.credentials);
    EXPECT_EQ(repo.credentials->token_env, "GIT_TOKEN");
    EXPECT_EQ(repo.credentials->username, "x-access-token"); // default
    EXPECT_EQ(job.options.cache_dir, "/var/cache/snapshotter");
    EXPECT_EQ(job.options.timeout_s, 3600);
    EXPECT_FALSE(job.options.allow_http); // default
    EXPECT_TRUE(job.options.allow_file);  // default
}

TEST(ParseJob, MinimalSnapshotPayloadGetsDefaults) {
    auto job = parse_ok(
        R"({"version":1,"storage":{"url":"/srv/snap"},"repositories":[{"url":"git@h.example:org/app.git"}]})",
        {{"HOME", "/home/tester"}});
    EXPECT_EQ(job.action, Action::snapshot);
    EXPECT_TRUE(job.job_id.starts_with("job-")) << job.job_id;
    ASSERT_EQ(job.repositories.size(), 1u);
    EXPECT_EQ(job.repositories[0].name, "org/app");
    EXPECT_EQ(job.repositories[0].refs, (std::vector<std::string>{"refs/heads/*", "refs/tags/*"}));
    EXPECT_FALSE(job.repositories[0].credentials);
    EXPECT_EQ(job.options.cache_dir, "/home/tester/.cache/snapshotter");
    EXPECT_EQ(job.options.timeout_s, defaults::k_timeout_s);
    EXPECT_EQ(job.options.allow_http, defaults::k_allow_http);
    EXPECT_EQ(job.options.allow_file, defaults::k_allow_file);
}

TEST(ParseJob, DefaultJobIdsDiffer) {
    const std::string text = R"({"version":1,"storage":{"url":"/s"},"repositories":[{"url":"/srv/a.git"}]})";
    EXPECT_NE(parse_ok(text).job_id, parse_ok(text).job_id);
}

TEST(ParseJob, CacheDirDefaultFollowsEnvironment) {
    const std::string text = R"({"version":1,"storage":{"url":"/s"},"repositories":[{"url":"/srv/a.git"}]})";
    EXPECT_EQ(parse_ok(text, {{"XDG_CACHE_HOME", "/xdg"}, {"HOME", "/home/u"}}).options.cache_dir,
              "/xdg/snapshotter");
    EXPECT_EQ(parse_ok(text, {{"XDG_CACHE_HOME", ""}, {"HOME", "/home/u"}}).options.cache_dir,
              "/home/u/.cache/snapshotter");
    EXPECT_EQ(parse_ok(text, {}).options.cache_dir, "/var/cache/snapshotter");
}

TEST(ParseJob, RelativeCacheDirBecomesAbsolute) {
    auto job = parse_ok(with(snapshot_payload(), "/options/cache_dir"_json_pointer, "cache/./x/../y"));
    EXPECT_EQ(job.options.cache_dir, (std::filesystem::current_path() / "cache" / "y").lexically_normal());
}

TEST(ParseJob, AllOptions) {
    auto payload = snapshot_payload();
    payload["options"] = {{"cache_dir", "/c"}, {"timeout_s", 1}, {"allow_http", true}, {"allow_file", false}};
    payload["repositories"][0]["url"] = "http://h.example/org/app.git";
    payload["repositories"][0]["credentials"]["username"] = "bot";
    auto job = parse_ok(payload);
    EXPECT_EQ(job.options.timeout_s, 1);
    EXPECT_TRUE(job.options.allow_http);
    EXPECT_FALSE(job.options.allow_file);
    EXPECT_EQ(job.repositories[0].parsed.transport, Transport::http);
    EXPECT_EQ(job.repositories[0].credentials->username, "bot");
    payload["options"]["timeout_s"] = 7 * 24 * 3600;
    EXPECT_EQ(parse_ok(payload).options.timeout_s, 604800);
}

TEST(ParseJob, SeveralRepositoriesWithDerivedNames) {
    auto payload = snapshot_payload();
    payload["repositories"] = json::parse(R"([{"url": "https://h.example/org/app.git"},
        {"url": "git://h.example/org/lib"}, {"url": "/srv/git/tools.git", "refs": ["refs/heads/main", "refs/pull/*"]}])");
    auto job = parse_ok(payload);
    ASSERT_EQ(job.repositories.size(), 3u);
    EXPECT_EQ(job.repositories[0].name, "org/app");
    EXPECT_EQ(job.repositories[1].name, "org/lib");
    EXPECT_EQ(job.repositories[2].name, "srv/git/tools");
    EXPECT_EQ(job.repositories[2].refs, (std::vector<std::string>{"refs/heads/main", "refs/pull/*"}));
}

TEST(ParseJob, RestorePayload) {
    auto job = parse_ok(restore_payload());
    EXPECT_EQ(job.action, Action::restore);
    EXPECT_EQ(job.restore.repository, "org/app");
    EXPECT_EQ(job.restore.snapshot, "latest");
    EXPECT_EQ(job.restore.target, "/restore/app.git");
    EXPECT_TRUE(job.repositories.empty());

    auto by_id =
        parse_ok(with(restore_payload(), "/restore/snapshot"_json_pointer, "20261128T073545.123Z-9f3a1c"));
    EXPECT_EQ(by_id.restore.snapshot, "20261128T073545.123Z-9f3a1c");
    // The beginning of an id is resolved against storage by restore.
    for (const char* prefix : {"2", "20261128", "20261128T07", "20261128T073545.123Z-9f"})
        EXPECT_EQ(
            parse_ok(with(restore_payload(), "/restore/snapshot"_json_pointer, prefix)).restore.snapshot,
            prefix);

    auto defaulted = parse_ok(without(restore_payload(), "/restore/snapshot"_json_pointer));
    EXPECT_EQ(defaulted.restore.snapshot, "latest");
    EXPECT_FALSE(defaulted.restore.preserved);
    EXPECT_TRUE(parse_ok(with(restore_payload(), "/restore/preserved"_json_pointer, true)).restore.preserved);
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/preserved"_json_pointer, "yes"),
                         "restore.preserved: must be a boolean, not a string");

    auto normalized =
        parse_ok(with(restore_payload(), "/restore/target"_json_pointer, "/restore/./x/../app.git"));
    EXPECT_EQ(normalized.restore.target, "/restore/app.git");
}

TEST(ParseJob, VerifyPayload) {
    auto job = parse_ok(verify_payload());
    EXPECT_EQ(job.action, Action::verify);
    EXPECT_EQ(job.verify.repositories, std::vector<std::string>{"org/app"});
    EXPECT_EQ(job.verify.snapshot, "latest");
    EXPECT_TRUE(job.verify.drill);

    auto all = parse_ok(with(verify_payload(), "/verify/snapshot"_json_pointer, "all"));
    EXPECT_EQ(all.verify.snapshot, "all");
    auto by_id =
        parse_ok(with(verify_payload(), "/verify/snapshot"_json_pointer, "20261128T073545.123Z-9f3a1c"));
    EXPECT_EQ(by_id.verify.snapshot, "20261128T073545.123Z-9f3a1c");

    auto defaults_only = parse_ok(without(verify_payload(), "/verify"_json_pointer));
    EXPECT_TRUE(defaults_only.verify.repositories.empty()); // all
    EXPECT_EQ(defaults_only.verify.snapshot, "latest");
    EXPECT_FALSE(defaults_only.verify.drill);
}

TEST(ParseJob, ListPayload) {
    auto all = parse_ok(R"({"version":1,"action":"list","storage":{"url":"/s"}})");
    EXPECT_EQ(all.action, Action::list);
    EXPECT_FALSE(all.list.repository);
    auto empty_object = parse_ok(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":{}})");
    EXPECT_FALSE(empty_object.list.repository);
    auto one =
        parse_ok(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":{"repository":"org/app"}})");
    ASSERT_TRUE(one.list.repository);
    EXPECT_EQ(*one.list.repository, "org/app");
}

// ---------------------------------------------------------------- errors: document and types

TEST(ParseJobErrors, NotJson) {
    EXPECT_PAYLOAD_ERROR(std::string("{\"version\": 1,"), "(payload): payload is not valid JSON (at byte ");
    EXPECT_PAYLOAD_ERROR(std::string(""), "(payload): payload is not valid JSON (at byte ");
    EXPECT_PAYLOAD_ERROR(std::string("version: 1"), "(payload): payload is not valid JSON (at byte 1)");
    // Found by fuzz_payload (libFuzzer): nlohmann throws out_of_range, not parse_error, here.
    EXPECT_PAYLOAD_ERROR(std::string("{\"version\": 19999999038E3139815726120960}"),
                         "(payload): payload is not valid JSON (a number is out of range)");
}

TEST(ParseJobErrors, NotAnObject) {
    EXPECT_PAYLOAD_ERROR(std::string("[]"), "(payload): must be an object, not an array");
    EXPECT_PAYLOAD_ERROR(std::string("\"x\""), "(payload): must be an object, not a string");
    EXPECT_PAYLOAD_ERROR(std::string("null"), "(payload): must be an object, not null");
}

TEST(ParseJobErrors, TooLarge) {
    std::string huge =
        "{\"version\":1,\"job_id\":\"" + std::string(defaults::k_max_payload_bytes, 'x') + "\"}";
    EXPECT_PAYLOAD_ERROR(huge, "(payload): payload is larger than 16777216 bytes");
}

TEST(ParseJobErrors, Version) {
    EXPECT_PAYLOAD_ERROR(without(snapshot_payload(), "/version"_json_pointer),
                         "version: is required (use 1)");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/version"_json_pointer, "1"),
                         "version: must be an integer, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/version"_json_pointer, 1.5),
                         "version: must be an integer, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/version"_json_pointer, 2), "version: 2 is not supported");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/version"_json_pointer, -1), "version: must be between");
}

TEST(ParseJobErrors, Action) {
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/action"_json_pointer, 5),
                         "action: must be a string, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/action"_json_pointer, "backup"),
                         "action: \"backup\" is not one of snapshot, restore, verify, list");
}

TEST(ParseJobErrors, JobId) {
    for (json bad :
         {json("../x"), json("a/b"), json(""), json(std::string(129, 'j')), json("-x"), json("a b")})
        EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/job_id"_json_pointer, bad),
                             "job_id: must be 1-128 characters of A-Z a-z 0-9 . _ -");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/job_id"_json_pointer, 7),
                         "job_id: must be a string, not a number");
    EXPECT_EQ(parse_ok(with(snapshot_payload(), "/job_id"_json_pointer, std::string(128, 'j'))).job_id.size(),
              128u);
}

// ---------------------------------------------------------------- errors: unknown keys

TEST(ParseJobErrors, UnknownKeysAtEveryLevelWithSuggestions) {
    auto top = snapshot_payload();
    top["versoin"] = 1;
    EXPECT_PAYLOAD_ERROR(top, "versoin: unknown key (did you mean \"version\"?)");

    auto storage = snapshot_payload();
    storage["storage"]["ulr"] = "x";
    EXPECT_PAYLOAD_ERROR(storage, "storage.ulr: unknown key (did you mean \"url\"?)");

    auto repo = snapshot_payload();
    repo["repositories"][0]["nmae"] = "x";
    EXPECT_PAYLOAD_ERROR(repo, "repositories[0].nmae: unknown key (did you mean \"name\"?)");

    auto creds = snapshot_payload();
    creds["repositories"][0]["credentials"]["token_evn"] = "X";
    EXPECT_PAYLOAD_ERROR(creds,
                         "repositories[0].credentials.token_evn: unknown key (did you mean \"token_env\"?)");

    auto options = snapshot_payload();
    options["options"]["cach_dir"] = "/x";
    EXPECT_PAYLOAD_ERROR(options, "options.cach_dir: unknown key (did you mean \"cache_dir\"?)");

    auto restore = restore_payload();
    restore["restore"]["targte"] = "/x";
    EXPECT_PAYLOAD_ERROR(restore, "restore.targte: unknown key (did you mean \"target\"?)");

    auto verify = verify_payload();
    verify["verify"]["dril"] = true;
    EXPECT_PAYLOAD_ERROR(verify, "verify.dril: unknown key (did you mean \"drill\"?)");

    EXPECT_PAYLOAD_ERROR(
        std::string(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":{"repo":"x"}})"),
        "list.repo: unknown key");
}

TEST(ParseJobErrors, UnknownKeyFarFromAnyHasNoSuggestion) {
    auto payload = snapshot_payload();
    payload["zzzzzzzz"] = 1;
    EXPECT_EQ(parse_error(payload), "zzzzzzzz: unknown key");
}

TEST(ParseJobErrors, SectionOfAnotherAction) {
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/restore"_json_pointer, json::object()),
                         "restore: is only allowed with \"action\": \"restore\"");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/verify"_json_pointer, json::object()),
                         "verify: is only allowed with \"action\": \"verify\"");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/list"_json_pointer, json::object()),
                         "list: is only allowed with \"action\": \"list\"");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/repositories"_json_pointer, json::array()),
                         "repositories: is only allowed with \"action\": \"snapshot\"");
}

// ---------------------------------------------------------------- errors: storage and options

TEST(ParseJobErrors, Storage) {
    EXPECT_PAYLOAD_ERROR(without(snapshot_payload(), "/storage"_json_pointer), "storage: is required");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage"_json_pointer, "/srv"),
                         "storage: must be an object, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage"_json_pointer, json::object()),
                         "storage.url: is required");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage/url"_json_pointer, ""),
                         "storage.url: must not be empty");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage/url"_json_pointer, nullptr),
                         "storage.url: must be a string, not null");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage/url"_json_pointer, "/srv/\n"),
                         "storage.url: must not contain control characters");
}

TEST(ParseJobErrors, Options) {
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options"_json_pointer, json::array()),
                         "options: must be an object, not an array");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/timeout_s"_json_pointer, 0),
                         "options.timeout_s: must be between 1 and 604800");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/timeout_s"_json_pointer, 604801),
                         "options.timeout_s: must be between 1 and 604800");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/timeout_s"_json_pointer, "60"),
                         "options.timeout_s: must be an integer, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/allow_http"_json_pointer, "yes"),
                         "options.allow_http: must be a boolean, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/allow_file"_json_pointer, 1),
                         "options.allow_file: must be a boolean, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/cache_dir"_json_pointer, ""),
                         "options.cache_dir: must be a directory path");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/cache_dir"_json_pointer, true),
                         "options.cache_dir: must be a string, not a boolean");
}

// ---------------------------------------------------------------- errors: repositories

TEST(ParseJobErrors, RepositoriesList) {
    EXPECT_PAYLOAD_ERROR(without(snapshot_payload(), "/repositories"_json_pointer),
                         "repositories: is required for a snapshot");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories"_json_pointer, json::object()),
                         "repositories: must be an array, not an object");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories"_json_pointer, json::array()),
                         "repositories: must list at least one repository");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0"_json_pointer, "https://h/r.git"),
                         "repositories[0]: must be an object, not a string");
}

TEST(ParseJobErrors, RepositoryUrl) {
    auto payload = snapshot_payload();
    payload["repositories"].push_back({{"name", "second"}});
    EXPECT_PAYLOAD_ERROR(payload, "repositories[1].url: is required");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, 42),
                         "repositories[0].url: must be a string, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, "ext::ssh://h/r.git"),
                         "repositories[0].url: transport \"ext::\" is not allowed");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, "fd::7"),
                         "repositories[0].url: transport \"fd::\" is not allowed");
    EXPECT_PAYLOAD_ERROR(
        with(snapshot_payload(), "/repositories/0/url"_json_pointer, "ext::sh -c touch% /tmp/pwned"),
        "repositories[0].url: ");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, "-u/tmp/x"),
                         "repositories[0].url: must not start with '-'");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, "http://h/org/app.git"),
                         "repositories[0].url: scheme \"http\" is not allowed");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/url"_json_pointer, "ftp://h/org/app.git"),
                         "repositories[0].url: scheme \"ftp\" is not allowed");
    auto no_file = with(snapshot_payload(), "/options/allow_file"_json_pointer, false);
    EXPECT_PAYLOAD_ERROR(with(no_file, "/repositories/0/url"_json_pointer, "/srv/git/app.git"),
                         "repositories[0].url: local repositories are not allowed");
}

TEST(ParseJobErrors, PasswordInUrlIsRefusedAndNotEchoed) {
    auto message = parse_error(with(snapshot_payload(), "/repositories/0/url"_json_pointer,
                                    "https://bob:hunter2secret@h/org/app.git"));
    EXPECT_TRUE(message.starts_with("repositories[0].url: credentials in the URL are not allowed"))
        << message;
    EXPECT_EQ(message.find("hunter2secret"), std::string::npos) << message;
}

TEST(ParseJobErrors, RepositoryName) {
    for (const char* bad :
         {"../x", "a/../b", "/abs", "a//b", "a/", "./a", "-x", "a b", "a\\b", "a%2Fb", ""}) {
        auto message = parse_error(with(snapshot_payload(), "/repositories/0/name"_json_pointer, bad));
        EXPECT_TRUE(
            message.starts_with(std::string("repositories[0].name: \"") + bad + "\" is not a valid name"))
            << message;
    }
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/name"_json_pointer, std::string(201, 'n')),
                         "repositories[0].name: ");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/name"_json_pointer, json::array()),
                         "repositories[0].name: must be a string, not an array");
}

TEST(ParseJobErrors, DuplicateNames) {
    auto payload = snapshot_payload();
    payload["repositories"].push_back({{"url", "https://h/other.git"}, {"name", "org/app"}});
    EXPECT_EQ(parse_error(payload),
              "repositories[1].name: \"org/app\" appears twice (https://git.example.com/org/app.git "
              "and https://h/other.git); give one of them a \"name\"");

    // Derived names collide too: same path on two hosts.
    auto derived = snapshot_payload();
    derived["repositories"] =
        json::parse(R"([{"url": "https://a.example/org/app.git"}, {"url": "https://b.example/x.git"},
        {"url": "git@b.example:org/app"}])");
    EXPECT_EQ(parse_error(derived),
              "repositories[2].name: \"org/app\" appears twice (https://a.example/org/app.git and "
              "git@b.example:org/app); give one of them a \"name\"");
}

TEST(ParseJobErrors, Refs) {
    auto at_refs = "/repositories/0/refs"_json_pointer;
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array()),
                         "repositories[0].refs: must not be empty");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, "refs/heads/*"),
                         "repositories[0].refs: must be an array of strings, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array({"refs/heads/*", 1})),
                         "repositories[0].refs[1]: must be a string, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array({"heads/*"})),
                         "repositories[0].refs[0]: \"heads/*\" must start with \"refs/\"");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array({"refs/"})),
                         "repositories[0].refs[0]: \"refs/\" must start with \"refs/\"");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array({"refs/*/x"})),
                         "repositories[0].refs[0]: \"refs/*/x\": '*' is allowed only at the end");
    for (const char* bad :
         {"refs/heads/a..b", "refs/heads/a b", "refs/heads/a:b", "refs/heads/~x", "refs/heads/^x",
          "refs/heads/a?", "refs/heads/[a]", "refs/heads//a", "refs/heads/a\\b"})
        EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_refs, json::array({bad})),
                             std::string("repositories[0].refs[0]: \"") + bad +
                                 "\" is not a valid ref pattern");
}

TEST(ParseJobErrors, Credentials) {
    auto at_creds = "/repositories/0/credentials"_json_pointer;
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_creds, "GIT_TOKEN"),
                         "repositories[0].credentials: must be an object, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_creds, json::object()),
                         "repositories[0].credentials: needs token_env (https) or ssh_key_env (ssh)");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_creds, {{"ssh_key_env", "KEY"}}),
                         "repositories[0].credentials.ssh_key_env: is only for ssh URLs");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), at_creds, {{"token_env", ""}}),
                         "repositories[0].credentials.token_env: must not be empty");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/defaults"_json_pointer,
                              {{"credentials", {{"ssh_key_env", ""}, {"token_env", "GIT_TOKEN"}}}}),
                         "defaults.credentials.ssh_key_env: must not be empty");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/repositories/0/credentials/username"_json_pointer, ""),
                         "repositories[0].credentials.username: must be a non-empty printable string");
    EXPECT_PAYLOAD_ERROR(
        with(snapshot_payload(), "/repositories/0/credentials/username"_json_pointer, "a\tb"),
        "repositories[0].credentials.username: must be a non-empty printable string");
}

TEST(ParseJobErrors, TokenEnvNotSet) {
    EXPECT_EQ(parse_error(snapshot_payload(), {{"HOME", "/h"}}),
              "repositories[0].credentials.token_env: environment variable GIT_TOKEN is not set");
    EXPECT_EQ(parse_error(snapshot_payload(), {{"HOME", "/h"}, {"GIT_TOKEN", ""}}),
              "repositories[0].credentials.token_env: environment variable GIT_TOKEN is not set");
    // The environment is read through the GetEnv parameter, nothing else.
    auto job =
        parse_job(snapshot_payload().dump(), [](const std::string& name) -> std::optional<std::string> {
            if (name == "GIT_TOKEN")
                return "from-fake-env";
            return std::nullopt;
        });
    EXPECT_TRUE(job) << job.error().message;
}

TEST(ParseJobErrors, ErrorsNeverContainTheToken) {
    auto payload = with(snapshot_payload(), "/options/timeout_s"_json_pointer, -5);
    auto message = parse_error(payload, {{"GIT_TOKEN", "tok-very-secret-value"}});
    EXPECT_EQ(message.find("tok-very-secret-value"), std::string::npos);
}

// ---------------------------------------------------------------- errors: restore, verify, list

TEST(ParseJobErrors, Restore) {
    EXPECT_PAYLOAD_ERROR(without(restore_payload(), "/restore"_json_pointer),
                         "restore: is required for a restore");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore"_json_pointer, "org/app"),
                         "restore: must be an object, not a string");
    EXPECT_PAYLOAD_ERROR(without(restore_payload(), "/restore/repository"_json_pointer),
                         "restore.repository: is required");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/repository"_json_pointer, "../x"),
                         "restore.repository: \"../x\" is not a valid repository name");
    EXPECT_PAYLOAD_ERROR(without(restore_payload(), "/restore/target"_json_pointer),
                         "restore.target: is required");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/target"_json_pointer, "relative/dir"),
                         "restore.target: must be an absolute path");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/target"_json_pointer, "~/dir"),
                         "restore.target: must be an absolute path");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/target"_json_pointer, "/"),
                         "restore.target: must not be the root directory");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/target"_json_pointer, "/a/.."),
                         "restore.target: must not be the root directory");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/snapshot"_json_pointer, "all"),
                         "restore.snapshot: \"all\" must be \"latest\" or a snapshot id");
    EXPECT_PAYLOAD_ERROR(
        with(restore_payload(), "/restore/snapshot"_json_pointer, "2026-11-28"),
        "restore.snapshot: \"2026-11-28\" must be \"latest\" or a snapshot id (or its unique "
        "beginning)");
}

json multi_restore_payload() {
    return json::parse(R"({"version": 1, "action": "restore", "storage": {"url": "/srv/snapshots"},
        "restore": {"repositories": ["org/app", "org/lib"], "as_of": "2026-11-24T00:00:00Z",
                    "target_dir": "/restore"}})");
}

TEST(ParseJob, RestoreSeveralRepositoriesAsOf) {
    auto job = parse_ok(multi_restore_payload());
    EXPECT_TRUE(job.restore.several());
    EXPECT_FALSE(job.restore.all);
    EXPECT_EQ(job.restore.repositories, (std::vector<std::string>{"org/app", "org/lib"}));
    EXPECT_EQ(job.restore.target_dir, "/restore");
    ASSERT_TRUE(job.restore.as_of);
    EXPECT_EQ(format_rfc3339(*job.restore.as_of), "2026-11-24T00:00:00Z");
    EXPECT_EQ(job.restore.as_of_text, "2026-11-24T00:00:00Z");
    auto all = parse_ok(with(multi_restore_payload(), "/restore/repositories"_json_pointer, "all"));
    EXPECT_TRUE(all.restore.all);
    EXPECT_TRUE(all.restore.several());
    // as_of with one repository, instead of snapshot.
    auto single = parse_ok(with(without(restore_payload(), "/restore/snapshot"_json_pointer),
                                "/restore/as_of"_json_pointer, "2026-11-24T01:00:00+01:00"));
    EXPECT_FALSE(single.restore.several());
    EXPECT_EQ(format_rfc3339(*single.restore.as_of), "2026-11-24T00:00:00Z");
    EXPECT_FALSE(parse_ok(restore_payload()).restore.several());
}

TEST(ParseJob, RestorePushTo) {
    auto payload = without(restore_payload(), "/restore/target"_json_pointer);
    payload["restore"]["push_to"] = {{"url", "https://git.example/org/app.git"},
                                     {"credentials", {{"token_env", "GIT_TOKEN"}}}};
    auto job = parse_ok(payload);
    ASSERT_TRUE(job.restore.push_to);
    EXPECT_EQ(job.restore.push_to->remote.url, "https://git.example/org/app.git");
    EXPECT_EQ(job.restore.push_to->remote.credentials->token_env, "GIT_TOKEN");
    EXPECT_FALSE(job.restore.push_to->force);
    EXPECT_TRUE(job.restore.target.empty());
    payload["restore"]["push_to"]["force"] = true;
    EXPECT_TRUE(parse_ok(payload).restore.push_to->force);
    payload["restore"]["target"] = "/restore/app.git";
    EXPECT_EQ(parse_ok(payload).restore.target, "/restore/app.git");
}

TEST(ParseJobErrors, RestoreSeveralAndPushTo) {
    auto multi = multi_restore_payload();
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repositories"_json_pointer, "everything"),
                         "restore.repositories: must be an array of repository names or the string \"all\"");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repositories"_json_pointer, json::array({"*"})),
                         "restore.repositories: [\"*\"] is not a name: write \"all\"");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repositories"_json_pointer, json::array()),
                         "restore.repositories: must list at least one repository");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repositories"_json_pointer, json::array({"a", "a"})),
                         "restore.repositories[1]: \"a\" appears twice");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repositories"_json_pointer, json::array({"../x"})),
                         "restore.repositories[0]: \"../x\" is not a valid repository name");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/repository"_json_pointer, "org/app"),
                         "restore.repositories: cannot be combined with repository");
    EXPECT_PAYLOAD_ERROR(without(multi, "/restore/target_dir"_json_pointer),
                         "restore.target_dir: is required");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/target_dir"_json_pointer, "rel"),
                         "restore.target_dir: must be an absolute path");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/target"_json_pointer, "/x"),
                         "restore.target: is for one repository");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/snapshot"_json_pointer, "latest"),
                         "restore.as_of: cannot be combined with snapshot");
    EXPECT_PAYLOAD_ERROR(with(without(multi, "/restore/as_of"_json_pointer), "/restore/snapshot"_json_pointer,
                              "20261128T073545.123Z-9f3a1c"),
                         "restore.snapshot: must be \"latest\" with repositories");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/as_of"_json_pointer, "2026-11-24"),
                         "restore.as_of: \"2026-11-24\" is not an RFC 3339 time");
    EXPECT_PAYLOAD_ERROR(with(multi, "/restore/push_to"_json_pointer, json{{"url", "https://h/x.git"}}),
                         "restore.push_to: is for one repository");
    EXPECT_PAYLOAD_ERROR(with(restore_payload(), "/restore/target_dir"_json_pointer, "/r"),
                         "restore.target_dir: is for repositories");
    auto push = with(restore_payload(), "/restore/push_to"_json_pointer, json{{"url", "https://h/x.git"}});
    EXPECT_PAYLOAD_ERROR(with(push, "/restore/push_to/forse"_json_pointer, true),
                         "restore.push_to.forse: unknown key (did you mean \"force\"?)");
    EXPECT_PAYLOAD_ERROR(with(push, "/restore/push_to/url"_json_pointer, "ext::sh -c x"),
                         "restore.push_to.url: ");
    EXPECT_PAYLOAD_ERROR(
        with(push, "/restore/push_to/credentials"_json_pointer, json{{"token_env", "UNSET_VAR"}}),
        "restore.push_to.credentials.token_env: environment variable UNSET_VAR is not set");
    EXPECT_PAYLOAD_ERROR(
        with(push, "/restore/push_to/credentials"_json_pointer, json{{"ssh_key_env", "GIT_TOKEN"}}),
        "restore.push_to.credentials.ssh_key_env: is only for ssh URLs");
}

TEST(ParseJobErrors, VerifySnapshotSelector) {
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/verify/snapshot"_json_pointer, "yesterday"),
                         "verify.snapshot: \"yesterday\" must be \"latest\", \"all\" or a snapshot id");
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/verify/snapshot"_json_pointer, 3),
                         "verify.snapshot: must be a string, not a number");
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/verify/drill"_json_pointer, "true"),
                         "verify.drill: must be a boolean, not a string");
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/verify/repositories"_json_pointer, "org/app"),
                         "verify.repositories: must be an array of strings, not a string");
    EXPECT_PAYLOAD_ERROR(
        with(verify_payload(), "/verify/repositories"_json_pointer, json::array({"ok", "../x"})),
        "verify.repositories[1]: \"../x\" is not a valid repository name");
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/verify"_json_pointer, json::array()),
                         "verify: must be an object, not an array");
}

TEST(ParseJobErrors, List) {
    EXPECT_PAYLOAD_ERROR(
        std::string(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":{"repository":"/x"}})"),
        "list.repository: \"/x\" is not a valid repository name");
    EXPECT_PAYLOAD_ERROR(
        std::string(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":{"repository":1}})"),
        "list.repository: must be a string, not a number");
    EXPECT_PAYLOAD_ERROR(std::string(R"({"version":1,"action":"list","storage":{"url":"/s"},"list":[]})"),
                         "list: must be an object, not an array");
}

// ---------------------------------------------------------------- fleet options and S3 storage settings

TEST(ParseJob, FleetOptionsDefaults) {
    auto job = parse_ok(snapshot_payload());
    EXPECT_EQ(job.options.deadline_s, defaults::k_deadline_s);
    EXPECT_EQ(job.options.concurrency, defaults::k_concurrency);
    EXPECT_EQ(job.options.max_per_host, defaults::k_max_per_host);
    EXPECT_EQ(job.options.retries, defaults::k_retries);
    EXPECT_EQ(job.options.full_every, defaults::k_full_every);
    EXPECT_EQ(job.options.full_size_ratio, defaults::k_full_size_ratio);
    EXPECT_EQ(job.options.grace_s, defaults::k_grace_s);
    EXPECT_EQ(to_string(job.options.engine), defaults::k_engine);
    EXPECT_EQ(job.options.max_refs, defaults::k_max_refs);
    EXPECT_EQ(job.options.max_pack_bytes, defaults::k_max_pack_bytes);
    EXPECT_FALSE(job.options.shard);
}

TEST(ParseJob, LimitOptions) {
    auto payload = snapshot_payload();
    payload["options"] = {{"max_refs", 1000}, {"max_pack_bytes", 0}};
    auto job = parse_ok(payload);
    EXPECT_EQ(job.options.max_refs, 1000);
    EXPECT_EQ(job.options.max_pack_bytes, 0);
    payload["options"] = {{"max_pack_bytes", 5LL << 40}};
    EXPECT_EQ(parse_ok(payload).options.max_pack_bytes, 5LL << 40);
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/max_refs"_json_pointer, 0),
                         "options.max_refs: must be between 1 and 100000000");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/max_pack_bytes"_json_pointer, -1),
                         "options.max_pack_bytes: must be between 0 and");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/max_pack_bytes"_json_pointer, "1G"),
                         "options.max_pack_bytes: must be an integer, not a string");
}

TEST(ParseJob, FleetOptionsGiven) {
    auto payload = snapshot_payload();
    payload["options"] = {{"deadline_s", 7200}, {"concurrency", 32},
                          {"max_per_host", 4},  {"retries", 0},
                          {"full_every", 7},    {"full_size_ratio", 1},
                          {"grace_s", 0},       {"shard", {{"count", 4}, {"index", 3}}}};
    auto job = parse_ok(payload);
    EXPECT_EQ(job.options.deadline_s, 7200);
    EXPECT_EQ(job.options.concurrency, 32);
    EXPECT_EQ(job.options.max_per_host, 4);
    EXPECT_EQ(job.options.retries, 0);
    EXPECT_EQ(job.options.full_every, 7);
    EXPECT_EQ(job.options.full_size_ratio, 1.0);
    EXPECT_EQ(job.options.grace_s, 0);
    ASSERT_TRUE(job.options.shard);
    EXPECT_EQ(job.options.shard->count, 4);
    EXPECT_EQ(job.options.shard->index, 3);
}

TEST(ParseJob, ShardIndexFromTheEnvironment) {
    auto payload = with(snapshot_payload(), "/options/shard"_json_pointer, {{"count", 5}});
    auto env = k_env;
    env["AWS_BATCH_JOB_ARRAY_INDEX"] = "2";
    EXPECT_EQ(parse_ok(payload, env).options.shard->index, 2);
    env.erase("AWS_BATCH_JOB_ARRAY_INDEX");
    env["JOB_COMPLETION_INDEX"] = "4";
    EXPECT_EQ(parse_ok(payload, env).options.shard->index, 4);
    EXPECT_TRUE(parse_error(payload).starts_with("options.shard.index: is required"));
    env["JOB_COMPLETION_INDEX"] = "x1";
    EXPECT_EQ(parse_error(payload, env), "options.shard.index: JOB_COMPLETION_INDEX=\"x1\" is not an index");
    env["JOB_COMPLETION_INDEX"] = "5";
    EXPECT_EQ(parse_error(payload, env), "options.shard.index: 5 must be below count 5");
}

TEST(ParseJobErrors, FleetOptions) {
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/concurrency"_json_pointer, 0),
                         "options.concurrency: must be between 1 and 256");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/max_per_host"_json_pointer, 257),
                         "options.max_per_host: must be between 1 and 256");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/retries"_json_pointer, 11),
                         "options.retries: must be between 0 and 10");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/deadline_s"_json_pointer, -1),
                         "options.deadline_s: must be between 0 and 2592000");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/full_every"_json_pointer, 0),
                         "options.full_every: must be between 1 and 10000");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/full_size_ratio"_json_pointer, "half"),
                         "options.full_size_ratio: must be a number, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/full_size_ratio"_json_pointer, -0.5),
                         "options.full_size_ratio: must be between");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/grace_s"_json_pointer, 3601),
                         "options.grace_s: must be between 0 and 3600");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/concurrency"_json_pointer, 2.5),
                         "options.concurrency: must be an integer, not a number");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/shard"_json_pointer, {{"index", 0}}),
                         "options.shard.count: is required");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/shard"_json_pointer, {{"count", 2}, {"idx", 0}}),
                         "options.shard.idx: unknown key (did you mean \"index\"?)");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/shard"_json_pointer, 2),
                         "options.shard: must be an object, not a number");
    for (const char* engine : {"auto", "stream", "cli"})
        EXPECT_EQ(
            to_string(
                parse_ok(with(snapshot_payload(), "/options/engine"_json_pointer, engine)).options.engine),
            engine);
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/engine"_json_pointer, "libgit2"),
                         "options.engine: \"libgit2\" is not one of auto, stream, cli");
    EXPECT_EQ(to_string(parse_ok(snapshot_payload()).options.verify), defaults::k_verify);
    EXPECT_EQ(parse_ok(with(snapshot_payload(), "/options/verify"_json_pointer, "index")).options.verify,
              VerifyMode::index);
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/options/verify"_json_pointer, "fsck"),
                         "options.verify: \"fsck\" is not one of pack, index");
}

TEST(ParseJob, S3StorageSettings) {
    auto payload = with(snapshot_payload(), "/storage"_json_pointer,
                        {{"url", "s3://bucket/prefix"},
                         {"region", "eu-west-1"},
                         {"endpoint", "http://127.0.0.1:9000"},
                         {"addressing", "path"},
                         {"sse", "aws:kms"},
                         {"kms_key_id", "alias/snapshots"},
                         {"bucket_key", true},
                         {"storage_class", "STANDARD_IA"}});
    auto job = parse_ok(payload);
    EXPECT_EQ(job.storage.url, "s3://bucket/prefix");
    const auto& s3 = job.storage.s3;
    EXPECT_EQ(s3.addressing, storage::Addressing::path);
    EXPECT_EQ(s3.bucket_key, true);
    EXPECT_EQ(s3.endpoint, "http://127.0.0.1:9000");
    EXPECT_EQ(s3.kms_key_id, "alias/snapshots");
    EXPECT_EQ(s3.region, "eu-west-1");
    EXPECT_EQ(s3.sse, storage::Sse::aws_kms);
    EXPECT_EQ(s3.storage_class, "STANDARD_IA");
    EXPECT_TRUE(s3.require_protection);
    EXPECT_EQ(s3.stall_timeout, storage::k_default_stall_timeout);
    EXPECT_EQ(s3.retry_budget, storage::k_default_retry_budget);
    EXPECT_EQ(s3.upload_concurrency, storage::k_default_upload_concurrency);
    EXPECT_FALSE(s3.object_lock);
}

TEST(ParseJobErrors, S3StorageSettings) {
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage/region"_json_pointer, "eu-west-1"),
                         "storage.region: is only allowed with an s3:// storage.url");
    auto s3 = with(snapshot_payload(), "/storage/url"_json_pointer, "s3://bucket");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/addressing"_json_pointer, "dns"),
                         "storage.addressing: \"dns\" is not one of virtual, path");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/sse"_json_pointer, "aes"),
                         "storage.sse: \"aes\" is not one of AES256, aws:kms");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/kms_key_id"_json_pointer, "k"),
                         "storage.kms_key_id: requires \"sse\": \"aws:kms\"");
    EXPECT_PAYLOAD_ERROR(
        with(with(s3, "/storage/sse"_json_pointer, "AES256"), "/storage/bucket_key"_json_pointer, true),
        "storage.bucket_key: requires \"sse\": \"aws:kms\"");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/bucket_key"_json_pointer, "yes"),
                         "storage.bucket_key: must be a boolean, not a string");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/endpoint"_json_pointer, "127.0.0.1:9000"),
                         "storage.endpoint: must start with http:// or https://");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/region"_json_pointer, ""),
                         "storage.region: must be a non-empty string");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/region"_json_pointer, 1),
                         "storage.region: must be a non-empty string");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/regoin"_json_pointer, "x"),
                         "storage.regoin: unknown key (did you mean \"region\"?)");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/stall_timeout_s"_json_pointer, 0),
                         "storage.stall_timeout_s: must be between 1 and 3600");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/stall_timeout_s"_json_pointer, "5"),
                         "storage.stall_timeout_s: must be an integer, not a string");
    EXPECT_PAYLOAD_ERROR(with(snapshot_payload(), "/storage/stall_timeout_s"_json_pointer, 5),
                         "storage.stall_timeout_s: is only allowed with an s3:// storage.url");
    EXPECT_EQ(parse_ok(with(s3, "/storage/stall_timeout_s"_json_pointer, 5)).storage.s3.stall_timeout,
              std::chrono::seconds{5});
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/retry_budget_s"_json_pointer, 3601),
                         "storage.retry_budget_s: must be between 1 and 3600");
    EXPECT_EQ(parse_ok(with(s3, "/storage/retry_budget_s"_json_pointer, 120)).storage.s3.retry_budget,
              std::chrono::seconds{120});
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/require_protection"_json_pointer, "yes"),
                         "storage.require_protection: must be a boolean, not a string");
    EXPECT_FALSE(
        parse_ok(with(s3, "/storage/require_protection"_json_pointer, false)).storage.s3.require_protection);
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/storage_class"_json_pointer, "glacier ir"),
                         "storage.storage_class: \"glacier ir\" is not a storage class");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/endpoint"_json_pointer, "http://host/path"),
                         "storage.endpoint: \"http://host/path\" must not have a path");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/endpoint"_json_pointer, "http://user:pw@host"),
                         "storage.endpoint: \"http://user:***@host\" needs a host and no user info");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/upload_concurrency"_json_pointer, 0),
                         "storage.upload_concurrency: must be between 1 and 64");
    EXPECT_PAYLOAD_ERROR(with(s3, "/storage/upload_concurrency"_json_pointer, 65),
                         "storage.upload_concurrency: must be between 1 and 64");
    EXPECT_EQ(
        parse_ok(with(s3, "/storage/upload_concurrency"_json_pointer, 16)).storage.s3.upload_concurrency, 16);
}

// ---------------------------------------------------------------- helpers

TEST(IsValidRepositoryName, Rules) {
    for (const char* good : {"app", "org/app", "a.b_c-d/E9", "deep/ly/nested/name", "x..y", ".hidden"})
        EXPECT_TRUE(is_valid_repository_name(good)) << good;
    for (const char* bad :
         {"", ".", "..", "../x", "a/..", "a/./b", "/a", "a/", "a//b", "-a", "a/-b", "a b", "a:b", "a%b", "ä"})
        EXPECT_FALSE(is_valid_repository_name(bad)) << bad;
    EXPECT_TRUE(is_valid_repository_name(std::string(200, 'n')));
    EXPECT_FALSE(is_valid_repository_name(std::string(201, 'n')));
}

TEST(KnownKeys, ListsEverySchemaObject) {
    const auto& keys = known_keys();
    std::vector<std::string> objects;
    for (const auto& [name, list] : keys)
        objects.push_back(name);
    EXPECT_EQ(objects, (std::vector<std::string>{"credentials", "defaults", "gc", "http", "job", "list",
                                                 "merge_reports", "options", "prune", "push_to", "repository",
                                                 "restore", "shard", "source", "ssh", "storage", "verify"}));
    EXPECT_EQ(keys.at("credentials"), (std::vector<std::string>{"token_env", "username", "ssh_key_env"}));
}

TEST(ActionName, Names) {
    EXPECT_EQ(action_name(Action::snapshot), "snapshot");
    EXPECT_EQ(action_name(Action::restore), "restore");
    EXPECT_EQ(action_name(Action::verify), "verify");
    EXPECT_EQ(action_name(Action::list), "list");
    EXPECT_EQ(action_name(Action::prune), "prune");
}

TEST(ProcessEnv, ReadsTheRealEnvironment) {
    ::setenv("SNAPSHOTTER_TEST_PROCESS_ENV", "value", 1);
    EXPECT_EQ(process_env("SNAPSHOTTER_TEST_PROCESS_ENV"), "value");
    ::unsetenv("SNAPSHOTTER_TEST_PROCESS_ENV");
    EXPECT_EQ(process_env("SNAPSHOTTER_TEST_PROCESS_ENV"), std::nullopt);
}

TEST(ParseJob, MergeReportsNeedsAJobId) {
    auto job = parse_job(R"({"version":1,"action":"merge_reports","storage":{"url":"/s"},
                              "merge_reports":{"job_id":"nightly-1"}})");
    ASSERT_TRUE(job) << job.error().message;
    EXPECT_EQ(job->action, Action::merge_reports);
    EXPECT_EQ(job->merge_reports.job_id, "nightly-1");
    auto missing = parse_job(R"({"version":1,"action":"merge_reports","storage":{"url":"/s"}})");
    ASSERT_FALSE(missing);
    EXPECT_TRUE(missing.error().message.starts_with("merge_reports: is required")) << missing.error().message;
    auto bad = parse_job(R"({"version":1,"action":"merge_reports","storage":{"url":"/s"},
                              "merge_reports":{"job_id":"../x"}})");
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().message.starts_with("merge_reports.job_id:")) << bad.error().message;
}

namespace {

json prune_payload(json prune) {
    return {{"version", 1}, {"action", "prune"}, {"storage", {{"url", "/var/snapshots"}}}, {"prune", prune}};
}

} // namespace

TEST(PruneJob, ParsesEveryRule) {
    auto job = parse_ok(prune_payload({{"repositories", {"org/app"}},
                                       {"keep_last", 2},
                                       {"keep_hourly", 24},
                                       {"keep_daily", 7},
                                       {"keep_weekly", 4},
                                       {"keep_monthly", 12},
                                       {"keep_yearly", 3},
                                       {"keep_within", "1y6m"},
                                       {"pinned", {"20261128T073545.123Z-9f3a1c"}},
                                       {"rebase", true}}));
    EXPECT_EQ(job.action, Action::prune);
    const auto& p = job.prune.policy;
    EXPECT_EQ(job.prune.repositories, std::vector<std::string>{"org/app"});
    EXPECT_EQ((std::vector<int>{p.keep_last, p.keep_hourly, p.keep_daily, p.keep_weekly, p.keep_monthly,
                                p.keep_yearly}),
              (std::vector<int>{2, 24, 7, 4, 12, 3}));
    EXPECT_EQ(p.keep_within, (CalendarSpan{1, 6, 0, 0, 0}));
    EXPECT_EQ(p.keep_within_text, "1y6m");
    EXPECT_EQ(p.pinned, std::vector<std::string>{"20261128T073545.123Z-9f3a1c"});
    EXPECT_TRUE(job.prune.rebase);
}

TEST(PruneJob, DefaultsAndOneRuleSuffices) {
    auto job = parse_ok(prune_payload({{"keep_within", "30d"}}));
    EXPECT_TRUE(job.prune.repositories.empty());
    EXPECT_EQ(job.prune.policy.keep_daily, defaults::k_keep);
    EXPECT_EQ(job.prune.rebase, defaults::k_rebase);
}

TEST(PruneJob, RefusesAnEmptyOrBadPolicy) {
    EXPECT_TRUE(
        parse_error(prune_payload(json::object())).starts_with("prune: the retention policy is empty"));
    EXPECT_TRUE(parse_error(prune_payload({{"keep_last", 0}, {"pinned", {"20261128T073545.123Z-9f3a1c"}}}))
                    .starts_with("prune: the retention policy is empty"));
    EXPECT_EQ(
        parse_error(json{{"version", 1}, {"action", "prune"}, {"storage", {{"url", "/s"}}}}).substr(0, 18),
        "prune: is required");
    EXPECT_TRUE(parse_error(prune_payload({{"keep_within", "30 days"}}))
                    .starts_with("prune.keep_within: \"30 days\""));
    EXPECT_TRUE(parse_error(prune_payload({{"keep_within", "0d"}})).starts_with("prune.keep_within"));
    EXPECT_EQ(parse_error(prune_payload({{"keep_daily", -1}})),
              "prune.keep_daily: must be between 0 and 1000000");
    EXPECT_EQ(parse_error(prune_payload({{"keep_daily", "7"}})),
              "prune.keep_daily: must be an integer, not a string");
    EXPECT_EQ(parse_error(prune_payload({{"keep_daily", 7}, {"pinned", {"latest"}}})),
              "prune.pinned[0]: \"latest\" is not a snapshot id");
    EXPECT_EQ(parse_error(prune_payload({{"keep_daily", 7}, {"repositories", {"../x"}}})),
              "prune.repositories[0]: \"../x\" is not a valid repository name");
    EXPECT_EQ(parse_error(prune_payload({{"keep_dayly", 7}})),
              "prune.keep_dayly: unknown key (did you mean \"keep_daily\"?)");
    auto stray = snapshot_payload();
    stray["prune"] = {{"keep_daily", 1}};
    EXPECT_EQ(parse_error(stray), "prune: is only allowed with \"action\": \"prune\"");
}

TEST(PruneJob, ObjectLockOptions) {
    auto s3 = [](json extra) {
        json storage = {{"url", "s3://bucket/p"}};
        storage.update(extra);
        return json{{"version", 1}, {"action", "list"}, {"storage", storage}};
    };
    auto job = parse_ok(s3({{"object_lock_mode", "COMPLIANCE"}, {"object_lock_retain_days", 30}}));
    ASSERT_TRUE(job.storage.s3.object_lock);
    EXPECT_EQ(job.storage.s3.object_lock->mode, storage::LockMode::compliance);
    EXPECT_EQ(job.storage.s3.object_lock->days, 30);
    EXPECT_FALSE(job.storage.s3.object_lock->until);
    auto until = parse_ok(
        s3({{"object_lock_mode", "GOVERNANCE"}, {"object_lock_retain_until", "2030-01-01T00:00:00Z"}}));
    ASSERT_TRUE(until.storage.s3.object_lock);
    EXPECT_EQ(until.storage.s3.object_lock->mode, storage::LockMode::governance);
    EXPECT_EQ(until.storage.s3.object_lock->until, parse_rfc3339("2030-01-01T00:00:00Z"));
    EXPECT_EQ(parse_error(s3({{"object_lock_mode", "GOVERNANCE"}})),
              "storage.object_lock_mode: needs object_lock_retain_days or object_lock_retain_until");
    EXPECT_EQ(parse_error(s3({{"object_lock_retain_days", 3}})),
              "storage.object_lock_retain_days: needs object_lock_mode (GOVERNANCE or COMPLIANCE)");
    EXPECT_TRUE(parse_error(s3({{"object_lock_mode", "STRICT"}, {"object_lock_retain_days", 3}}))
                    .starts_with("storage.object_lock_mode: \"STRICT\" is not one of"));
    EXPECT_EQ(parse_error(s3({{"object_lock_mode", "GOVERNANCE"}, {"object_lock_retain_days", 0}})),
              "storage.object_lock_retain_days: must be between 1 and 36500");
    EXPECT_TRUE(parse_error(s3({{"object_lock_mode", "GOVERNANCE"}, {"object_lock_retain_until", "2030"}}))
                    .starts_with("storage.object_lock_retain_until: must be an RFC 3339"));
    EXPECT_TRUE(parse_error(s3({{"object_lock_mode", "GOVERNANCE"},
                                {"object_lock_retain_days", 3},
                                {"object_lock_retain_until", "2030-01-01T00:00:00Z"}}))
                    .starts_with("storage.object_lock_retain_until: cannot be combined"));
    auto file =
        parse_error(json{{"version", 1},
                         {"action", "list"},
                         {"storage", {{"url", "/var/snapshots"}, {"object_lock_mode", "GOVERNANCE"}}}});
    EXPECT_TRUE(file.starts_with("storage.object_lock_mode: Object Lock is an S3 feature")) << file;
}

// ---------------------------------------------------------------- gc

TEST(ParseJob, GcDefaultsAndValues) {
    auto job = parse_ok(R"({"version": 1, "action": "gc", "storage": {"url": "/srv/snapshots"}})");
    EXPECT_EQ(job.action, Action::gc);
    EXPECT_EQ(job.gc.min_age_s, defaults::k_gc_min_age_s);
    EXPECT_FALSE(job.gc.allow_short_age);
    job = parse_ok(R"({"version": 1, "action": "gc", "storage": {"url": "/s"}, "gc": {"min_age_s": 7200}})");
    EXPECT_EQ(job.gc.min_age_s, 7200);
    job = parse_ok(
        R"({"version": 1, "action": "gc", "storage": {"url": "/s"}, "gc": {"min_age_s": 0, "allow_short_age": true}})");
    EXPECT_EQ(job.gc.min_age_s, 0);
    EXPECT_TRUE(job.gc.allow_short_age);
}

TEST(ParseJobErrors, Gc) {
    const json gc = json::parse(R"({"version": 1, "action": "gc", "storage": {"url": "/s"}, "gc": {}})");
    EXPECT_PAYLOAD_ERROR(with(gc, "/gc/min_age_s"_json_pointer, 60),
                         "gc.min_age_s: 60 is below the safety floor of 3600 seconds");
    EXPECT_PAYLOAD_ERROR(with(gc, "/gc/min_age_s"_json_pointer, -1), "gc.min_age_s: must be between 0 and");
    EXPECT_PAYLOAD_ERROR(with(gc, "/gc/min_age_s"_json_pointer, "1d"), "gc.min_age_s: must be an integer");
    EXPECT_PAYLOAD_ERROR(with(gc, "/gc/allow_short_age"_json_pointer, 1),
                         "gc.allow_short_age: must be a boolean");
    EXPECT_PAYLOAD_ERROR(with(gc, "/gc/min_age"_json_pointer, 1), "gc.min_age: unknown key (did you mean");
    EXPECT_PAYLOAD_ERROR(with(verify_payload(), "/gc"_json_pointer, json::object()),
                         "gc: is only allowed with \"action\": \"gc\"");
}

// ---------------------------------------------------------------------------
// sources and defaults (issue 18)
// ---------------------------------------------------------------------------

namespace {

json sources_payload(json sources) {
    return {{"version", 1}, {"storage", {{"url", "file:///var/snapshots"}}}, {"sources", std::move(sources)}};
}

} // namespace

TEST(ParseJobSources, AGitHubOrgWithEveryKey) {
    auto job = parse_ok(sources_payload(json::parse(R"([{"type": "github", "org": "acme",
        "credentials": {"token_env": "GIT_TOKEN"}, "include": ["acme/*"], "exclude": ["acme/old-*"],
        "archived": false, "forks": false, "visibility": "public", "topics": ["backend"],
        "pushed_since": "2026-01-01T00:00:00Z", "max_repositories": 500, "include_wikis": true,
        "refs": ["refs/heads/*"]}])")));
    ASSERT_EQ(job.sources.size(), 1u);
    const auto& s = job.sources[0];
    EXPECT_TRUE(job.repositories.empty());
    EXPECT_EQ(s.type, ForgeType::github);
    EXPECT_EQ(s.api_url, "https://api.github.com");
    EXPECT_EQ(s.scope, SourceScope::org);
    EXPECT_EQ(s.owner, "acme");
    EXPECT_EQ(s.credentials->token_env, "GIT_TOKEN");
    EXPECT_EQ(s.include, std::vector<std::string>{"acme/*"});
    EXPECT_EQ(s.exclude, std::vector<std::string>{"acme/old-*"});
    EXPECT_FALSE(s.archived);
    EXPECT_FALSE(s.forks);
    EXPECT_EQ(s.visibility, Visibility::public_only);
    EXPECT_EQ(s.topics, std::vector<std::string>{"backend"});
    EXPECT_EQ(s.pushed_since, parse_rfc3339("2026-01-01T00:00:00Z"));
    EXPECT_EQ(s.max_repositories, 500);
    EXPECT_TRUE(s.include_wikis);
    EXPECT_EQ(s.transport, CloneTransport::https);
    EXPECT_EQ(s.refs, std::vector<std::string>{"refs/heads/*"});
    EXPECT_EQ(s.path, "sources[0]");
}

TEST(ParseJobSources, DefaultsPerForge) {
    auto job = parse_ok(sources_payload(json::parse(R"([{"type": "gitlab", "group": "grp/sub"},
        {"type": "gitea", "user": "bob", "api_url": "https://codeberg.org/api/v1/"},
        {"type": "bitbucket", "workspace": "ws"}, {"type": "github", "team": "acme/core"}])")));
    ASSERT_EQ(job.sources.size(), 4u);
    EXPECT_EQ(job.sources[0].api_url, "https://gitlab.com/api/v4");
    EXPECT_EQ(job.sources[0].owner, "grp/sub");
    EXPECT_TRUE(job.sources[0].archived);
    EXPECT_TRUE(job.sources[0].forks);
    EXPECT_EQ(job.sources[0].visibility, Visibility::all);
    EXPECT_EQ(job.sources[0].refs, (std::vector<std::string>{"refs/heads/*", "refs/tags/*"}));
    EXPECT_EQ(job.sources[1].api_url, "https://codeberg.org/api/v1");
    EXPECT_EQ(job.sources[2].api_url, "https://api.bitbucket.org/2.0");
    EXPECT_EQ(job.sources[3].scope, SourceScope::team);
    // pushed_since as a span back from now.
    auto span =
        parse_ok(sources_payload(json::parse(R"([{"type": "github", "org": "a", "pushed_since": "90d"}])")));
    ASSERT_TRUE(span.sources[0].pushed_since);
    EXPECT_LT(*span.sources[0].pushed_since, Clock::now() - std::chrono::hours(24 * 89));
}

TEST(ParseJobSources, Errors) {
    auto err = [](const char* sources) { return parse_error(sources_payload(json::parse(sources))); };
    EXPECT_EQ(err(R"([{"type": "svn", "org": "a"}])"),
              "sources[0].type: \"svn\" is not one of github, gitlab, gitea, bitbucket");
    EXPECT_EQ(err(R"([{"type": "github"}])"), "sources[0]: needs one of org, user, team");
    EXPECT_EQ(err(R"([{"type": "github", "group": "a"}])"),
              "sources[0].group: is not a github scope (use one of org, user, team)");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "user": "b"}])"),
              "sources[0].user: cannot be combined with org");
    EXPECT_EQ(err(R"([{"type": "github", "team": "core"}])"),
              "sources[0].team: \"core\" must be \"org/team-slug\"");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a/b"}])"), "sources[0].org: \"a/b\" is not a valid name");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "api_url": "ftp://x"}])"),
              "sources[0].api_url: must be an https:// URL without credentials");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "api_url": "https://u:p@x"}])"),
              "sources[0].api_url: must be an https:// URL without credentials");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "api_url": "https://"}])"),
              "sources[0].api_url: must be an https:// URL without credentials");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "api_url": "http://x"}])"),
              "sources[0].api_url: http:// needs options.allow_http");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "credentials": {"token_env": "UNSET"}}])"),
              "sources[0].credentials.token_env: environment variable UNSET is not set");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "credentials": {"ssh_key_env": "GIT_TOKEN"}}])"),
              "sources[0].credentials.ssh_key_env: needs \"transport\": \"ssh\"");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "visibility": "secret"}])"),
              "sources[0].visibility: \"secret\" is not one of all, public, private");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "max_repositories": 0}])"),
              "sources[0].max_repositories: must be between 1 and 1000000");
    EXPECT_EQ(
        err(R"([{"type": "github", "org": "a", "pushed_since": "last week"}])"),
        "sources[0].pushed_since: \"last week\" is neither an RFC 3339 UTC time (\"2026-01-01T00:00:00Z\") "
        "nor a span such as \"90d\"");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "include": [""]}])"),
              "sources[0].include[0]: must be a non-empty printable string");
    EXPECT_EQ(err(R"([{"type": "github", "org": "a", "wikis": true}])"), "sources[0].wikis: unknown key");
    EXPECT_EQ(err("[]"), "sources: must list at least one source");
    auto restore = sources_payload(json::parse(R"([{"type": "github", "org": "a"}])"));
    restore["action"] = "list";
    EXPECT_EQ(parse_error(restore), "sources: is only allowed with \"action\": \"snapshot\"");
}

TEST(ParseJobSources, DefaultsFillExplicitRepositoriesByTransport) {
    auto job = parse_ok(json::parse(R"({"version": 1, "storage": {"url": "file:///s"},
        "defaults": {"refs": ["refs/heads/main"], "credentials": {"token_env": "GIT_TOKEN", "ssh_key_env": "GIT_TOKEN"}},
        "repositories": [{"url": "https://h/a.git"}, {"url": "git@h:b.git"}, {"url": "git://h/c.git"},
                         {"url": "https://h/d.git", "refs": ["refs/tags/*"], "credentials": {"token_env": "GIT_TOKEN",
                          "username": "me"}}]})"));
    ASSERT_EQ(job.repositories.size(), 4u);
    EXPECT_EQ(job.repositories[0].refs, std::vector<std::string>{"refs/heads/main"});
    EXPECT_EQ(job.repositories[0].credentials->token_env, "GIT_TOKEN");
    EXPECT_EQ(job.repositories[0].credentials->username, "x-access-token");
    EXPECT_EQ(job.repositories[1].credentials->ssh_key_env, "GIT_TOKEN");
    EXPECT_EQ(job.repositories[1].credentials->token_env, "");
    EXPECT_FALSE(job.repositories[2].credentials);
    EXPECT_EQ(job.repositories[3].refs, std::vector<std::string>{"refs/tags/*"});
    EXPECT_EQ(job.repositories[3].credentials->username, "me");
    EXPECT_EQ(parse_error(json::parse(R"({"version": 1, "storage": {"url": "file:///s"},
        "defaults": {"credentials": {"token_env": "UNSET"}}, "repositories": [{"url": "https://h/a.git"}]})")),
              "defaults.credentials.token_env: environment variable UNSET is not set");
}

TEST(ParseJob, HttpFollowRedirects) {
    EXPECT_EQ(parse_ok(snapshot_payload()).options.http.follow_redirects, RedirectPolicy::same_origin);
    for (auto policy :
         {RedirectPolicy::same_origin, RedirectPolicy::any_without_credentials, RedirectPolicy::never}) {
        json payload = snapshot_payload();
        payload["options"]["http"] = {{"follow_redirects", std::string(redirect_policy_name(policy))}};
        EXPECT_EQ(parse_ok(payload).options.http.follow_redirects, policy);
    }
    json bad = snapshot_payload();
    bad["options"]["http"] = {{"follow_redirects", "always"}};
    EXPECT_NE(parse_error(bad).find("options.http.follow_redirects"), std::string::npos) << parse_error(bad);
    bad["options"]["http"] = {{"follow", "never"}};
    EXPECT_NE(parse_error(bad).find("follow"), std::string::npos);
}

TEST(JobLfs, ModesUrlsAndDefaults) {
    auto plain = parse_ok(snapshot_payload());
    EXPECT_EQ(plain.repositories[0].lfs, LfsMode::automatic);
    EXPECT_FALSE(plain.repositories[0].lfs_url);

    auto p = snapshot_payload();
    p["repositories"][0]["lfs"] = false;
    p["repositories"][0]["lfs_url"] = "https://lfs.example.com/org/app";
    auto job = parse_ok(p);
    EXPECT_EQ(job.repositories[0].lfs, LfsMode::off);
    EXPECT_EQ(job.repositories[0].lfs_url, "https://lfs.example.com/org/app");

    p = snapshot_payload();
    p["defaults"] = {{"lfs", true}};
    p["repositories"].push_back({{"url", "https://git.example.com/org/b.git"}, {"lfs", "auto"}});
    job = parse_ok(p);
    EXPECT_EQ(job.repositories[0].lfs, LfsMode::on);
    EXPECT_EQ(job.repositories[1].lfs, LfsMode::automatic);

    for (const json& bad : {json("yes"), json(1), json("true"), json(nullptr)}) {
        p = snapshot_payload();
        p["repositories"][0]["lfs"] = bad;
        EXPECT_NE(parse_error(p).find("repositories[0].lfs: must be true, false or \"auto\""), std::string::npos)
            << bad.dump();
    }
    for (const char* url : {"ftp://h/x", "https://user:pw@h/x", "http://h/x", "https://", "https://h/a b"}) {
        p = snapshot_payload();
        p["repositories"][0]["lfs_url"] = url;
        auto message = parse_error(p);
        EXPECT_NE(message.find("repositories[0].lfs_url"), std::string::npos) << message;
        EXPECT_EQ(message.find(":pw@"), std::string::npos) << message;
    }
    p = snapshot_payload();
    p["defaults"] = {{"lfs", "sometimes"}};
    EXPECT_NE(parse_error(p).find("defaults.lfs"), std::string::npos);
}

TEST(JobLfs, SourcesCarryTheirMode) {
    auto job = parse_ok(sources_payload(json::parse(R"([{"type": "github", "org": "acme", "lfs": false}])")));
    ASSERT_EQ(job.sources.size(), 1u);
    EXPECT_EQ(job.sources[0].lfs, LfsMode::off);
    EXPECT_NE(parse_error(sources_payload(json::parse(R"([{"type": "github", "org": "acme", "lfs": "on"}])")))
                  .find("sources[0].lfs"),
              std::string::npos);
}
