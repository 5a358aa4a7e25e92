// docs/job.schema.json, docs/job-payload.md and examples/ against the parser
// they describe: the same keys and defaults, and every example valid. Then
// every JSON block of every Markdown doc (the AWS runbook's task and job
// definitions, schedules, alarms, bucket settings and IAM policies among
// them) against the code it configures, so the docs cannot rot.
#include "snapshotter/cli/metrics.hpp"
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/fleet.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/storage/backends.hpp"
#include "snapshotter/util/fs.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <utility>

using namespace snapshotter;
using nlohmann::json;

namespace {

const fs::path k_source_dir = SNAPSHOTTER_SOURCE_DIR;

json load_json(const fs::path& path) {
    auto text = read_file(path);
    EXPECT_TRUE(text) << text.error().message;
    if (!text)
        return nullptr;
    try {
        return json::parse(*text);
    } catch (const json::parse_error& e) {
        ADD_FAILURE() << path << ": " << e.what();
        return nullptr;
    }
}

const json& schema() {
    static const json s = load_json(k_source_dir / "docs" / "job.schema.json");
    return s;
}

// The schema node describing the payload object `name` of job::known_keys().
const json& schema_object(const std::string& name) {
    if (name == "job")
        return schema();
    return schema().at("$defs").at(name);
}

const json& property(const std::string& object, const std::string& key) {
    return schema_object(object).at("properties").at(key);
}

// Every environment variable is set, so token_env always resolves.
std::optional<std::string> fake_env(const std::string& name) {
    if (name == "HOME")
        return "/home/tester";
    if (name.ends_with("_INDEX")) // shard index of an array job
        return "0";
    return "fake-value-for-" + name;
}

// *.json files below `dir`, skipping hidden directories (generated demo data).
std::vector<fs::path> json_files_below(const fs::path& dir) {
    std::vector<fs::path> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        if (it->is_directory() && it->path().filename().string().starts_with(".")) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file() && it->path().extension() == ".json")
            out.push_back(it->path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// A ```json block of a Markdown file and the heading it sits under.
struct JsonBlock {
    std::string heading; // the nearest "#" line above, without the #s
    std::string body;
};

// `line` without leading spaces.
std::string_view unindented(std::string_view line) {
    auto first = line.find_first_not_of(' ');
    return first == std::string_view::npos ? std::string_view{} : line.substr(first);
}

// The ```json blocks of a Markdown file, in order; fences may be indented (in
// a list item).
std::vector<JsonBlock> json_blocks_with_headings(const std::string& markdown) {
    std::vector<JsonBlock> out;
    std::string heading;
    std::optional<JsonBlock> open; // inside a ```json block
    std::size_t line_start = 0;
    while (line_start < markdown.size()) {
        auto line_end = markdown.find('\n', line_start);
        if (line_end == std::string::npos)
            line_end = markdown.size();
        std::string_view line(markdown.data() + line_start, line_end - line_start);
        if (open) {
            if (unindented(line) == "```")
                out.push_back(std::move(*std::exchange(open, std::nullopt)));
            else
                open->body.append(line).append("\n");
        } else if (line.starts_with("#")) {
            heading = std::string(line.substr(line.find_first_not_of("# ")));
        } else if (unindented(line) == "```json") {
            open = JsonBlock{heading, ""};
        }
        line_start = line_end + 1;
    }
    return out;
}

// The bodies of the ```json blocks of a Markdown file.
std::vector<std::string> json_blocks(const std::string& markdown) {
    std::vector<std::string> out;
    for (auto& block : json_blocks_with_headings(markdown))
        out.push_back(std::move(block.body));
    return out;
}

// README.md, ARCHITECTURE.md and docs/*.md.
std::vector<fs::path> markdown_docs() {
    std::vector<fs::path> docs{k_source_dir / "README.md", k_source_dir / "ARCHITECTURE.md"};
    for (const auto& entry : fs::directory_iterator(k_source_dir / "docs"))
        if (entry.is_regular_file() && entry.path().extension() == ".md")
            docs.push_back(entry.path());
    std::sort(docs.begin(), docs.end());
    return docs;
}

// The ```json blocks of `path` (a doc of the source tree), parsed.
std::vector<std::pair<JsonBlock, json>> parsed_blocks(const fs::path& path) {
    auto markdown = read_file(path);
    EXPECT_TRUE(markdown) << path;
    std::vector<std::pair<JsonBlock, json>> out;
    if (!markdown)
        return out;
    for (auto& block : json_blocks_with_headings(*markdown)) {
        json parsed = json::parse(block.body, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << path << ":\n" << block.body;
        if (!parsed.is_discarded())
            out.emplace_back(std::move(block), std::move(parsed));
    }
    return out;
}

} // namespace

TEST(DocsSchema, IsADraft202012ObjectSchema) {
    ASSERT_TRUE(schema().is_object());
    EXPECT_EQ(schema().at("$schema"), "https://json-schema.org/draft/2020-12/schema");
    EXPECT_EQ(schema().at("type"), "object");
}

TEST(DocsSchema, PropertiesAreExactlyTheParsersKeys) {
    for (const auto& [object, keys] : job::known_keys()) {
        SCOPED_TRACE(object);
        const json& node = schema_object(object);
        ASSERT_TRUE(node.contains("properties")) << object;
        std::set<std::string> in_schema;
        for (const auto& [key, value] : node.at("properties").items())
            in_schema.insert(key);
        std::set<std::string> in_parser(keys.begin(), keys.end());
        EXPECT_EQ(in_schema, in_parser);
        EXPECT_EQ(node.value("type", ""), "object");
        EXPECT_EQ(node.value("additionalProperties", json(true)), json(false));
    }
}

TEST(DocsSchema, EveryObjectForbidsAdditionalProperties) {
    std::vector<std::string> offenders;
    auto walk = [&](auto&& self, const json& node, const std::string& where) -> void {
        if (node.is_object()) {
            if (node.contains("properties") && node.value("additionalProperties", json(true)) != json(false))
                offenders.push_back(where);
            for (const auto& [key, value] : node.items())
                if (key != "if" && key != "then" && key != "else" && key != "not")
                    self(self, value, where + "/" + key);
        } else if (node.is_array()) {
            for (std::size_t i = 0; i < node.size(); ++i)
                self(self, node[i], where + "/" + std::to_string(i));
        }
    };
    // if/then/else/not clauses test values, they do not describe an object.
    walk(walk, schema(), "#");
    EXPECT_TRUE(offenders.empty()) << offenders.front();
}

TEST(DocsSchema, DefaultsMatchDefaultsHpp) {
    namespace d = job::defaults;
    EXPECT_EQ(property("job", "version").at("const"), d::k_version);
    EXPECT_EQ(property("job", "action").at("default"), "snapshot");
    EXPECT_EQ(property("options", "timeout_s").at("default"), d::k_timeout_s);
    EXPECT_EQ(property("options", "deadline_s").at("default"), d::k_deadline_s);
    EXPECT_EQ(property("options", "concurrency").at("default"), d::k_concurrency);
    EXPECT_EQ(property("options", "max_per_host").at("default"), d::k_max_per_host);
    EXPECT_EQ(property("options", "retries").at("default"), d::k_retries);
    EXPECT_EQ(property("options", "full_every").at("default"), d::k_full_every);
    EXPECT_EQ(property("options", "full_size_ratio").at("default"), d::k_full_size_ratio);
    EXPECT_EQ(property("options", "grace_s").at("default"), d::k_grace_s);
    EXPECT_EQ(property("options", "allow_http").at("default"), d::k_allow_http);
    EXPECT_EQ(property("options", "engine").at("default"), std::string(d::k_engine));
    EXPECT_EQ(property("options", "allow_file").at("default"), d::k_allow_file);
    EXPECT_EQ(property("options", "max_refs").at("default"), d::k_max_refs);
    EXPECT_EQ(property("options", "max_pack_bytes").at("default"), d::k_max_pack_bytes);
    EXPECT_EQ(property("credentials", "username").at("default"), std::string(d::k_username));
    EXPECT_EQ(property("restore", "snapshot").at("default"), std::string(d::k_snapshot));
    EXPECT_EQ(property("verify", "snapshot").at("default"), std::string(d::k_snapshot));
    EXPECT_EQ(property("verify", "drill").at("default"), d::k_drill);
    EXPECT_EQ(property("gc", "min_age_s").at("default"), d::k_gc_min_age_s);
    EXPECT_EQ(property("gc", "allow_short_age").at("default"), d::k_gc_allow_short_age);
    EXPECT_EQ(property("restore", "preserved").at("default"), job::RestoreSpec{}.preserved);
    EXPECT_EQ(property("push_to", "force").at("default"), job::PushTo{}.force);
    for (const char* key :
         {"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"}) {
        EXPECT_EQ(property("prune", key).at("default"), d::k_keep) << key;
        EXPECT_EQ(property("prune", key).at("maximum"), d::k_max_keep) << key;
    }
    EXPECT_EQ(property("prune", "rebase").at("default"), d::k_rebase);
    EXPECT_EQ(property("storage", "object_lock_retain_days").at("maximum"), d::k_max_lock_days);
    std::vector<std::string> refs(d::k_refs.begin(), d::k_refs.end());
    EXPECT_EQ(property("repository", "refs").at("default"), json(refs));
    EXPECT_EQ(property("job", "repositories").at("maxItems"), d::k_max_repositories);
}

TEST(DocsSchema, EnumsAndLimitsMatchTheParser) {
    std::vector<std::string> actions;
    for (auto a : {job::Action::snapshot, job::Action::restore, job::Action::verify, job::Action::list,
                   job::Action::merge_reports, job::Action::prune, job::Action::gc})
        actions.emplace_back(job::action_name(a));
    EXPECT_EQ(property("job", "action").at("enum"), json(actions));
    EXPECT_EQ(property("options", "timeout_s").at("minimum"), 1);
    EXPECT_EQ(property("options", "timeout_s").at("maximum"), 7 * 24 * 3600);
    EXPECT_EQ(property("job", "job_id").at("maxLength"), 128);
    EXPECT_EQ(schema().at("$defs").at("repository_name").at("maxLength"), 200);
    EXPECT_EQ(property("job", "repositories").at("minItems"), 1);
    EXPECT_EQ(property("repository", "refs").at("minItems"), 1);
    EXPECT_EQ(schema().at("required"), json({"version", "storage"}));
    EXPECT_EQ(schema_object("storage").at("required"), json({"url"}));
    EXPECT_EQ(schema_object("repository").at("required"), json({"url"}));
    EXPECT_EQ(schema_object("credentials").at("anyOf"),
              json::parse(R"([{"required": ["token_env"]}, {"required": ["ssh_key_env"]}])"));
    // One repository (with target or push_to), or several with target_dir.
    EXPECT_EQ(schema_object("restore").at("oneOf").at(0).at("required"), json({"repository"}));
    EXPECT_EQ(schema_object("restore").at("oneOf").at(1).at("required"),
              json({"repositories", "target_dir"}));
    EXPECT_EQ(schema_object("push_to").at("required"), json({"url"}));
    EXPECT_EQ(schema_object("shard").at("required"), json({"count"}));
    EXPECT_EQ(property("storage", "addressing").at("enum"), json({"virtual", "path"}));
    EXPECT_EQ(property("storage", "sse").at("enum"), json({"AES256", "aws:kms"}));
    EXPECT_EQ(property("options", "engine").at("enum"), json({"auto", "stream", "cli"}));
    EXPECT_EQ(property("storage", "object_lock_mode").at("enum"), json({"GOVERNANCE", "COMPLIANCE"}));
}

TEST(DocsSchema, EveryJsonFileInDocsAndExamplesParses) {
    std::size_t count = 0;
    for (const char* dir : {"docs", "examples"}) {
        ASSERT_TRUE(fs::is_directory(k_source_dir / dir)) << dir;
        for (const auto& path : json_files_below(k_source_dir / dir)) {
            SCOPED_TRACE(path.string());
            EXPECT_FALSE(load_json(path).is_null());
            ++count;
        }
    }
    EXPECT_GE(count, 4u); // the schema and at least the three example payloads
}

TEST(DocsSchema, EveryExamplePayloadIsValid) {
    std::set<std::string> actions;
    for (const auto& path : json_files_below(k_source_dir / "examples")) {
        SCOPED_TRACE(path.string());
        auto text = read_file(path);
        ASSERT_TRUE(text);
        auto parsed = job::parse_job(*text, fake_env);
        EXPECT_TRUE(parsed) << parsed.error().message;
        if (parsed)
            actions.insert(std::string(job::action_name(parsed->action)));
    }
    for (const char* action : {"snapshot", "restore", "verify"})
        EXPECT_TRUE(actions.contains(action)) << "no example payload for " << action;
}

TEST(DocsSchema, EveryJsonBlockOfThePayloadGuideIsAValidPayload) {
    auto markdown = read_file(k_source_dir / "docs" / "job-payload.md");
    ASSERT_TRUE(markdown) << markdown.error().message;
    auto blocks = json_blocks(*markdown);
    EXPECT_GE(blocks.size(), 4u); // one per action at least
    for (const auto& block : blocks) {
        SCOPED_TRACE(block);
        auto parsed = job::parse_job(block, fake_env);
        EXPECT_TRUE(parsed) << parsed.error().message;
    }
}

TEST(DocsSchema, EveryJsonBlockOfEveryMarkdownDocParses) {
    std::size_t count = 0;
    for (const auto& path : markdown_docs()) {
        auto markdown = read_file(path);
        ASSERT_TRUE(markdown) << path << ": " << markdown.error().message;
        for (const auto& block : json_blocks(*markdown)) {
            SCOPED_TRACE(path.string() + ":\n" + block);
            EXPECT_TRUE(json::accept(block));
            ++count;
        }
    }
    EXPECT_GE(count, 3u); // at least the IAM policies of docs/SECURITY.md
}

// ---------------------------------------------------------------------------
// Every JSON document of the docs, checked against what it configures.
// ---------------------------------------------------------------------------

namespace {

// The variables the binary reads its payload from.
const std::set<std::string> k_payload_vars{"SNAPSHOTTER_JOB_JSON", "SNAPSHOTTER_JOB_URL"};

enum class DocKind {
    payload,
    manifest,
    manifest_table,
    manifest_delta,
    iam_policy,
    ecs_task_definition,
    batch_job_definition,
    batch_submit_job,
    state_machine,
    schedule,
    alarm,
    public_access_block,
    versioning,
    encryption,
    object_lock,
    lifecycle,
    unknown
};

DocKind kind_of(const json& j) {
    if (!j.is_object())
        return DocKind::unknown;
    auto has = [&](const char* key) { return j.contains(key); };
    if (has("version") && has("storage"))
        return DocKind::payload;
    if (has("schema_version") && has("snapshot_id"))
        return DocKind::manifest;
    if (has("refs") && has("bundles") && has("preserved"))
        return DocKind::manifest_table;
    if (has("base") && has("depth"))
        return DocKind::manifest_delta;
    if (has("Version") && has("Statement"))
        return DocKind::iam_policy;
    if (has("family") && has("containerDefinitions"))
        return DocKind::ecs_task_definition;
    if (has("jobDefinitionName"))
        return DocKind::batch_job_definition;
    if (has("jobName") && has("jobQueue"))
        return DocKind::batch_submit_job;
    if (has("StartAt") && has("States"))
        return DocKind::state_machine;
    if (has("ScheduleExpression") && has("Target"))
        return DocKind::schedule;
    if (has("AlarmName") && has("MetricName"))
        return DocKind::alarm;
    if (has("BlockPublicAcls"))
        return DocKind::public_access_block;
    if (j.size() == 1 && has("Status"))
        return DocKind::versioning;
    if (has("ObjectLockEnabled"))
        return DocKind::object_lock;
    if (has("Rules") && j.at("Rules").is_array() && !j.at("Rules").empty()) {
        const json& rule = j.at("Rules").front();
        if (rule.contains("ApplyServerSideEncryptionByDefault"))
            return DocKind::encryption;
        if (rule.contains("Status"))
            return DocKind::lifecycle;
    }
    return DocKind::unknown;
}

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The variables a container is given: `entries` of {name|Name, value|Value...}.
std::map<std::string, json> variables(const json& entries) {
    std::map<std::string, json> out;
    if (!entries.is_array())
        return out;
    for (const auto& e : entries) {
        for (const char* name_key : {"name", "Name"})
            if (e.contains(name_key))
                out[e.at(name_key).get<std::string>()] = e;
    }
    return out;
}

// An environment that knows exactly `names` (so parse_job fails when a payload
// needs a token variable the container does not get).
job::GetEnv env_of(const std::set<std::string>& names) {
    return [names](const std::string& name) -> std::optional<std::string> {
        if (!names.contains(name))
            return std::nullopt;
        return name.ends_with("_INDEX") ? "0" : "value-of-" + name;
    };
}

// `secrets` entries must name a Secrets Manager or SSM parameter ARN.
void check_secrets(const json& secrets, const std::string& where) {
    if (secrets.is_null())
        return;
    ASSERT_TRUE(secrets.is_array()) << where;
    for (const auto& s : secrets) {
        EXPECT_FALSE(str(s, "name").empty()) << where;
        auto from = str(s, "valueFrom");
        EXPECT_TRUE(from.starts_with("arn:aws:secretsmanager:") || from.starts_with("arn:aws:ssm:"))
            << where << ": " << from;
    }
}

void check_awslogs(const json& log, const std::string& where) {
    EXPECT_EQ(str(log, "logDriver"), "awslogs") << where;
    for (const char* option : {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"})
        EXPECT_FALSE(str(log.value("options", json::object()), option).empty()) << where << ": " << option;
}

// A payload given in `vars` (SNAPSHOTTER_JOB_JSON, parsed with an environment
// of `env_names`), or nullopt when it comes from SNAPSHOTTER_JOB_URL.
std::optional<job::Job> payload_in(const std::map<std::string, json>& vars,
                                   const std::set<std::string>& env_names, const std::string& where) {
    std::set<std::string> given;
    for (const auto& [name, entry] : vars)
        if (k_payload_vars.contains(name))
            given.insert(name);
    EXPECT_EQ(given.size(), 1u) << where << ": exactly one of SNAPSHOTTER_JOB_JSON, SNAPSHOTTER_JOB_URL";
    if (given.contains("SNAPSHOTTER_JOB_URL")) {
        auto url = str(vars.at("SNAPSHOTTER_JOB_URL"), "value");
        EXPECT_TRUE(url.starts_with("s3://")) << where << ": " << url;
        return std::nullopt;
    }
    if (!given.contains("SNAPSHOTTER_JOB_JSON"))
        return std::nullopt;
    auto parsed = job::parse_job(str(vars.at("SNAPSHOTTER_JOB_JSON"), "value"), env_of(env_names));
    EXPECT_TRUE(parsed) << where << ": " << parsed.error().message;
    if (!parsed)
        return std::nullopt;
    return *parsed;
}

std::set<std::string> names_of(const std::map<std::string, json>& vars) {
    std::set<std::string> out{"HOME"}; // set by the image
    for (const auto& [name, entry] : vars)
        out.insert(name);
    return out;
}

// Everything the docs define, gathered so documents can be checked against each other.
struct Docs {
    std::map<DocKind, std::vector<std::pair<std::string, json>>> by_kind; // where, document
};

const Docs& docs() {
    static const Docs d = [] {
        Docs out;
        for (const auto& path : markdown_docs())
            for (auto& [block, parsed] : parsed_blocks(path))
                out.by_kind[kind_of(parsed)].emplace_back(
                    path.filename().string() + " (under \"" + block.heading + "\")", std::move(parsed));
        return out;
    }();
    return d;
}

const std::vector<std::pair<std::string, json>>& documents(DocKind kind) {
    static const std::vector<std::pair<std::string, json>> none;
    auto it = docs().by_kind.find(kind);
    return it == docs().by_kind.end() ? none : it->second;
}

// The Batch job definition a submission names (by name or ARN).
const json* job_definition(const std::string& reference) {
    for (const auto& [where, d] : documents(DocKind::batch_job_definition)) {
        auto name = str(d, "jobDefinitionName");
        if (reference == name || reference.ends_with("job-definition/" + name))
            return &d;
    }
    return nullptr;
}

// The variables a Batch job of `definition` gets with `overrides`, and the
// shard index when it is an array job.
std::pair<std::map<std::string, json>, std::set<std::string>>
batch_environment(const json& definition, const json& overrides, bool array) {
    const json& container = definition.at("containerProperties");
    auto vars = variables(container.value("environment", json::array()));
    for (auto& [name, entry] : variables(overrides))
        vars[name] = entry;
    auto names = names_of(vars);
    for (const auto& [name, entry] : variables(container.value("secrets", json::array())))
        names.insert(name);
    if (array)
        names.insert("AWS_BATCH_JOB_ARRAY_INDEX");
    return {vars, names};
}

// A sharded payload runs as an array job of exactly `shard.count` children.
void check_shards(const job::Job& payload, std::optional<int> array_size, const std::string& where) {
    if (payload.action != job::Action::snapshot || !payload.options.shard) {
        EXPECT_FALSE(array_size) << where << ": an array job whose payload is not sharded";
        return;
    }
    ASSERT_TRUE(array_size) << where << ": a sharded payload outside an array job";
    EXPECT_EQ(payload.options.shard->count, *array_size) << where;
    EXPECT_GE(*array_size, 2) << where;
    EXPECT_LE(*array_size, 10000) << where;
}

// The Batch attempt timeout leaves the job its deadline plus the SIGTERM grace.
void check_batch_timeout(const json& definition, const job::Job& payload, const std::string& where) {
    if (payload.options.deadline_s == 0)
        return;
    auto timeout = definition.value("timeout", json::object()).value("attemptDurationSeconds", 0);
    EXPECT_GT(timeout, payload.options.deadline_s + payload.options.grace_s) << where;
}

// `node` with every "key.$" (a Step Functions path or intrinsic) replaced by
// "key": a sample value, as Step Functions would fill it in.
json materialize(const json& node) {
    if (node.is_array()) {
        json out = json::array();
        for (const auto& v : node)
            out.push_back(materialize(v));
        return out;
    }
    if (!node.is_object())
        return node;
    json out = json::object();
    for (const auto& [key, value] : node.items()) {
        if (key.ends_with(".$"))
            out[key.substr(0, key.size() - 2)] = "nightly-0d4c9e6a-2f7b-4f43-9b1e-5a6c8d7e9f01";
        else
            out[key] = materialize(value);
    }
    return out;
}

} // namespace

TEST(DocsAws, EveryJsonBlockIsADocumentWeKnowHowToCheck) {
    for (const auto& [where, d] : documents(DocKind::unknown))
        ADD_FAILURE() << where << ": a JSON block this test cannot classify, so nothing checks it:\n"
                      << d.dump(2);
    // The runbook has one of each.
    for (auto kind : {DocKind::ecs_task_definition, DocKind::batch_job_definition, DocKind::batch_submit_job,
                      DocKind::state_machine, DocKind::schedule, DocKind::alarm, DocKind::public_access_block,
                      DocKind::versioning, DocKind::encryption, DocKind::object_lock, DocKind::lifecycle})
        EXPECT_FALSE(documents(kind).empty()) << "no document of kind " << static_cast<int>(kind);
}

TEST(DocsAws, EveryPayloadIsAcceptedByTheParser) {
    for (const auto& [where, d] : documents(DocKind::payload)) {
        auto parsed = job::parse_job(d.dump(), fake_env);
        EXPECT_TRUE(parsed) << where << ": " << parsed.error().message << "\n" << d.dump();
    }
    for (const auto& [where, d] : documents(DocKind::manifest))
        EXPECT_EQ(d.at("schema_version"), snapshot::k_manifest_schema_version) << where;
}

// docs/manifest.md's delta table example applies to its full table example
// as the reader applies a delta, and its member table describes every member.
TEST(DocsManifest, TheDeltaTableExampleAppliesToTheTableExample) {
    ASSERT_EQ(documents(DocKind::manifest_table).size(), 1u);
    ASSERT_EQ(documents(DocKind::manifest_delta).size(), 1u);
    auto markdown = read_file(k_source_dir / "docs" / "manifest.md");
    ASSERT_TRUE(markdown);
    snapshot::Manifest m;
    m.repository = "org/app";
    ASSERT_TRUE(snapshot::apply_table(m, documents(DocKind::manifest_table).front().second.dump()));
    for (const auto& [where, d] : documents(DocKind::manifest_delta)) {
        auto parsed = snapshot::parse_table(d.dump(), m.repository, snapshot::k_max_table_depth);
        ASSERT_TRUE(parsed) << where << ": " << parsed.error().message;
        ASSERT_TRUE(parsed->base) << where;
        EXPECT_EQ(parsed->base->count, m.refs.size()) << where;
        auto applied = snapshot::apply_table(m, *parsed);
        EXPECT_TRUE(applied) << where << ": " << applied.error().message;
        for (const auto& [key, value] : d.items())
            EXPECT_NE(markdown->find("`" + key + "`"), std::string::npos) << key << " is not described";
    }
}

TEST(DocsAws, IamPoliciesAreWellFormed) {
    ASSERT_GE(documents(DocKind::iam_policy).size(), 5u);
    for (const auto& [where, d] : documents(DocKind::iam_policy)) {
        SCOPED_TRACE(where + "\n" + d.dump(2));
        EXPECT_EQ(d.at("Version"), "2012-10-17");
        ASSERT_TRUE(d.at("Statement").is_array());
        ASSERT_FALSE(d.at("Statement").empty());
        for (const auto& st : d.at("Statement")) {
            EXPECT_TRUE(st.value("Effect", "") == "Allow" || st.value("Effect", "") == "Deny");
            ASSERT_TRUE(st.contains("Action") || st.contains("NotAction"));
            json actions = st.contains("Action") ? st.at("Action") : st.at("NotAction");
            if (actions.is_string())
                actions = json::array({actions});
            ASSERT_FALSE(actions.empty());
            for (const auto& a : actions)
                EXPECT_TRUE(std::regex_match(a.get<std::string>(), std::regex("^[a-z0-9-]+:[A-Za-z*]+$")))
                    << a;
            if (st.contains("Principal")) // a trust policy
                EXPECT_EQ(actions, json::array({"sts:AssumeRole"}));
            else
                EXPECT_TRUE(st.contains("Resource") || st.contains("NotResource"));
        }
    }
}

TEST(DocsAws, SecurityRolesAllowExactlyWhatTheS3BackendCalls) {
    std::map<std::string, std::set<std::string>> allowed; // heading -> IAM actions
    for (auto& [block, d] : parsed_blocks(k_source_dir / "docs" / "SECURITY.md")) {
        for (const auto& st : d.at("Statement")) {
            if (st.value("Effect", "") != "Allow" || !st.contains("Action"))
                continue;
            json actions = st.at("Action").is_string() ? json::array({st.at("Action")}) : st.at("Action");
            for (const auto& a : actions)
                allowed[block.heading].insert(a.get<std::string>());
        }
    }
    ASSERT_TRUE(allowed.contains("Snapshot role"));
    ASSERT_TRUE(allowed.contains("Restore role"));
    ASSERT_FALSE(storage::s3_operations().empty());
    for (const auto& op : storage::s3_operations()) {
        std::string action(op.iam_action);
        SCOPED_TRACE(std::string(op.api) + " needs " + action);
        const bool reads = op.access == storage::S3Access::read;
        const bool writes = op.access == storage::S3Access::write;
        // snapshot, verify, list: reads and writes, never deletes (prune gets its own role).
        EXPECT_EQ(allowed["Snapshot role"].contains(action), reads || writes || action == "s3:GetObject");
        // restore, verify, list: read-only.
        EXPECT_EQ(allowed["Restore role"].contains(action), reads || action == "s3:GetObject");
    }
}

TEST(DocsAws, EcsTaskDefinitionsPassThePayloadAndTheTokens) {
    for (const auto& [where, d] : documents(DocKind::ecs_task_definition)) {
        SCOPED_TRACE(where);
        EXPECT_FALSE(str(d, "family").empty());
        EXPECT_NE(d.value("requiresCompatibilities", json::array()).dump().find("FARGATE"),
                  std::string::npos);
        EXPECT_EQ(str(d, "networkMode"), "awsvpc"); // required on Fargate
        EXPECT_FALSE(str(d, "cpu").empty());
        EXPECT_FALSE(str(d, "memory").empty());
        EXPECT_TRUE(str(d, "executionRoleArn").starts_with("arn:aws:iam::")); // secrets and awslogs need it
        EXPECT_TRUE(str(d, "taskRoleArn").starts_with("arn:aws:iam::"));      // snapshotter's S3 credentials
        ASSERT_FALSE(d.at("containerDefinitions").empty());
        for (const auto& c : d.at("containerDefinitions")) {
            EXPECT_FALSE(str(c, "name").empty());
            EXPECT_FALSE(str(c, "image").empty());
            check_secrets(c.value("secrets", json()), where);
            check_awslogs(c.value("logConfiguration", json::object()), where);
            auto vars = variables(c.value("environment", json::array()));
            auto names = names_of(vars);
            for (const auto& [name, entry] : variables(c.value("secrets", json::array())))
                names.insert(name);
            auto payload = payload_in(vars, names, where);
            if (payload) {
                check_shards(*payload, std::nullopt, where);
                // SIGTERM, then grace_s for running repositories, then SIGKILL at stopTimeout.
                EXPECT_GT(c.value("stopTimeout", 30), payload->options.grace_s);
                EXPECT_LE(c.value("stopTimeout", 30), 120); // Fargate's maximum
            }
        }
    }
}

TEST(DocsAws, BatchDefinitionsAndSubmissionsFitTogether) {
    for (const auto& [where, d] : documents(DocKind::batch_job_definition)) {
        SCOPED_TRACE(where);
        EXPECT_EQ(str(d, "type"), "container");
        const json& c = d.at("containerProperties");
        EXPECT_FALSE(str(c, "image").empty());
        std::set<std::string> resources;
        for (const auto& r : c.value("resourceRequirements", json::array()))
            resources.insert(str(r, "type"));
        EXPECT_TRUE(resources.contains("VCPU") && resources.contains("MEMORY"));
        if (d.value("platformCapabilities", json::array()).dump().find("FARGATE") != std::string::npos) {
            EXPECT_TRUE(str(c, "executionRoleArn").starts_with("arn:aws:iam::"));
            EXPECT_TRUE(c.contains("networkConfiguration"));
        }
        EXPECT_TRUE(str(c, "jobRoleArn").starts_with("arn:aws:iam::"));
        check_secrets(c.value("secrets", json()), where);
        check_awslogs(c.value("logConfiguration", json::object()), where);
    }
    std::set<std::string> actions;
    for (const auto& [where, d] : documents(DocKind::batch_submit_job)) {
        SCOPED_TRACE(where);
        const json* definition = job_definition(str(d, "jobDefinition"));
        ASSERT_NE(definition, nullptr) << "no job definition named " << str(d, "jobDefinition");
        std::optional<int> size;
        if (d.contains("arrayProperties"))
            size = d.at("arrayProperties").at("size").get<int>();
        auto [vars, names] = batch_environment(
            *definition, d.value("containerOverrides", json::object()).value("environment", json::array()),
            size.has_value());
        auto payload = payload_in(vars, names, where);
        ASSERT_TRUE(payload) << "a submission with its payload inline";
        check_shards(*payload, size, where);
        check_batch_timeout(*definition, *payload, where);
        actions.insert(std::string(job::action_name(payload->action)));
        for (const auto& dep : d.value("dependsOn", json::array()))
            EXPECT_FALSE(str(dep, "jobId").empty());
    }
    EXPECT_TRUE(actions.contains("snapshot") && actions.contains("merge_reports"));
}

TEST(DocsAws, StateMachinesSubmitValidPayloadsAndMergeTheirReports) {
    for (const auto& [where, d] : documents(DocKind::state_machine)) {
        SCOPED_TRACE(where);
        const json& states = d.at("States");
        ASSERT_TRUE(states.contains(str(d, "StartAt")));
        // What Pass states put where: "$.payloads" -> their Parameters, filled in.
        std::map<std::string, json> results;
        for (const auto& [name, st] : states.items()) {
            EXPECT_FALSE(str(st, "Type").empty()) << name;
            for (const char* next : {"Next", "Default"})
                if (st.contains(next)) {
                    EXPECT_TRUE(states.contains(str(st, next))) << name << " -> " << str(st, next);
                }
            for (const auto& c : st.value("Catch", json::array()))
                EXPECT_TRUE(states.contains(str(c, "Next"))) << name;
            if (str(st, "Type") == "Pass" && st.contains("ResultPath"))
                results[str(st, "ResultPath")] = materialize(st.value("Parameters", json::object()));
        }
        std::map<std::string, std::string> job_ids; // action -> job id it works on
        for (const auto& [name, st] : states.items()) {
            if (str(st, "Resource").find(":batch:submitJob") == std::string::npos)
                continue;
            SCOPED_TRACE(name);
            const json& p = st.at("Parameters");
            for (const char* key : {"JobName", "JobQueue", "JobDefinition"})
                EXPECT_TRUE(p.contains(key)) << key;
            const json* definition = job_definition(str(p, "JobDefinition"));
            ASSERT_NE(definition, nullptr) << str(p, "JobDefinition");
            std::optional<int> size;
            if (p.contains("ArrayProperties"))
                size = p.at("ArrayProperties").at("Size").get<int>();
            // Environment values handed over as States.JsonToString($.<result>.<name>).
            json environment = json::array();
            for (const auto& e : p.at("ContainerOverrides").at("Environment")) {
                std::smatch m;
                std::string expr = str(e, "Value.$");
                ASSERT_TRUE(std::regex_match(
                    expr, m, std::regex(R"(^States\.JsonToString\((\$\.[A-Za-z_]+)\.([A-Za-z_]+)\)$)")))
                    << expr;
                ASSERT_TRUE(results.contains(m[1].str())) << expr;
                environment.push_back(
                    {{"name", str(e, "Name")}, {"value", results[m[1].str()].at(m[2].str()).dump()}});
            }
            auto [vars, names] = batch_environment(*definition, environment, size.has_value());
            auto payload = payload_in(vars, names, where + " " + name);
            ASSERT_TRUE(payload);
            check_shards(*payload, size, name);
            check_batch_timeout(*definition, *payload, name);
            job_ids[std::string(job::action_name(payload->action))] =
                payload->action == job::Action::merge_reports ? payload->merge_reports.job_id
                                                              : payload->job_id;
        }
        ASSERT_TRUE(job_ids.contains("snapshot") && job_ids.contains("merge_reports"));
        EXPECT_EQ(job_ids["snapshot"], job_ids["merge_reports"]) << "the merge must read the shards' reports";
    }
}

TEST(DocsAws, SchedulesTargetWhatTheDocsDefine) {
    std::set<std::string> families;
    for (const auto& [where, d] : documents(DocKind::ecs_task_definition))
        families.insert(str(d, "family"));
    for (const auto& [where, d] : documents(DocKind::schedule)) {
        SCOPED_TRACE(where);
        EXPECT_FALSE(str(d, "Name").empty());
        EXPECT_TRUE(std::regex_match(str(d, "ScheduleExpression"), std::regex(R"(^(cron|rate|at)\(.+\)$)")));
        const json& window = d.at("FlexibleTimeWindow");
        EXPECT_TRUE(str(window, "Mode") == "OFF" ||
                    (str(window, "Mode") == "FLEXIBLE" && window.contains("MaximumWindowInMinutes")));
        const json& target = d.at("Target");
        EXPECT_TRUE(str(target, "Arn").starts_with("arn:aws:"));
        EXPECT_TRUE(str(target, "RoleArn").starts_with("arn:aws:iam::"));
        if (target.contains("EcsParameters")) {
            const json& ecs = target.at("EcsParameters");
            auto task = str(ecs, "TaskDefinitionArn");
            auto family = task.substr(task.rfind('/') + 1);
            EXPECT_TRUE(families.contains(family.substr(0, family.find(':')))) << task;
            EXPECT_EQ(str(ecs, "LaunchType"), "FARGATE");
            EXPECT_FALSE(ecs.at("NetworkConfiguration").at("awsvpcConfiguration").at("Subnets").empty());
        }
    }
}

TEST(DocsAws, AlarmsWatchMetricsTheBinaryEmits) {
    std::set<std::string> metrics;
    for (const auto& m : cli::job_metrics())
        metrics.insert(std::string(m.name));
    std::set<std::string> alarmed_above_zero;
    for (const auto& [where, d] : documents(DocKind::alarm)) {
        SCOPED_TRACE(where);
        EXPECT_FALSE(str(d, "AlarmName").empty());
        EXPECT_EQ(str(d, "Namespace"), cli::k_metrics_namespace);
        EXPECT_TRUE(metrics.contains(str(d, "MetricName"))) << str(d, "MetricName");
        json dimensions = json::array({{{"Name", cli::k_metrics_dimension}, {"Value", "snapshot"}}});
        EXPECT_EQ(d.at("Dimensions"), dimensions) << "CloudWatch matches dimensions exactly";
        EXPECT_TRUE(d.contains("Statistic") || d.contains("ExtendedStatistic"));
        for (const char* key : {"Period", "EvaluationPeriods", "Threshold"})
            EXPECT_TRUE(d.at(key).is_number()) << key;
        static const std::set<std::string> operators{"GreaterThanThreshold", "GreaterThanOrEqualToThreshold",
                                                     "LessThanThreshold", "LessThanOrEqualToThreshold"};
        EXPECT_TRUE(operators.contains(str(d, "ComparisonOperator")));
        if (str(d, "ComparisonOperator") == "GreaterThanThreshold" && d.at("Threshold") == 0)
            alarmed_above_zero.insert(str(d, "MetricName"));
    }
    EXPECT_TRUE(alarmed_above_zero.contains("RepositoriesFailed"));
    EXPECT_TRUE(alarmed_above_zero.contains("RefsRewritten"));
}

TEST(DocsAws, BucketSettingsKeepSnapshotsReadableAndSafe) {
    for (const auto& [where, d] : documents(DocKind::public_access_block))
        for (const char* key :
             {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"})
            EXPECT_EQ(d.at(key), true) << where << ": " << key;
    for (const auto& [where, d] : documents(DocKind::versioning))
        EXPECT_EQ(str(d, "Status"), "Enabled") << where;
    for (const auto& [where, d] : documents(DocKind::encryption))
        EXPECT_EQ(str(d.at("Rules").front().at("ApplyServerSideEncryptionByDefault"), "SSEAlgorithm"),
                  "aws:kms")
            << where;
    for (const auto& [where, d] : documents(DocKind::object_lock)) {
        EXPECT_EQ(str(d, "ObjectLockEnabled"), "Enabled") << where;
        const json& retention = d.at("Rule").at("DefaultRetention");
        EXPECT_TRUE(str(retention, "Mode") == "GOVERNANCE" || str(retention, "Mode") == "COMPLIANCE")
            << where;
        EXPECT_NE(retention.contains("Days"), retention.contains("Years")) << where << ": Days or Years";
    }
    bool aborts_uploads = false;
    for (const auto& [where, d] : documents(DocKind::lifecycle)) {
        for (const auto& rule : d.at("Rules")) {
            SCOPED_TRACE(where + " " + str(rule, "ID"));
            EXPECT_FALSE(str(rule, "ID").empty());
            EXPECT_TRUE(str(rule, "Status") == "Enabled" || str(rule, "Status") == "Disabled");
            EXPECT_TRUE(rule.contains("Filter"));
            aborts_uploads = aborts_uploads || rule.contains("AbortIncompleteMultipartUpload");
            // GetObject fails on archived objects until a restore request: restore would break.
            for (const char* list : {"Transitions", "NoncurrentVersionTransitions"})
                for (const auto& t : rule.value(list, json::array()))
                    EXPECT_TRUE(str(t, "StorageClass") != "GLACIER" &&
                                str(t, "StorageClass") != "DEEP_ARCHIVE")
                        << str(t, "StorageClass");
        }
    }
    EXPECT_TRUE(aborts_uploads) << "abort incomplete multipart uploads";
}

// docs/manifest.md shows a manifest with every field the binary writes, parsed
// by the binary's reader, and its field table describes each of them.
TEST(DocsManifest, ExampleAndFieldTableMatchTheWriter) {
    snapshot::Manifest m;
    m.snapshot_id = "20261128T073545.123Z-9f3a1c";
    m.repository = "org/app";
    m.created_at = "2026-11-28T07:35:45Z";
    m.table = snapshot::TableRef{snapshot::layout::table_key(m.repository, std::string(64, 'a')),
                                 std::string(64, 'a'), 10, 20, 0};
    auto written = snapshot::serialize_manifest(m);
    ASSERT_TRUE(written) << written.error().message;
    // Version 4 is stored gzip-compressed; the example shows its JSON.
    auto text = snapshot::gzip_decompress(*written, snapshot::k_max_manifest_bytes);
    ASSERT_TRUE(text) << text.error().message;
    const json writer = json::parse(*text);
    auto markdown = read_file(k_source_dir / "docs" / "manifest.md");
    ASSERT_TRUE(markdown);
    std::size_t examples = 0;
    for (const auto& [where, d] : documents(DocKind::manifest)) {
        if (where.find("manifest.md") == std::string::npos)
            continue;
        ++examples;
        auto parsed = snapshot::parse_manifest(d.dump());
        EXPECT_TRUE(parsed) << where << ": " << parsed.error().message;
        std::set<std::string> shown, wrote;
        for (const auto& [key, value] : d.items())
            shown.insert(key);
        for (const auto& [key, value] : writer.items())
            wrote.insert(key);
        EXPECT_EQ(shown, wrote) << where;
        for (const auto& [key, value] : d.at("timings_ms").items())
            EXPECT_NE(markdown->find("`" + key + "`"), std::string::npos) << "timings_ms." << key;
    }
    EXPECT_EQ(examples, 1u);
    for (const auto& [key, value] : writer.items())
        EXPECT_NE(markdown->find("| `" + key + "` |"), std::string::npos)
            << key << " is not in the field table";
    // The table example: what the table writer writes, read by the table reader.
    ASSERT_EQ(documents(DocKind::manifest_table).size(), 1u);
    for (const auto& [where, d] : documents(DocKind::manifest_table)) {
        snapshot::Manifest sample;
        sample.repository = "org/app";
        EXPECT_TRUE(snapshot::apply_table(sample, d.dump())) << where;
        auto table = snapshot::table_json(sample);
        ASSERT_TRUE(table);
        std::set<std::string> shown, wrote;
        for (const auto& [key, value] : d.items())
            shown.insert(key);
        const json table_members = json::parse(*table);
        for (const auto& [key, value] : table_members.items())
            wrote.insert(key);
        EXPECT_EQ(shown, wrote) << where;
        for (const auto& key : wrote)
            EXPECT_NE(markdown->find("| `" + key + "` | (in the table)"), std::string::npos) << key;
    }
    for (const char* kind : {"full", "incremental", "empty", "unchanged"})
        EXPECT_NE(markdown->find("`" + std::string(kind) + "` ("), std::string::npos) << kind;
    EXPECT_NE(markdown->find("| `engine` | how the data was fetched: `stream`"), std::string::npos);
}
