#include "snapshotter/job/job.hpp"

#include "snapshotter/job/defaults.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>

namespace snapshotter::job {
namespace {

using nlohmann::json;

const std::map<std::string, std::vector<std::string>> k_known_keys = {
    {"job",
     {"version", "action", "job_id", "storage", "repositories", "sources", "defaults", "options", "restore",
      "verify", "list", "merge_reports", "prune", "gc"}},
    {"storage",
     {"url", "region", "endpoint", "addressing", "sse", "kms_key_id", "bucket_key", "storage_class",
      "stall_timeout_s", "object_lock_mode", "object_lock_retain_days", "object_lock_retain_until",
      "require_protection", "retry_budget_s", "upload_concurrency"}},
    {"repository", {"url", "name", "refs", "credentials", "lfs", "lfs_url"}},
    {"credentials", {"token_env", "username", "ssh_key_env"}},
    {"source",
     {"type",
      "api_url",
      "org",
      "user",
      "team",
      "group",
      "workspace",
      "credentials",
      "include",
      "exclude",
      "archived",
      "forks",
      "visibility",
      "topics",
      "pushed_since",
      "max_repositories",
      "include_wikis",
      "transport",
      "refs",
      "max_rate_limit_wait_s",
      "lfs"}},
    {"defaults", {"refs", "credentials", "lfs"}},
    {"options",
     {"cache_dir", "timeout_s", "deadline_s", "concurrency", "max_per_host", "retries", "full_every",
      "full_size_ratio", "grace_s", "allow_http", "allow_file", "engine", "verify", "ssh", "shard",
      "max_refs", "max_pack_bytes", "http", "allow_shallow"}},
    {"ssh", {"known_hosts", "host_key_policy"}},
    {"http", {"follow_redirects"}},
    {"shard", {"count", "index"}},
    {"restore",
     {"repository", "snapshot", "target", "preserved", "repositories", "target_dir", "as_of", "push_to"}},
    {"push_to", {"url", "credentials", "force"}},
    {"verify", {"repositories", "snapshot", "drill"}},
    {"list", {"repository"}},
    {"merge_reports", {"job_id"}},
    {"prune",
     {"repositories", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly",
      "keep_within", "pinned", "rebase"}},
    {"gc", {"min_age_s", "allow_short_age"}},
};

std::string type_name(const json& j) {
    switch (j.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
        return "a number";
    case json::value_t::string:
        return "a string";
    case json::value_t::array:
        return "an array";
    case json::value_t::object:
        return "an object";
    default:
        return "a value";
    }
}

std::string join_path(std::string_view parent, std::string_view key) {
    return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

Error at(std::string_view path, std::string_view problem) {
    return Error::payload(fmt::format("{}: {}", path.empty() ? "(payload)" : path, problem));
}

// Check that `j` at `path` is an object whose keys are all in the schema
// object `schema`; unknown keys are errors with a suggestion.
Status check_object(const json& j, std::string_view path, const std::string& schema) {
    if (!j.is_object())
        return fail(at(path, fmt::format("must be an object, not {}", type_name(j))));
    const auto& allowed = k_known_keys.at(schema);
    for (const auto& [key, value] : j.items()) {
        if (std::find(allowed.begin(), allowed.end(), key) != allowed.end())
            continue;
        auto nearest = nearest_name(key, allowed);
        std::string hint = nearest ? fmt::format(" (did you mean \"{}\"?)", *nearest) : "";
        return fail(at(join_path(path, key), "unknown key" + hint));
    }
    return {};
}

Result<std::optional<std::string>> opt_string(const json& obj, std::string_view path, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end())
        return std::optional<std::string>{};
    if (!it->is_string())
        return fail(at(join_path(path, key), fmt::format("must be a string, not {}", type_name(*it))));
    return std::optional<std::string>(it->get<std::string>());
}

Result<std::string> req_string(const json& obj, std::string_view path, const char* key) {
    auto v = opt_string(obj, path, key);
    if (!v)
        return fail(v.error());
    if (!*v)
        return fail(at(join_path(path, key), "is required"));
    if ((*v)->empty())
        return fail(at(join_path(path, key), "must not be empty"));
    return **v;
}

Result<std::optional<bool>> opt_bool(const json& obj, std::string_view path, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end())
        return std::optional<bool>{};
    if (!it->is_boolean())
        return fail(at(join_path(path, key), fmt::format("must be a boolean, not {}", type_name(*it))));
    return std::optional<bool>(it->get<bool>());
}

Result<std::optional<long long>> opt_int(const json& obj, std::string_view path, const char* key,
                                         long long min, long long max) {
    auto it = obj.find(key);
    if (it == obj.end())
        return std::optional<long long>{};
    if (!it->is_number_integer())
        return fail(at(join_path(path, key), fmt::format("must be an integer, not {}", type_name(*it))));
    long long v = it->get<long long>();
    if (v < min || v > max)
        return fail(at(join_path(path, key), fmt::format("must be between {} and {}", min, max)));
    return std::optional<long long>(v);
}

Result<std::vector<std::string>> string_array(const json& j, std::string_view path) {
    if (!j.is_array())
        return fail(at(path, fmt::format("must be an array of strings, not {}", type_name(j))));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_string())
            return fail(
                at(fmt::format("{}[{}]", path, i), fmt::format("must be a string, not {}", type_name(j[i]))));
        out.push_back(j[i].get<std::string>());
    }
    return out;
}

bool has_control_chars(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

Status check_ref_pattern(std::string_view pattern, std::string_view path) {
    if (!pattern.starts_with("refs/") || pattern.size() <= 5)
        return fail(at(path, fmt::format("\"{}\" must start with \"refs/\"", pattern)));
    if (has_control_chars(pattern) || pattern.find_first_of(" ~^:?[\\") != std::string_view::npos ||
        pattern.find("..") != std::string_view::npos || pattern.find("//") != std::string_view::npos)
        return fail(at(path, fmt::format("\"{}\" is not a valid ref pattern", pattern)));
    auto star = pattern.find('*');
    if (star != std::string_view::npos && star != pattern.size() - 1)
        return fail(at(path, fmt::format("\"{}\": '*' is allowed only at the end", pattern)));
    return {};
}

std::filesystem::path default_cache_dir(const GetEnv& env) {
    if (auto xdg = env("XDG_CACHE_HOME"); xdg && !xdg->empty())
        return std::filesystem::path(*xdg) / "snapshotter";
    if (auto home = env("HOME"); home && !home->empty())
        return std::filesystem::path(*home) / ".cache" / "snapshotter";
    return "/var/cache/snapshotter";
}

// Read optional `key` of `obj` into `target` when present, checking type and range.
Status read_int(const json& obj, std::string_view path, const char* key, long long min, long long max,
                int& target) {
    auto v = opt_int(obj, path, key, min, max);
    if (!v)
        return fail(v.error());
    if (*v)
        target = static_cast<int>(**v);
    return {};
}

Status read_bool(const json& obj, std::string_view path, const char* key, bool& target) {
    auto v = opt_bool(obj, path, key);
    if (!v)
        return fail(v.error());
    target = v->value_or(target);
    return {};
}

Status read_number(const json& obj, std::string_view path, const char* key, double min, double max,
                   double& target) {
    auto it = obj.find(key);
    if (it == obj.end())
        return {};
    if (!it->is_number())
        return fail(at(join_path(path, key), fmt::format("must be a number, not {}", type_name(*it))));
    double v = it->get<double>();
    if (!(v >= min && v <= max))
        return fail(at(join_path(path, key), fmt::format("must be between {} and {}", min, max)));
    target = v;
    return {};
}

// Read optional string `key` that must be one of `choices`.
Status read_choice(const json& obj, std::string_view path, const char* key,
                   std::initializer_list<std::string_view> choices, std::string& target) {
    auto v = opt_string(obj, path, key);
    if (!v)
        return fail(v.error());
    if (!*v)
        return {};
    if (std::find(choices.begin(), choices.end(), **v) == choices.end())
        return fail(
            at(join_path(path, key), fmt::format("\"{}\" is not one of {}", **v, fmt::join(choices, ", "))));
    target = **v;
    return {};
}

// Read optional string `key` that must spell one value of `table` (enums.hpp) into `target`.
template <typename E>
Status read_enum(const json& obj, std::string_view path, const char* key, std::span<const Spelling<E>> table,
                 E& target) {
    auto v = opt_string(obj, path, key);
    if (!v)
        return fail(v.error());
    if (!*v)
        return {};
    auto value = value_of(table, **v);
    if (!value) {
        std::vector<std::string_view> choices;
        for (const auto& [candidate, text] : table)
            choices.push_back(text);
        return fail(
            at(join_path(path, key), fmt::format("\"{}\" is not one of {}", **v, fmt::join(choices, ", "))));
    }
    target = *value;
    return {};
}

// Object Lock: a mode and exactly one of a retention in days or a date.
Status parse_object_lock(const json& j, int days_value, storage::S3Settings& s3) {
    std::string mode;
    if (auto s = read_choice(j, "storage", "object_lock_mode", {"GOVERNANCE", "COMPLIANCE"}, mode); !s)
        return s;
    const bool days = j.contains("object_lock_retain_days"), until = j.contains("object_lock_retain_until");
    if (days && until)
        return fail(
            at("storage.object_lock_retain_until", "cannot be combined with object_lock_retain_days"));
    std::optional<Clock::time_point> until_time;
    if (until) {
        until_time = parse_rfc3339(j.at("object_lock_retain_until").get<std::string>());
        if (!until_time)
            return fail(at("storage.object_lock_retain_until",
                           "must be an RFC 3339 UTC time such as \"2030-01-01T00:00:00Z\""));
    }
    if (!mode.empty() && !days && !until)
        return fail(
            at("storage.object_lock_mode", "needs object_lock_retain_days or object_lock_retain_until"));
    if (mode.empty() && (days || until))
        return fail(at(days ? "storage.object_lock_retain_days" : "storage.object_lock_retain_until",
                       "needs object_lock_mode (GOVERNANCE or COMPLIANCE)"));
    if (!mode.empty())
        s3.object_lock = storage::ObjectLock{*storage::parse_lock_mode(mode), until_time, days_value};
    return {};
}

// storage: the URL, and the typed settings of an s3:// backend (storage/settings.hpp).
Status parse_storage(const json& j, StorageSpec& storage) {
    if (auto s = check_object(j, "storage", "storage"); !s)
        return s;
    auto url = req_string(j, "storage", "url");
    if (!url)
        return fail(url.error());
    if (has_control_chars(*url))
        return fail(at("storage.url", "must not contain control characters"));
    storage.url = *url;
    const bool is_s3 = url->starts_with("s3://");
    storage::S3Settings& s3 = storage.s3;
    int lock_days = 0;
    for (const auto& [key, value] : j.items()) {
        if (key == "url")
            continue;
        std::string path = join_path("storage", key);
        if (!is_s3 && key.starts_with("object_lock_"))
            return fail(at(path, "Object Lock is an S3 feature; file:// and memory:// storage cannot lock "
                                 "objects (only allowed with an s3:// storage.url)"));
        if (!is_s3)
            return fail(at(path, "is only allowed with an s3:// storage.url"));
        if (key == "object_lock_retain_days") {
            auto days = opt_int(j, "storage", "object_lock_retain_days", 1, defaults::k_max_lock_days);
            if (!days)
                return fail(days.error());
            lock_days = static_cast<int>(**days);
            continue;
        }
        if (key == "bucket_key" || key == "require_protection") {
            if (!value.is_boolean())
                return fail(at(path, fmt::format("must be a boolean, not {}", type_name(value))));
            if (key == "bucket_key")
                s3.bucket_key = value.get<bool>();
            else
                s3.require_protection = value.get<bool>();
            continue;
        }
        if (key == "stall_timeout_s" || key == "retry_budget_s") {
            int seconds = 0;
            if (auto st = read_int(j, "storage", key.c_str(), 1, storage::k_max_timeout_setting_s, seconds);
                !st)
                return st;
            (key == "stall_timeout_s" ? s3.stall_timeout : s3.retry_budget) = std::chrono::seconds{seconds};
            continue;
        }
        if (key == "upload_concurrency") {
            if (auto st = read_int(j, "storage", key.c_str(), 1, storage::k_max_upload_concurrency,
                                   s3.upload_concurrency);
                !st)
                return st;
            continue;
        }
        if (!value.is_string() || value.get<std::string>().empty() ||
            has_control_chars(value.get<std::string>()))
            return fail(at(path, "must be a non-empty string"));
        if (key == "region")
            s3.region = value.get<std::string>();
        else if (key == "endpoint")
            s3.endpoint = value.get<std::string>();
        else if (key == "kms_key_id")
            s3.kms_key_id = value.get<std::string>();
        else if (key == "storage_class")
            s3.storage_class = value.get<std::string>();
    }
    std::string choice;
    if (auto s = read_choice(j, "storage", "addressing", {"virtual", "path"}, choice); !s)
        return s;
    if (!choice.empty())
        s3.addressing = storage::parse_addressing(choice);
    choice.clear();
    if (auto s = read_choice(j, "storage", "sse", {"AES256", "aws:kms"}, choice); !s)
        return s;
    if (!choice.empty())
        s3.sse = storage::parse_sse(choice);
    if (j.contains("kms_key_id") && s3.sse != storage::Sse::aws_kms)
        return fail(at("storage.kms_key_id", "requires \"sse\": \"aws:kms\""));
    if (j.contains("bucket_key") && s3.sse != storage::Sse::aws_kms)
        return fail(at("storage.bucket_key", "requires \"sse\": \"aws:kms\""));
    if (auto s = parse_object_lock(j, lock_days, s3); !s)
        return s;
    if (!s3.endpoint.empty())
        if (auto e = storage::split_s3_endpoint(s3.endpoint); !e)
            return fail(at("storage.endpoint", e.error()));
    if (!s3.storage_class.empty() && !storage::is_storage_class(s3.storage_class))
        return fail(
            at("storage.storage_class", fmt::format("\"{}\" is not a storage class", s3.storage_class)));
    return {};
}

Status parse_options(const json& j, Options& options, const GetEnv& env) {
    constexpr std::string_view p = "options";
    if (auto s = check_object(j, p, "options"); !s)
        return s;
    auto cache_dir = opt_string(j, p, "cache_dir");
    if (!cache_dir)
        return fail(cache_dir.error());
    if (*cache_dir) {
        if ((*cache_dir)->empty() || has_control_chars(**cache_dir))
            return fail(at("options.cache_dir", "must be a directory path"));
        options.cache_dir = std::filesystem::absolute(**cache_dir).lexically_normal();
    }
    Status checks[] = {
        read_int(j, p, "timeout_s", 1, 7LL * 24 * 3600, options.timeout_s),
        read_int(j, p, "deadline_s", 0, 30LL * 24 * 3600, options.deadline_s),
        read_int(j, p, "concurrency", 1, 256, options.concurrency),
        read_int(j, p, "max_per_host", 1, 256, options.max_per_host),
        read_int(j, p, "retries", 0, 10, options.retries),
        read_int(j, p, "full_every", 1, 10000, options.full_every),
        read_number(j, p, "full_size_ratio", 0.0, 100.0, options.full_size_ratio),
        read_int(j, p, "grace_s", 0, 3600, options.grace_s),
        read_bool(j, p, "allow_http", options.allow_http),
        read_bool(j, p, "allow_file", options.allow_file),
        read_bool(j, p, "allow_shallow", options.allow_shallow),
        read_int(j, p, "max_refs", 1, 100'000'000, options.max_refs),
    };
    for (auto& s : checks)
        if (!s)
            return s;
    if (auto s = read_enum<Engine>(j, p, "engine", k_engines, options.engine); !s)
        return s;
    if (auto s = read_enum<VerifyMode>(j, p, "verify", k_verify_modes, options.verify); !s)
        return s;
    if (auto max_pack = opt_int(j, p, "max_pack_bytes", 0, 1LL << 53); !max_pack)
        return fail(max_pack.error());
    else if (*max_pack)
        options.max_pack_bytes = **max_pack;
    if (auto it = j.find("ssh"); it != j.end()) {
        std::string sp = "options.ssh";
        if (auto s = check_object(*it, sp, "ssh"); !s)
            return s;
        auto known = opt_string(*it, sp, "known_hosts");
        if (!known)
            return fail(known.error());
        options.ssh.known_hosts = known->value_or("");
        if (auto s = read_enum<HostKeyPolicy>(*it, sp, "host_key_policy", k_host_key_policies,
                                              options.ssh.host_key_policy);
            !s)
            return s;
    }
    if (auto it = j.find("http"); it != j.end()) {
        std::string hp = "options.http";
        if (auto s = check_object(*it, hp, "http"); !s)
            return s;
        std::string policy{redirect_policy_name(options.http.follow_redirects)};
        if (auto s = read_choice(*it, hp, "follow_redirects",
                                 {"same_origin", "any_without_credentials", "never"}, policy);
            !s)
            return s;
        for (auto candidate :
             {RedirectPolicy::same_origin, RedirectPolicy::any_without_credentials, RedirectPolicy::never})
            if (redirect_policy_name(candidate) == policy)
                options.http.follow_redirects = candidate;
    }
    if (auto it = j.find("shard"); it != j.end()) {
        std::string sp = "options.shard";
        if (auto s = check_object(*it, sp, "shard"); !s)
            return s;
        int count = 0, index = -1;
        if (auto s = read_int(*it, sp, "count", 1, defaults::k_max_shards, count); !s)
            return s;
        if (count == 0)
            return fail(at("options.shard.count", "is required"));
        if (auto s = read_int(*it, sp, "index", 0, 99999, index); !s)
            return s;
        if (index < 0) {
            // Array jobs give each container its index in the environment.
            for (const char* var : {"AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"}) {
                auto v = env(var);
                if (!v || v->empty())
                    continue;
                char* end = nullptr;
                long parsed = std::strtol(v->c_str(), &end, 10);
                if (end == nullptr || *end != '\0' || parsed < 0)
                    return fail(at("options.shard.index", fmt::format("{}=\"{}\" is not an index", var, *v)));
                index = static_cast<int>(parsed);
                break;
            }
            if (index < 0)
                return fail(at("options.shard.index",
                               "is required (or set AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX)"));
        }
        if (index >= count)
            return fail(at("options.shard.index", fmt::format("{} must be below count {}", index, count)));
        options.shard = Shard{count, index};
    }
    return {};
}

// True when `text` is the beginning of some snapshot id ("20261124", "20261124T0").
bool is_snapshot_id_prefix(std::string_view text) {
    std::string padded = "00000000T000000.000Z-000000";
    if (text.empty() || text.size() > padded.size())
        return false;
    padded.replace(0, text.size(), text);
    return is_snapshot_id(padded);
}

Result<std::string> snapshot_selector(const json& obj, std::string_view path, bool allow_all,
                                      bool allow_prefix = false) {
    auto v = opt_string(obj, path, "snapshot");
    if (!v)
        return fail(v.error());
    std::string s = v->value_or(std::string(defaults::k_snapshot));
    if (s == "latest" || (allow_all && s == "all") || is_snapshot_id(s) ||
        (allow_prefix && is_snapshot_id_prefix(s)))
        return s;
    return fail(
        at(join_path(path, "snapshot"),
           fmt::format("\"{}\" must be \"latest\"{} or a snapshot id{}", s, allow_all ? ", \"all\"" : "",
                       allow_prefix ? " (or its unique beginning)" : "")));
}

// Read optional array `repositories` of `obj` (at `path`) of valid repository names.
Status read_repository_names(const json& obj, std::string_view path, std::vector<std::string>& target) {
    auto r = obj.find("repositories");
    if (r == obj.end())
        return {};
    std::string rpath = join_path(path, "repositories");
    auto repos = string_array(*r, rpath);
    if (!repos)
        return fail(repos.error());
    for (std::size_t i = 0; i < repos->size(); ++i)
        if (!is_valid_repository_name((*repos)[i]))
            return fail(at(fmt::format("{}[{}]", rpath, i),
                           fmt::format("\"{}\" is not a valid repository name", (*repos)[i])));
    target = std::move(*repos);
    return {};
}

// The prune section: a retention policy that is never empty.
Status parse_prune(const json& root, PruneSpec& prune) {
    constexpr std::string_view p = "prune";
    auto it = root.find("prune");
    if (it == root.end())
        return fail(at(p, "is required for a prune (a retention policy such as {\"keep_daily\": 7})"));
    if (auto s = check_object(*it, p, "prune"); !s)
        return s;
    auto& policy = prune.policy;
    constexpr long long k_max = defaults::k_max_keep;
    Status checks[] = {
        read_repository_names(*it, p, prune.repositories),
        read_int(*it, p, "keep_last", 0, k_max, policy.keep_last),
        read_int(*it, p, "keep_hourly", 0, k_max, policy.keep_hourly),
        read_int(*it, p, "keep_daily", 0, k_max, policy.keep_daily),
        read_int(*it, p, "keep_weekly", 0, k_max, policy.keep_weekly),
        read_int(*it, p, "keep_monthly", 0, k_max, policy.keep_monthly),
        read_int(*it, p, "keep_yearly", 0, k_max, policy.keep_yearly),
        read_bool(*it, p, "rebase", prune.rebase),
    };
    for (auto& s : checks)
        if (!s)
            return s;
    auto within = opt_string(*it, p, "keep_within");
    if (!within)
        return fail(within.error());
    if (*within) {
        policy.keep_within = parse_calendar_span(**within);
        if (!policy.keep_within)
            return fail(at("prune.keep_within",
                           fmt::format("\"{}\" is not a duration (numbers with units y, m, w, d, h in that "
                                       "order, e.g. \"30d\", \"12h\", \"2w\", \"1y6m\"; not all zero)",
                                       **within)));
        policy.keep_within_text = **within;
    }
    if (auto pin = it->find("pinned"); pin != it->end()) {
        auto ids = string_array(*pin, "prune.pinned");
        if (!ids)
            return fail(ids.error());
        for (std::size_t i = 0; i < ids->size(); ++i)
            if (!is_snapshot_id((*ids)[i]))
                return fail(at(fmt::format("prune.pinned[{}]", i),
                               fmt::format("\"{}\" is not a snapshot id", (*ids)[i])));
        policy.pinned = std::move(*ids);
    }
    if (policy.empty())
        return fail(
            at(p, "the retention policy is empty: set at least one of keep_last, keep_hourly, keep_daily, "
                  "keep_weekly, keep_monthly, keep_yearly or keep_within (prune never deletes "
                  "everything, and pinned snapshots alone are not a policy)"));
    return {};
}

// Read optional `refs` of `obj` (at `path`) into `target`; absent, `target`
// gets the default patterns.
Status read_refs(const json& obj, const std::string& path, std::vector<std::string>& target) {
    auto it = obj.find("refs");
    if (it == obj.end()) {
        target.assign(defaults::k_refs.begin(), defaults::k_refs.end());
        return {};
    }
    auto refs = string_array(*it, join_path(path, "refs"));
    if (!refs)
        return fail(refs.error());
    if (refs->empty())
        return fail(at(join_path(path, "refs"), "must not be empty"));
    for (std::size_t i = 0; i < refs->size(); ++i)
        if (auto s = check_ref_pattern((*refs)[i], fmt::format("{}.refs[{}]", path, i)); !s)
            return s;
    target = std::move(*refs);
    return {};
}

// Read optional `lfs` of `obj` (at `path`): true, false or "auto" (docs/lfs.md).
Status read_lfs_mode(const json& obj, const std::string& path, LfsMode& target) {
    auto it = obj.find("lfs");
    if (it == obj.end())
        return {};
    if (it->is_boolean()) {
        target = it->get<bool>() ? LfsMode::on : LfsMode::off;
        return {};
    }
    if (it->is_string() && it->get<std::string>() == to_string(LfsMode::automatic)) {
        target = LfsMode::automatic;
        return {};
    }
    return fail(at(join_path(path, "lfs"),
                   fmt::format("must be true, false or \"auto\", not {}",
                               it->is_string() ? fmt::format("\"{}\"", redact(it->get<std::string>()))
                                               : type_name(*it))));
}

// Read optional `lfs_url` of `obj` (at `path`): an absolute http(s) URL with a
// host and no userinfo (credentials come from `credentials`); http:// needs
// options.allow_http, as a repository URL does.
Status read_lfs_url(const json& obj, const std::string& path, TransportPolicy policy,
                    std::optional<std::string>& target) {
    auto url = opt_string(obj, path, "lfs_url");
    if (!url)
        return fail(url.error());
    if (!*url)
        return {};
    const std::string key = join_path(path, "lfs_url");
    const std::string& text = **url;
    auto origin = origin_of(text);
    std::string_view authority;
    if (origin) {
        authority = std::string_view(text).substr(text.find("://") + 3);
        authority = authority.substr(0, authority.find_first_of("/?#"));
    }
    if (!origin || has_control_chars(text) || text.find(' ') != std::string::npos || text.size() > 2048 ||
        authority.find('@') != std::string_view::npos)
        return fail(
            at(key, fmt::format("{:?} must be an http(s) URL with a host and without credentials (give "
                                "them in credentials)",
                                redact_url(text))));
    if (origin->scheme == "http" && !policy.allow_http)
        return fail(at(key, "http:// needs options.allow_http"));
    target = text;
    return {};
}

// The fields of a `credentials` object `c` at `cpath`, checked alike wherever one appears: a
// token_env, an ssh_key_env or both (variable names, not empty), and a printable username when
// one is given (`username_given`; the username is empty when not).
struct CredentialFields {
    Credentials creds;
    bool username_given = false;
};
Result<CredentialFields> read_credential_fields(const json& c, const std::string& cpath) {
    if (auto s = check_object(c, cpath, "credentials"); !s)
        return fail(s.error());
    CredentialFields out;
    for (auto [key, field] :
         {std::pair{"token_env", &out.creds.token_env}, std::pair{"ssh_key_env", &out.creds.ssh_key_env}}) {
        auto value = opt_string(c, cpath, key);
        if (!value)
            return fail(value.error());
        if (*value && (*value)->empty())
            return fail(at(join_path(cpath, key), "must not be empty"));
        *field = value->value_or("");
    }
    if (out.creds.token_env.empty() && out.creds.ssh_key_env.empty())
        return fail(at(cpath, "needs token_env (https) or ssh_key_env (ssh)"));
    auto username = opt_string(c, cpath, "username");
    if (!username)
        return fail(username.error());
    out.username_given = username->has_value();
    out.creds.username = username->value_or("");
    if ((out.username_given && out.creds.username.empty()) || has_control_chars(out.creds.username))
        return fail(at(join_path(cpath, "username"), "must be a non-empty printable string"));
    return out;
}

// Check that environment variable `name` (read from `key` at `path`) is set and not empty.
Status require_env(const GetEnv& env, const std::string& name, const std::string& path, const char* key) {
    auto value = env(name);
    if (!value || value->empty())
        return fail(at(join_path(path, key), fmt::format("environment variable {} is not set", name)));
    return {};
}

Result<std::optional<Credentials>> parse_remote_credentials(const json& j, const std::string& path,
                                                            const GitUrl& parsed, const GetEnv& env,
                                                            bool need_tokens);

// Read the required `url` of the remote `j` at `path` into `remote.url` and,
// parsed and allowed by `policy`, `remote.parsed`.
Status read_remote_url(const json& j, const std::string& path, TransportPolicy policy, Repository& remote) {
    auto url = req_string(j, path, "url");
    if (!url)
        return fail(url.error());
    auto parsed = parse_git_url(*url, policy);
    if (!parsed)
        return fail(at(join_path(path, "url"), parsed.error().message));
    remote.url = *url;
    remote.parsed = *parsed;
    return {};
}

Result<Repository> parse_repository(const json& j, const std::string& path, TransportPolicy policy,
                                    const GetEnv& env, bool need_tokens) {
    if (auto s = check_object(j, path, "repository"); !s)
        return fail(s.error());
    Repository repo;
    if (auto s = read_remote_url(j, path, policy, repo); !s)
        return fail(s.error());

    auto name = opt_string(j, path, "name");
    if (!name)
        return fail(name.error());
    repo.name = name->value_or(name_from_url(repo.parsed));
    if (!is_valid_repository_name(repo.name))
        return fail(
            at(join_path(path, "name"),
               fmt::format("\"{}\" is not a valid name (segments of A-Z a-z 0-9 . _ - separated by '/', no "
                           "\".\" or \"..\", at most 200 bytes)",
                           repo.name)));

    if (auto s = read_refs(j, path, repo.refs); !s)
        return fail(s.error());

    auto creds = parse_remote_credentials(j, path, repo.parsed, env, need_tokens);
    if (!creds)
        return fail(creds.error());
    repo.credentials = *creds;
    if (auto s = read_lfs_mode(j, path, repo.lfs); !s)
        return fail(s.error());
    if (auto s = read_lfs_url(j, path, policy, repo.lfs_url); !s)
        return fail(s.error());
    return repo;
}

// Read optional `credentials` of a remote `j` at `path` whose URL is
// `parsed`: token_env for https, ssh_key_env for ssh; with `need_tokens`
// the variable named must be set.
Result<std::optional<Credentials>> parse_remote_credentials(const json& j, const std::string& path,
                                                            const GitUrl& parsed, const GetEnv& env,
                                                            bool need_tokens) {
    std::optional<Credentials> out;
    if (auto it = j.find("credentials"); it != j.end()) {
        std::string cpath = join_path(path, "credentials");
        auto fields = read_credential_fields(*it, cpath);
        if (!fields)
            return fail(fields.error());
        Credentials creds = std::move(fields->creds);
        const bool ssh = parsed.transport == Transport::ssh;
        if (!creds.ssh_key_env.empty() && !ssh)
            return fail(at(join_path(cpath, "ssh_key_env"), "is only for ssh URLs"));
        if (!creds.token_env.empty() && ssh)
            return fail(at(join_path(cpath, "token_env"), "is not used by ssh URLs; use ssh_key_env"));
        // ssh logs in as the URL's user (git@host:...) unless a username is given.
        if (!fields->username_given && !ssh)
            creds.username = std::string(defaults::k_username);
        if (need_tokens) {
            const bool by_key = !creds.ssh_key_env.empty();
            if (auto s = require_env(env, by_key ? creds.ssh_key_env : creds.token_env, cpath,
                                     by_key ? "ssh_key_env" : "token_env");
                !s)
                return fail(s.error());
        }
        out = creds;
    }
    return out;
}

// Read optional `credentials` of a source or of `defaults` at `path`: a
// token_env, an ssh_key_env, or both (the API reads the token, git over ssh
// the key); every variable named must be set.
Result<std::optional<Credentials>> parse_shared_credentials(const json& obj, const std::string& path,
                                                            const GetEnv& env) {
    auto it = obj.find("credentials");
    if (it == obj.end())
        return std::optional<Credentials>{};
    std::string cpath = join_path(path, "credentials");
    auto fields = read_credential_fields(*it, cpath);
    if (!fields)
        return fail(fields.error());
    const Credentials& creds = fields->creds;
    if (!creds.token_env.empty())
        if (auto s = require_env(env, creds.token_env, cpath, "token_env"); !s)
            return fail(s.error());
    if (!creds.ssh_key_env.empty())
        if (auto s = require_env(env, creds.ssh_key_env, cpath, "ssh_key_env"); !s)
            return fail(s.error());
    return std::optional<Credentials>(creds);
}

// The scopes each forge lists, and its public API.
struct ForgeKind {
    std::string_view type;
    std::string_view api_url;
    std::vector<std::string_view> scopes;
};
constexpr std::string_view k_all_scopes[] = {"org", "user", "team", "group", "workspace"};
const ForgeKind k_forges[] = {
    {"github", defaults::k_github_api, {"org", "user", "team"}},
    {"gitlab", defaults::k_gitlab_api, {"group", "user"}},
    {"gitea", defaults::k_gitea_api, {"org", "user"}},
    {"bitbucket", defaults::k_bitbucket_api, {"workspace"}},
};

// A scope name: '/'-separated segments of [A-Za-z0-9._-] (GitLab subgroups, "org/team").
bool is_valid_owner(std::string_view owner) {
    return is_valid_repository_name(owner) && owner.size() <= 255;
}

Result<Source> parse_source(const json& j, const std::string& path, TransportPolicy policy,
                            const GetEnv& env) {
    if (auto s = check_object(j, path, "source"); !s)
        return fail(s.error());
    Source src;
    src.path = path;
    auto type = req_string(j, path, "type");
    if (!type)
        return fail(type.error());
    const ForgeKind* forge = nullptr;
    for (const auto& f : k_forges)
        if (f.type == *type)
            forge = &f;
    if (forge == nullptr)
        return fail(at(join_path(path, "type"),
                       fmt::format("\"{}\" is not one of github, gitlab, gitea, bitbucket", *type)));
    src.type = *parse_forge_type(*type);

    // Exactly one scope, and one this forge has.
    std::optional<SourceScope> scope_given;
    for (auto scope : k_all_scopes) {
        if (!j.contains(scope))
            continue;
        std::string spath = join_path(path, scope);
        if (std::find(forge->scopes.begin(), forge->scopes.end(), scope) == forge->scopes.end())
            return fail(at(spath, fmt::format("is not a {} scope (use one of {})", *type,
                                              fmt::join(forge->scopes, ", "))));
        if (scope_given)
            return fail(at(spath, fmt::format("cannot be combined with {}", to_string(*scope_given))));
        auto owner = req_string(j, path, std::string(scope).c_str());
        if (!owner)
            return fail(owner.error());
        const bool nested = scope == "team" || (scope == "group");
        if (!is_valid_owner(*owner) || (!nested && owner->find('/') != std::string::npos) ||
            (scope == "team" && std::count(owner->begin(), owner->end(), '/') != 1))
            return fail(at(spath, scope == "team" ? fmt::format("\"{}\" must be \"org/team-slug\"", *owner)
                                                  : fmt::format("\"{}\" is not a valid name", *owner)));
        scope_given = parse_source_scope(scope);
        src.scope = *scope_given;
        src.owner = *owner;
    }
    if (!scope_given)
        return fail(at(path, fmt::format("needs one of {}", fmt::join(forge->scopes, ", "))));

    auto api = opt_string(j, path, "api_url");
    if (!api)
        return fail(api.error());
    src.api_url = api->value_or(std::string(forge->api_url));
    while (src.api_url.ends_with('/'))
        src.api_url.pop_back();
    const bool https = src.api_url.starts_with("https://"), http = src.api_url.starts_with("http://");
    const std::size_t host_at = https ? 8 : 7; // after "https://" or "http://"
    if ((!https && !http) || has_control_chars(src.api_url) || src.api_url.find('@') != std::string::npos ||
        src.api_url.size() <= host_at || src.api_url[host_at] == '/')
        return fail(at(join_path(path, "api_url"), "must be an https:// URL without credentials"));
    if (http && !policy.allow_http)
        return fail(at(join_path(path, "api_url"), "http:// needs options.allow_http"));

    if (auto s = read_enum<CloneTransport>(j, path, "transport", k_clone_transports, src.transport); !s)
        return fail(s.error());
    if (auto s = read_enum<Visibility>(j, path, "visibility", k_visibilities, src.visibility); !s)
        return fail(s.error());
    auto creds = parse_shared_credentials(j, path, env);
    if (!creds)
        return fail(creds.error());
    src.credentials = *creds;
    if (src.credentials && !src.credentials->ssh_key_env.empty() && src.transport != CloneTransport::ssh)
        return fail(at(join_path(path, "credentials.ssh_key_env"), "needs \"transport\": \"ssh\""));

    for (const char* key : {"include", "exclude", "topics"}) {
        auto it = j.find(key);
        if (it == j.end())
            continue;
        auto list = string_array(*it, join_path(path, key));
        if (!list)
            return fail(list.error());
        for (std::size_t i = 0; i < list->size(); ++i)
            if ((*list)[i].empty() || has_control_chars((*list)[i]))
                return fail(
                    at(fmt::format("{}.{}[{}]", path, key, i), "must be a non-empty printable string"));
        (std::string_view(key) == "include"   ? src.include
         : std::string_view(key) == "exclude" ? src.exclude
                                              : src.topics) = std::move(*list);
    }
    Status checks[] = {
        read_bool(j, path, "archived", src.archived),
        read_bool(j, path, "forks", src.forks),
        read_bool(j, path, "include_wikis", src.include_wikis),
        read_int(j, path, "max_repositories", 1, static_cast<long long>(defaults::k_max_repositories),
                 src.max_repositories),
        read_int(j, path, "max_rate_limit_wait_s", 0, defaults::k_max_rate_limit_wait_ceiling_s,
                 src.max_rate_limit_wait_s),
        read_refs(j, path, src.refs),
        read_lfs_mode(j, path, src.lfs),
    };
    for (auto& s : checks)
        if (!s)
            return fail(s.error());

    // pushed_since: an RFC 3339 UTC time, or a span back from now ("90d").
    auto since = opt_string(j, path, "pushed_since");
    if (!since)
        return fail(since.error());
    if (*since) {
        if (auto when = parse_rfc3339(**since))
            src.pushed_since = *when;
        else if (auto span = parse_calendar_span(**since))
            src.pushed_since = subtract_span(current_time(), *span);
        else
            return fail(
                at(join_path(path, "pushed_since"),
                   fmt::format("\"{}\" is neither an RFC 3339 UTC time (\"2026-01-01T00:00:00Z\") nor a "
                               "span such as \"90d\"",
                               **since)));
        src.pushed_since_text = **since;
    }
    return src;
}

// The job-level `defaults` for explicit repositories: refs and credentials
// used where an entry gives none.
struct RepositoryDefaults {
    std::optional<std::vector<std::string>> refs;
    std::optional<Credentials> credentials;
    std::optional<LfsMode> lfs;
};

Result<RepositoryDefaults> parse_defaults(const json& root, const GetEnv& env) {
    RepositoryDefaults out;
    auto it = root.find("defaults");
    if (it == root.end())
        return out;
    if (auto s = check_object(*it, "defaults", "defaults"); !s)
        return fail(s.error());
    if (it->contains("refs")) {
        std::vector<std::string> refs;
        if (auto s = read_refs(*it, "defaults", refs); !s)
            return fail(s.error());
        out.refs = std::move(refs);
    }
    auto creds = parse_shared_credentials(*it, "defaults", env);
    if (!creds)
        return fail(creds.error());
    out.credentials = *creds;
    if (it->contains("lfs")) {
        LfsMode lfs = LfsMode::automatic;
        if (auto s = read_lfs_mode(*it, "defaults", lfs); !s)
            return fail(s.error());
        out.lfs = lfs;
    }
    return out;
}

// Give `repo` (parsed from `j`) the defaults it does not set itself: the
// token for http(s) URLs, the ssh key for ssh URLs.
void apply_defaults(const json& j, const RepositoryDefaults& fallback, Repository& repo) {
    if (fallback.refs && !j.contains("refs"))
        repo.refs = *fallback.refs;
    if (fallback.lfs && !j.contains("lfs"))
        repo.lfs = *fallback.lfs;
    if (!fallback.credentials || j.contains("credentials"))
        return;
    const auto& d = *fallback.credentials;
    const auto t = repo.parsed.transport;
    Credentials creds;
    if (t == Transport::ssh && !d.ssh_key_env.empty()) {
        creds.ssh_key_env = d.ssh_key_env;
        creds.username = d.username;
    } else if ((t == Transport::https || t == Transport::http) && !d.token_env.empty()) {
        creds.token_env = d.token_env;
        creds.username = d.username.empty() ? std::string(defaults::k_username) : d.username;
    } else {
        return;
    }
    repo.credentials = creds;
}

// Read optional `sources` of the payload into `target`.
// An absolute, normalized directory path at `path` (not "/").
Result<std::filesystem::path> absolute_dir(const json& obj, const char* key) {
    std::string path = join_path("restore", key);
    auto text = req_string(obj, "restore", key);
    if (!text)
        return fail(text.error());
    if (!text->starts_with("/") || has_control_chars(*text))
        return fail(at(path, "must be an absolute path"));
    auto dir = std::filesystem::path(*text).lexically_normal();
    if (dir == "/")
        return fail(at(path, "must not be the root directory"));
    return dir;
}

// restore.push_to: a remote URL, its credentials, and force.
Result<PushTo> parse_push_to(const json& j, TransportPolicy policy, const GetEnv& env) {
    const std::string path = "restore.push_to";
    if (auto s = check_object(j, path, "push_to"); !s)
        return fail(s.error());
    PushTo push;
    if (auto s = read_remote_url(j, path, policy, push.remote); !s)
        return fail(s.error());
    push.remote.name = name_from_url(push.remote.parsed);
    auto creds = parse_remote_credentials(j, path, push.remote.parsed, env, true);
    if (!creds)
        return fail(creds.error());
    push.remote.credentials = *creds;
    if (auto s = read_bool(j, path, "force", push.force); !s)
        return fail(s.error());
    return push;
}

// The restore section: one `repository` into `target` (or pushed), or
// several (`repositories`: names or "all") into `target_dir`; a snapshot
// id, "latest", or `as_of`.
Status parse_restore(const json& root, TransportPolicy policy, const GetEnv& env, RestoreSpec& restore) {
    auto it = root.find("restore");
    if (it == root.end())
        return fail(at("restore", "is required for a restore"));
    if (auto s = check_object(*it, "restore", "restore"); !s)
        return s;
    const json& r = *it;
    const bool several = r.contains("repositories");
    if (several && r.contains("repository"))
        return fail(at("restore.repositories", "cannot be combined with repository"));
    if (several) {
        const json& names = r.at("repositories");
        if (names.is_string()) {
            if (names.get<std::string>() != "all")
                return fail(
                    at("restore.repositories", "must be an array of repository names or the string \"all\""));
            restore.all = true;
        } else {
            if (names.is_array() && names.size() == 1 && names[0] == "*")
                return fail(
                    at("restore.repositories", "[\"*\"] is not a name: write \"all\" for every repository"));
            if (auto s = read_repository_names(r, "restore", restore.repositories); !s)
                return s;
            if (restore.repositories.empty())
                return fail(at("restore.repositories", "must list at least one repository (or be \"all\")"));
            std::set<std::string> seen;
            for (std::size_t i = 0; i < restore.repositories.size(); ++i)
                if (!seen.insert(restore.repositories[i]).second)
                    return fail(at(fmt::format("restore.repositories[{}]", i),
                                   fmt::format("\"{}\" appears twice", restore.repositories[i])));
        }
    } else {
        auto repo = req_string(r, "restore", "repository");
        if (!repo)
            return fail(repo.error());
        if (!is_valid_repository_name(*repo))
            return fail(
                at("restore.repository", fmt::format("\"{}\" is not a valid repository name", *repo)));
        restore.repository = *repo;
    }
    // Which snapshot: an id (or its beginning), "latest", or the newest at or before as_of.
    if (r.contains("as_of") && r.contains("snapshot"))
        return fail(at("restore.as_of", "cannot be combined with snapshot"));
    auto snap = snapshot_selector(r, "restore", false, !several);
    if (!snap)
        return fail(snap.error());
    if (several && *snap != "latest")
        return fail(at("restore.snapshot", "must be \"latest\" with repositories (ids belong to one "
                                           "repository; use as_of for a point in time)"));
    restore.snapshot = *snap;
    if (auto as_of = opt_string(r, "restore", "as_of"); !as_of) {
        return fail(as_of.error());
    } else if (*as_of) {
        restore.as_of = parse_iso8601(**as_of);
        if (!restore.as_of)
            return fail(at("restore.as_of",
                           fmt::format("\"{}\" is not an RFC 3339 time such as \"2026-11-24T00:00:00Z\" (a "
                                       "date alone is ambiguous: write the time and zone)",
                                       **as_of)));
        restore.as_of_text = **as_of;
    }
    // Where it goes: target (one), target_dir (several), push_to (one).
    if (several) {
        if (r.contains("target"))
            return fail(at("restore.target", "is for one repository; use target_dir with repositories"));
        if (r.contains("push_to"))
            return fail(at("restore.push_to", "is for one repository (push each with its own job)"));
        auto dir = absolute_dir(r, "target_dir");
        if (!dir)
            return fail(dir.error());
        restore.target_dir = *dir;
    } else {
        if (r.contains("target_dir"))
            return fail(at("restore.target_dir", "is for repositories; use target with one repository"));
        if (auto p = r.find("push_to"); p != r.end()) {
            auto push = parse_push_to(*p, policy, env);
            if (!push)
                return fail(push.error());
            restore.push_to = std::move(*push);
        }
        if (r.contains("target") || !restore.push_to) {
            auto target = absolute_dir(r, "target");
            if (!target)
                return fail(target.error());
            restore.target = *target;
        }
    }
    return read_bool(r, "restore", "preserved", restore.preserved);
}

Status parse_sources(const json& root, TransportPolicy policy, const GetEnv& env,
                     std::vector<Source>& target) {
    auto it = root.find("sources");
    if (it == root.end())
        return {};
    if (!it->is_array())
        return fail(at("sources", fmt::format("must be an array, not {}", type_name(*it))));
    if (it->empty())
        return fail(at("sources", "must list at least one source"));
    for (std::size_t i = 0; i < it->size(); ++i) {
        auto src = parse_source((*it)[i], fmt::format("sources[{}]", i), policy, env);
        if (!src)
            return fail(src.error());
        target.push_back(std::move(*src));
    }
    return {};
}

// ---- The payload's sections, each parsed into its part of the Job.

// A parser of one part of the payload `root` into `job`.
using SectionParser = Status (*)(const json& root, Job& job, const GetEnv& env);

TransportPolicy transport_policy(const Job& job) {
    return {job.options.allow_http, job.options.allow_file};
}

Status parse_job_id_section(const json& root, Job& job, const GetEnv& /*env*/) {
    auto job_id = opt_string(root, "", "job_id");
    if (!job_id)
        return fail(job_id.error());
    job.job_id = job_id->value_or("job-" + new_snapshot_id());
    if (job.job_id.empty() || job.job_id.size() > 128 || !is_valid_repository_name(job.job_id) ||
        job.job_id.find('/') != std::string::npos)
        return fail(at("job_id", "must be 1-128 characters of A-Z a-z 0-9 . _ -"));
    return {};
}

Status parse_storage_section(const json& root, Job& job, const GetEnv& /*env*/) {
    auto storage_it = root.find("storage");
    if (storage_it == root.end())
        return fail(at("storage", "is required"));
    return parse_storage(*storage_it, job.storage);
}

Status parse_options_section(const json& root, Job& job, const GetEnv& env) {
    job.options.cache_dir = default_cache_dir(env);
    if (auto it = root.find("options"); it != root.end())
        return parse_options(*it, job.options, env);
    return {};
}

Status parse_sources_section(const json& root, Job& job, const GetEnv& env) {
    return parse_sources(root, transport_policy(job), env, job.sources);
}

// repositories (with defaults): required unless sources list them.
Status parse_repositories_section(const json& root, Job& job, const GetEnv& env) {
    auto it = root.find("repositories");
    if (it == root.end()) {
        if (job.sources.empty())
            return fail(at("repositories", "is required for a snapshot (or give sources)"));
        return {};
    }
    if (!it->is_array())
        return fail(at("repositories", fmt::format("must be an array, not {}", type_name(*it))));
    if (it->empty())
        return fail(at("repositories", "must list at least one repository"));
    if (it->size() > defaults::k_max_repositories)
        return fail(at("repositories", fmt::format("more than {} entries", defaults::k_max_repositories)));
    auto repo_defaults = parse_defaults(root, env);
    if (!repo_defaults)
        return fail(repo_defaults.error());
    std::map<std::string, std::string> names; // name -> URL of the entry that has it
    for (std::size_t i = 0; i < it->size(); ++i) {
        std::string path = fmt::format("repositories[{}]", i);
        auto repo = parse_repository((*it)[i], path, transport_policy(job), env, true);
        if (!repo)
            return fail(repo.error());
        apply_defaults((*it)[i], *repo_defaults, *repo);
        if (auto [pos, added] = names.emplace(repo->name, repo->url); !added)
            return fail(at(join_path(path, "name"),
                           fmt::format("\"{}\" appears twice ({} and {}); give one of them a \"name\"",
                                       repo->name, redact_url(pos->second), redact_url(repo->url))));
        job.repositories.push_back(std::move(*repo));
    }
    return {};
}

Status parse_restore_section(const json& root, Job& job, const GetEnv& env) {
    return parse_restore(root, transport_policy(job), env, job.restore);
}

Status parse_verify_section(const json& root, Job& job, const GetEnv& /*env*/) {
    job.verify.snapshot = std::string(defaults::k_snapshot);
    job.verify.drill = defaults::k_drill;
    auto it = root.find("verify");
    if (it == root.end())
        return {};
    if (auto s = check_object(*it, "verify", "verify"); !s)
        return s;
    if (auto s = read_repository_names(*it, "verify", job.verify.repositories); !s)
        return s;
    auto snap = snapshot_selector(*it, "verify", true);
    if (!snap)
        return fail(snap.error());
    job.verify.snapshot = *snap;
    return read_bool(*it, "verify", "drill", job.verify.drill);
}

Status parse_merge_reports_section(const json& root, Job& job, const GetEnv& /*env*/) {
    auto it = root.find("merge_reports");
    if (it == root.end())
        return fail(at("merge_reports", "is required for merge_reports"));
    if (auto s = check_object(*it, "merge_reports", "merge_reports"); !s)
        return s;
    auto id = req_string(*it, "merge_reports", "job_id");
    if (!id)
        return fail(id.error());
    if (id->size() > 128 || !is_valid_repository_name(*id) || id->find('/') != std::string::npos)
        return fail(at("merge_reports.job_id", "must be 1-128 characters of A-Z a-z 0-9 . _ -"));
    job.merge_reports.job_id = *id;
    return {};
}

Status parse_prune_section(const json& root, Job& job, const GetEnv& /*env*/) {
    return parse_prune(root, job.prune);
}

Status parse_gc_section(const json& root, Job& job, const GetEnv& /*env*/) {
    if (auto it = root.find("gc"); it != root.end()) {
        if (auto s = check_object(*it, "gc", "gc"); !s)
            return s;
        auto age = opt_int(*it, "gc", "min_age_s", 0, 315'360'000);
        if (!age)
            return fail(age.error());
        job.gc.min_age_s = age->value_or(job.gc.min_age_s);
        if (auto s = read_bool(*it, "gc", "allow_short_age", job.gc.allow_short_age); !s)
            return s;
    }
    if (job.gc.min_age_s < defaults::k_gc_min_age_floor_s && !job.gc.allow_short_age)
        return fail(at("gc.min_age_s",
                       fmt::format("{} is below the safety floor of {} seconds (a running snapshot's "
                                   "bundle would look like an orphan); set gc.allow_short_age to force it",
                                   job.gc.min_age_s, defaults::k_gc_min_age_floor_s)));
    return {};
}

Status parse_list_section(const json& root, Job& job, const GetEnv& /*env*/) {
    auto it = root.find("list");
    if (it == root.end())
        return {};
    if (auto s = check_object(*it, "list", "list"); !s)
        return s;
    auto repo = opt_string(*it, "list", "repository");
    if (!repo)
        return fail(repo.error());
    if (*repo && !is_valid_repository_name(**repo))
        return fail(at("list.repository", fmt::format("\"{}\" is not a valid repository name", **repo)));
    job.list.repository = *repo;
    return {};
}

// One section and the action that reads it (nullopt: every action).
struct Section {
    std::optional<Action> action;
    SectionParser parse;
};

// The sections in the order they are parsed: job_id, storage and options
// first, since a transport policy and defaults come from them.
const Section k_sections[] = {
    {std::nullopt, parse_job_id_section},
    {std::nullopt, parse_storage_section},
    {std::nullopt, parse_options_section},
    {Action::snapshot, parse_sources_section},
    {Action::snapshot, parse_repositories_section},
    {Action::restore, parse_restore_section},
    {Action::verify, parse_verify_section},
    {Action::merge_reports, parse_merge_reports_section},
    {Action::prune, parse_prune_section},
    {Action::gc, parse_gc_section},
    {Action::list, parse_list_section},
};
} // namespace

std::string_view action_name(Action action) {
    switch (action) {
    case Action::snapshot:
        return "snapshot";
    case Action::restore:
        return "restore";
    case Action::verify:
        return "verify";
    case Action::list:
        return "list";
    case Action::merge_reports:
        return "merge_reports";
    case Action::prune:
        return "prune";
    case Action::gc:
        return "gc";
    }
    return "?";
}

std::optional<std::string> process_env(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr)
        return std::nullopt;
    return std::string(v);
}

const std::map<std::string, std::vector<std::string>>& known_keys() {
    return k_known_keys;
}

bool is_valid_repository_name(std::string_view name) {
    if (name.empty() || name.size() > 200 || name.front() == '/' || name.back() == '/')
        return false;
    std::size_t start = 0;
    for (;;) {
        auto slash = name.find('/', start);
        std::string_view seg =
            name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
        if (seg.empty() || seg == "." || seg == ".." || seg.front() == '-')
            return false;
        for (unsigned char c : seg)
            if (!std::isalnum(c) && c != '.' && c != '_' && c != '-')
                return false;
        if (slash == std::string_view::npos)
            return true;
        start = slash + 1;
    }
}

Result<Job> parse_job(std::string_view text, const GetEnv& env) {
    if (text.size() > defaults::k_max_payload_bytes)
        return fail(at("", fmt::format("payload is larger than {} bytes", defaults::k_max_payload_bytes)));
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        return fail(at("", fmt::format("payload is not valid JSON (at byte {})", e.byte)));
    } catch (const json::exception&) {
        // out_of_range: a number too large for a double (found by fuzz_payload).
        return fail(at("", "payload is not valid JSON (a number is out of range)"));
    }
    if (auto s = check_object(root, "", "job"); !s)
        return fail(s.error());

    Job job;
    // version and action first: they decide what else is required.
    auto version = opt_int(root, "", "version", 0, 1 << 30);
    if (!version)
        return fail(version.error());
    if (!*version)
        return fail(at("version", "is required (use 1)"));
    if (**version != defaults::k_version)
        return fail(
            at("version", fmt::format("{} is not supported (this build reads version 1)", **version)));

    auto action = opt_string(root, "", "action");
    if (!action)
        return fail(action.error());
    std::string action_text = action->value_or("snapshot");
    if (action_text == "snapshot")
        job.action = Action::snapshot;
    else if (action_text == "restore")
        job.action = Action::restore;
    else if (action_text == "verify")
        job.action = Action::verify;
    else if (action_text == "list")
        job.action = Action::list;
    else if (action_text == "merge_reports")
        job.action = Action::merge_reports;
    else if (action_text == "prune")
        job.action = Action::prune;
    else if (action_text == "gc")
        job.action = Action::gc;
    else
        return fail(
            at("action",
               fmt::format("\"{}\" is not one of snapshot, restore, verify, list, merge_reports, prune, gc",
                           action_text)));

    // Sections that belong to another action are mistakes, not noise.
    for (const char* section : {"restore", "verify", "list", "merge_reports", "prune", "gc"})
        if (root.contains(section) && action_text != section)
            return fail(at(section, fmt::format("is only allowed with \"action\": \"{}\"", section)));
    for (const char* section : {"repositories", "sources", "defaults"})
        if (root.contains(section) && job.action != Action::snapshot)
            return fail(at(section, "is only allowed with \"action\": \"snapshot\""));

    // Then every section this action reads, in the order of the table.
    for (const auto& section : k_sections)
        if (!section.action || *section.action == job.action)
            if (auto s = section.parse(root, job, env); !s)
                return fail(s.error());
    return job;
}

} // namespace snapshotter::job
