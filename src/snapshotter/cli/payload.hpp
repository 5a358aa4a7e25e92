// Job payloads built from subcommand flags (`snapshotter list --storage URL`),
// so a person never has to write JSON for one run. The payload built is the
// same document a job file would hold: job::parse_job validates it, and
// `--print-payload` shows it so a command can become a job file.
#pragma once

#include "snapshotter/util/error.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::cli {

// The values of the payload-building flags, each unset unless given.
struct PayloadFlags {
    // Every action.
    std::string storage;                      // --storage URL
    std::vector<std::string> storage_options; // --storage-opt KEY=VALUE (S3 settings)
    std::optional<std::string> job_id;        // --job-id (merge-reports: the job to merge)
    // snapshot
    std::vector<std::string> repos;         // --repo: snapshot: URL or NAME=URL; other actions: a name
    std::vector<std::string> sources;       // --source TYPE:SCOPE/NAME ("github:org/acme")
    std::optional<std::string> api_url;     // --api-url URL, for every --source
    std::vector<std::string> refs;          // --ref PATTERN, for every repository
    std::optional<std::string> token_env;   // --token-env VAR
    std::optional<std::string> ssh_key_env; // --ssh-key-env VAR
    std::optional<std::string> username;    // --username NAME
    std::optional<std::string> engine;      // --engine auto|stream|cli
    std::optional<std::string> cache_dir;   // --cache-dir DIR
    std::optional<long long> concurrency;   // --concurrency N
    std::optional<long long> timeout_s;     // --timeout S
    std::optional<long long> deadline_s;    // --deadline S
    std::optional<long long> retries;       // --retries N
    bool allow_http = false;                // --allow-http
    // restore, verify
    std::optional<std::string> snapshot; // --snapshot ID|latest|all
    std::optional<std::string> target;   // --target DIR
    bool preserved = false;              // --preserved
    bool drill = false;                  // --drill
    // restore
    std::optional<std::string> as_of;      // --as-of TIME
    bool all = false;                      // --all
    std::optional<std::string> target_dir; // --target-dir DIR
    std::optional<std::string> push_to;    // --push-to URL (credentials from --token-env and friends)
    bool force = false;                    // --force
    // prune
    std::optional<long long> keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
    std::optional<std::string> keep_within; // --keep-within 30d
    std::vector<std::string> pinned;        // --pin ID
    bool rebase = false;                    // --rebase
    // gc
    std::optional<long long> min_age_s; // --min-age S
    bool allow_short_age = false;       // --allow-short-age
};

// The action names of the command line, in help order ("merge-reports" for
// the payload's "merge_reports").
const std::vector<std::string>& action_names();

// The payload `flags` describe for `action` (a name of action_names()), keys
// in the order the docs list them; no `job_id` unless given. Only the flags
// of `action` are read (the command line offers no others). Fails with
// UsageError naming the flag when a required one is missing (`--storage`,
// snapshot's `--repo` or `--source`, restore's `--repo` (or `--all`) and
// `--target`, `--target-dir` or `--push-to`, merge-reports' `--job-id`), a
// `--storage-opt` is not KEY=VALUE or a `--source` is not TYPE:SCOPE/NAME.
// Values are not validated here: job::parse_job does that, with the messages
// a job file gets.
Result<nlohmann::ordered_json> build_payload(const std::string& action, const PayloadFlags& flags);

} // namespace snapshotter::cli
