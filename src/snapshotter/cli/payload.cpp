#include "snapshotter/cli/payload.hpp"

#include "snapshotter/job/job.hpp"

#include <fmt/format.h>

namespace snapshotter::cli {
namespace {

using nlohmann::ordered_json;

Error usage(std::string message) {
    return {ErrorKind::Usage, std::move(message)};
}

void put(ordered_json& object, const char* key, const std::optional<std::string>& value) {
    if (value)
        object[key] = *value;
}

void put(ordered_json& object, const char* key, const std::optional<long long>& value) {
    if (value)
        object[key] = *value;
}

void put_true(ordered_json& object, const char* key, bool value) {
    if (value)
        object[key] = true;
}

void put_names(ordered_json& object, const char* key, const std::vector<std::string>& names) {
    if (!names.empty())
        object[key] = names;
}

// A storage-opt value as JSON: true/false and integers typed, the rest strings
// (the S3 settings are strings, booleans and integers).
ordered_json option_value(const std::string& text) {
    if (text == "true" || text == "false")
        return text == "true";
    if (!text.empty() && text.size() < 18 && text.find_first_not_of("0123456789") == std::string::npos)
        return std::stoll(text);
    return text;
}

Result<ordered_json> storage_of(const PayloadFlags& flags) {
    if (flags.storage.empty())
        return fail(usage("--storage URL is required (or give the whole job with --job-file)"));
    ordered_json storage = {{"url", flags.storage}};
    for (const auto& opt : flags.storage_options) {
        auto eq = opt.find('=');
        if (eq == std::string::npos || eq == 0)
            return fail(
                usage(fmt::format("--storage-opt \"{}\": expected KEY=VALUE (region=eu-west-1)", opt)));
        storage[opt.substr(0, eq)] = option_value(opt.substr(eq + 1));
    }
    return storage;
}

// The credential flags as the `credentials` of `object` (a repository or a source), when any is given.
void put_credentials(ordered_json& object, const PayloadFlags& flags) {
    ordered_json credentials = ordered_json::object();
    put(credentials, "token_env", flags.token_env);
    put(credentials, "ssh_key_env", flags.ssh_key_env);
    put(credentials, "username", flags.username);
    if (!credentials.empty())
        object["credentials"] = std::move(credentials);
}

// One snapshot --repo: "URL" or "NAME=URL" (NAME a valid repository name).
ordered_json repository_of(const std::string& spec, const PayloadFlags& flags) {
    ordered_json repo;
    auto eq = spec.find('=');
    if (eq != std::string::npos && job::is_valid_repository_name(spec.substr(0, eq))) {
        repo["url"] = spec.substr(eq + 1);
        repo["name"] = spec.substr(0, eq);
    } else {
        repo["url"] = spec;
    }
    if (!flags.refs.empty())
        repo["refs"] = flags.refs;
    put_credentials(repo, flags);
    return repo;
}

// One snapshot --source: "TYPE:SCOPE/NAME" ("github:org/acme", "gitlab:group/acme/platform",
// "github:team/acme/core"), with --api-url, the credential flags and --ref; --ssh-key-env
// makes git clone over ssh while the API gets the token.
Result<ordered_json> source_of(const std::string& spec, const PayloadFlags& flags) {
    auto colon = spec.find(':');
    auto slash = spec.find('/', colon == std::string::npos ? 0 : colon);
    if (colon == std::string::npos || colon == 0 || slash == std::string::npos || slash == colon + 1 ||
        slash + 1 == spec.size())
        return fail(usage(fmt::format(
            "--source \"{}\": expected TYPE:SCOPE/NAME (github:org/acme, gitlab:group/acme/platform, "
            "gitea:user/bob, bitbucket:workspace/team1)",
            spec)));
    ordered_json source = {{"type", spec.substr(0, colon)}};
    put(source, "api_url", flags.api_url);
    source[spec.substr(colon + 1, slash - colon - 1)] = spec.substr(slash + 1);
    put_credentials(source, flags);
    if (flags.ssh_key_env)
        source["transport"] = "ssh";
    if (!flags.refs.empty())
        source["refs"] = flags.refs;
    return source;
}

Result<ordered_json> snapshot_part(const PayloadFlags& flags, ordered_json& payload) {
    if (flags.repos.empty() && flags.sources.empty())
        return fail(
            usage("snapshot needs at least one --repo URL (or NAME=URL) or --source TYPE:SCOPE/NAME"));
    if (!flags.sources.empty()) {
        ordered_json sources = ordered_json::array();
        for (const auto& spec : flags.sources) {
            auto source = source_of(spec, flags);
            if (!source)
                return fail(source.error());
            sources.push_back(std::move(*source));
        }
        payload["sources"] = std::move(sources);
    }
    if (!flags.repos.empty()) {
        ordered_json repos = ordered_json::array();
        for (const auto& spec : flags.repos)
            repos.push_back(repository_of(spec, flags));
        payload["repositories"] = std::move(repos);
    }
    ordered_json options = ordered_json::object();
    put(options, "cache_dir", flags.cache_dir);
    put(options, "timeout_s", flags.timeout_s);
    put(options, "deadline_s", flags.deadline_s);
    put(options, "concurrency", flags.concurrency);
    put(options, "retries", flags.retries);
    put_true(options, "allow_http", flags.allow_http);
    put(options, "engine", flags.engine);
    if (!options.empty())
        payload["options"] = std::move(options);
    return payload;
}

// One repository (--repo NAME --target DIR, or --push-to URL) or several
// (--repo repeated or --all, with --target-dir DIR).
Result<ordered_json> restore_part(const PayloadFlags& flags, ordered_json& payload) {
    if (flags.all && !flags.repos.empty())
        return fail(usage("restore takes --repo NAME (repeatable) or --all, not both"));
    if (!flags.all && flags.repos.empty())
        return fail(usage("restore needs --repo NAME (repeatable) or --all"));
    const bool several = flags.all || flags.repos.size() > 1 || flags.target_dir;
    ordered_json restore = ordered_json::object();
    if (several) {
        if (!flags.target_dir)
            return fail(
                usage("restoring several repositories needs --target-dir DIR (one bare repository per "
                      "name below it)"));
        restore["repositories"] = flags.all ? ordered_json("all") : ordered_json(flags.repos);
    } else {
        if (!flags.target && !flags.push_to)
            return fail(usage("restore needs --target DIR (a new bare repository) or --push-to URL"));
        restore["repository"] = flags.repos.front();
    }
    put(restore, "snapshot", flags.snapshot);
    put(restore, "as_of", flags.as_of);
    put(restore, "target", flags.target);
    put(restore, "target_dir", flags.target_dir);
    put_true(restore, "preserved", flags.preserved);
    if (flags.push_to) {
        ordered_json push = {{"url", *flags.push_to}};
        put_credentials(push, flags);
        put_true(push, "force", flags.force);
        restore["push_to"] = std::move(push);
    }
    payload["restore"] = std::move(restore);
    if (flags.allow_http)
        payload["options"] = {{"allow_http", true}};
    return payload;
}

Result<ordered_json> verify_part(const PayloadFlags& flags, ordered_json& payload) {
    ordered_json verify = ordered_json::object();
    put_names(verify, "repositories", flags.repos);
    put(verify, "snapshot", flags.snapshot);
    put_true(verify, "drill", flags.drill);
    if (!verify.empty())
        payload["verify"] = std::move(verify);
    return payload;
}

Result<ordered_json> list_part(const PayloadFlags& flags, ordered_json& payload) {
    if (flags.repos.size() > 1)
        return fail(usage("list takes at most one --repo NAME"));
    if (!flags.repos.empty())
        payload["list"] = {{"repository", flags.repos.front()}};
    return payload;
}

Result<ordered_json> prune_part(const PayloadFlags& flags, ordered_json& payload) {
    ordered_json prune = ordered_json::object();
    put_names(prune, "repositories", flags.repos);
    put(prune, "keep_last", flags.keep_last);
    put(prune, "keep_hourly", flags.keep_hourly);
    put(prune, "keep_daily", flags.keep_daily);
    put(prune, "keep_weekly", flags.keep_weekly);
    put(prune, "keep_monthly", flags.keep_monthly);
    put(prune, "keep_yearly", flags.keep_yearly);
    put(prune, "keep_within", flags.keep_within);
    put_names(prune, "pinned", flags.pinned);
    put_true(prune, "rebase", flags.rebase);
    payload["prune"] = std::move(prune);
    return payload;
}

Result<ordered_json> gc_part(const PayloadFlags& flags, ordered_json& payload) {
    ordered_json gc = ordered_json::object();
    put(gc, "min_age_s", flags.min_age_s);
    put_true(gc, "allow_short_age", flags.allow_short_age);
    if (!gc.empty())
        payload["gc"] = std::move(gc);
    return payload;
}

} // namespace

const std::vector<std::string>& action_names() {
    static const std::vector<std::string> k_names{"snapshot", "restore", "verify",       "list",
                                                  "prune",    "gc",      "merge-reports"};
    return k_names;
}

Result<ordered_json> build_payload(const std::string& action, const PayloadFlags& flags) {
    auto storage = storage_of(flags);
    if (!storage)
        return fail(storage.error());
    const bool merge = action == "merge-reports";
    ordered_json payload = {{"version", 1}, {"action", merge ? "merge_reports" : action}};
    if (flags.job_id && !merge)
        payload["job_id"] = *flags.job_id;
    payload["storage"] = std::move(*storage);
    if (action == "snapshot")
        return snapshot_part(flags, payload);
    if (action == "restore")
        return restore_part(flags, payload);
    if (action == "verify")
        return verify_part(flags, payload);
    if (action == "list")
        return list_part(flags, payload);
    if (action == "prune")
        return prune_part(flags, payload);
    if (action == "gc")
        return gc_part(flags, payload);
    if (merge) {
        if (!flags.job_id)
            return fail(usage("merge-reports needs --job-id ID (the sharded job whose reports to merge)"));
        payload["merge_reports"] = {{"job_id", *flags.job_id}};
        return payload;
    }
    return fail(usage(fmt::format("unknown action \"{}\"", action)));
}

} // namespace snapshotter::cli
