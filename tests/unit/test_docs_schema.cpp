// docs/job.schema.json, docs/job-payload.md and examples/ against the parser
// they describe: the same keys and defaults, and every example valid.
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/util/fs.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>

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

// The bodies of the ```json blocks of a Markdown file.
std::vector<std::string> json_blocks(const std::string& markdown) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while ((pos = markdown.find("```json\n", pos)) != std::string::npos) {
        auto start = pos + 8;
        auto end = markdown.find("```", start);
        if (end == std::string::npos)
            break;
        out.push_back(markdown.substr(start, end - start));
        pos = end + 3;
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
    EXPECT_EQ(property("credentials", "username").at("default"), std::string(d::k_username));
    EXPECT_EQ(property("restore", "snapshot").at("default"), std::string(d::k_snapshot));
    EXPECT_EQ(property("verify", "snapshot").at("default"), std::string(d::k_snapshot));
    EXPECT_EQ(property("verify", "drill").at("default"), d::k_drill);
    EXPECT_EQ(property("gc", "min_age_s").at("default"), d::k_gc_min_age_s);
    EXPECT_EQ(property("gc", "allow_short_age").at("default"), d::k_gc_allow_short_age);
    EXPECT_EQ(property("restore", "preserved").at("default"), job::RestoreSpec{}.preserved);
    std::vector<std::string> refs(d::k_refs.begin(), d::k_refs.end());
    EXPECT_EQ(property("repository", "refs").at("default"), json(refs));
    EXPECT_EQ(property("job", "repositories").at("maxItems"), d::k_max_repositories);
}

TEST(DocsSchema, EnumsAndLimitsMatchTheParser) {
    std::vector<std::string> actions;
    for (auto a : {job::Action::snapshot, job::Action::restore, job::Action::verify, job::Action::list,
                   job::Action::merge_reports, job::Action::gc})
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
    EXPECT_EQ(schema_object("credentials").at("required"), json({"token_env"}));
    EXPECT_EQ(schema_object("restore").at("required"), json({"repository", "target"}));
    EXPECT_EQ(schema_object("shard").at("required"), json({"count"}));
    EXPECT_EQ(property("storage", "addressing").at("enum"), json({"virtual", "path"}));
    EXPECT_EQ(property("storage", "sse").at("enum"), json({"AES256", "aws:kms"}));
    EXPECT_EQ(property("options", "engine").at("enum"), json({"auto", "stream", "cli"}));
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
    std::vector<fs::path> docs{k_source_dir / "README.md", k_source_dir / "ARCHITECTURE.md"};
    for (const auto& entry : fs::directory_iterator(k_source_dir / "docs"))
        if (entry.is_regular_file() && entry.path().extension() == ".md")
            docs.push_back(entry.path());
    std::size_t count = 0;
    for (const auto& path : docs) {
        if (!fs::exists(path))
            continue;
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
