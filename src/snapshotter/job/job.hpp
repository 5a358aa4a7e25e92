// The job payload, version 1: the structs every action reads, and the parser
// that validates a JSON document into them. Every default lives in
// defaults.hpp; docs/job-payload.md and docs/job.schema.json describe the
// same contract for users.
#pragma once

#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/enums.hpp"
#include "snapshotter/storage/settings.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/time.hpp"
#include "snapshotter/util/url.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::job {

enum class Action { snapshot, restore, verify, list, merge_reports, prune, gc };

std::string_view action_name(Action action);

struct Credentials {
    std::string token_env;   // environment variable holding the token or password
    std::string username;    // user name sent with the token (basic auth)
    std::string ssh_key_env; // environment variable holding an OpenSSH private key (ssh URLs)
};

struct Repository {
    std::string url;               // as written in the payload (never holds a password)
    GitUrl parsed;                 // the parsed, allow-listed form of `url`
    std::string name;              // unique name, also the storage key of its snapshots
    std::vector<std::string> refs; // ref patterns to snapshot ("refs/heads/*")
    std::optional<Credentials> credentials;
    LfsMode lfs = *parse_lfs_mode(defaults::k_lfs); // also store Git LFS content (docs/lfs.md)
    // The LFS server's URL when git-lfs's derivation would be wrong (wins over .lfsconfig).
    std::optional<std::string> lfs_url;
};

// Where a source discovers repositories: a forge's API and one scope on it.
// Every source key is documented in docs/sources.md and docs/job-payload.md.
struct Source {
    ForgeType type = ForgeType::github;
    std::string api_url;                     // the API base, without a trailing '/'
    SourceScope scope = SourceScope::org;    // which scope key the payload gave
    std::string owner;                       // the scope's name: "acme", "acme/team-slug", "group/subgroup"
    std::optional<Credentials> credentials;  // token for the API (and git over https), ssh key for git
    std::vector<std::string> include;        // globs on the full name; empty: everything
    std::vector<std::string> exclude;        // globs on the full name
    bool archived = true;                    // keep archived repositories
    bool forks = true;                       // keep forks
    Visibility visibility = Visibility::all; // GitLab "internal" counts as private
    std::vector<std::string> topics;         // keep repositories carrying at least one of these
    std::optional<Clock::time_point> pushed_since;    // keep repositories pushed (active) since then
    std::string pushed_since_text;                    // as written, for reports
    int max_repositories = 0;                         // fail the source above this many; 0: no limit
    bool include_wikis = false;                       // also snapshot each repository's wiki
    CloneTransport transport = CloneTransport::https; // how git clones
    std::vector<std::string> refs;                    // ref patterns for every discovered repository
    LfsMode lfs = *parse_lfs_mode(defaults::k_lfs);   // Git LFS for every discovered repository
    std::string path;                                 // "sources[0]", for messages
    // A rate limit that resets later than this many seconds from now fails the source.
    int max_rate_limit_wait_s = defaults::k_max_rate_limit_wait_s;
};

// storage: the URL and the typed settings of its backend (storage/settings.hpp).
using StorageSpec = storage::Config;

// How ssh connections check the server's host key.
struct SshOptions {
    std::string known_hosts; // known_hosts lines; when set, the only keys ssh trusts
    HostKeyPolicy host_key_policy = *parse_host_key_policy(defaults::k_host_key_policy);
};

// How the git engines treat http(s) servers.
struct HttpOptions {
    RedirectPolicy follow_redirects = RedirectPolicy::same_origin; // which redirects are followed
};

// This process's part of a repository list split across containers.
struct Shard {
    int count = 1;
    int index = 0;
};

struct Options {
    std::filesystem::path cache_dir;             // mirrors live here between runs
    int timeout_s = defaults::k_timeout_s;       // per repository
    int deadline_s = defaults::k_deadline_s;     // whole job; 0 means none
    int concurrency = defaults::k_concurrency;   // repositories in flight
    int max_per_host = defaults::k_max_per_host; // repositories in flight per remote host
    int retries = defaults::k_retries;           // extra attempts after a transient failure
    int full_every = defaults::k_full_every;     // a full snapshot when the chain has this many bundles
    double full_size_ratio =
        defaults::k_full_size_ratio;   // ... or when incrementals exceed this share of the full
    int grace_s = defaults::k_grace_s; // after SIGTERM, time running repositories get
    bool allow_http = defaults::k_allow_http;
    bool allow_file = defaults::k_allow_file;
    bool allow_shallow = defaults::k_allow_shallow; // store a shallow upstream as a shallow snapshot
    Engine engine = *parse_engine(defaults::k_engine);
    VerifyMode verify =
        *parse_verify_mode(defaults::k_verify);            // how a streamed pack is checked before commit
    int max_refs = defaults::k_max_refs;                   // refs a server may advertise
    long long max_pack_bytes = defaults::k_max_pack_bytes; // pack bytes per fetch; 0 means none
    SshOptions ssh;
    HttpOptions http;
    std::optional<Shard> shard;
};

// Where a restore pushes its refs (restore.push_to): a remote as
// repositories describe one (its `name` and `refs` unused), and whether a
// remote that has refs already may be overwritten.
struct PushTo {
    Repository remote;
    bool force = false; // make a non-empty remote's refs equal the snapshot's (deleting the others)
};

struct RestoreSpec {
    std::string repository; // one repository (empty when `repositories` or `all` is used)
    std::string snapshot;   // "latest" or an id
    std::filesystem::path target;
    bool preserved = false; // also recreate rewritten/deleted tips under refs/snapshotter/preserved/
    std::vector<std::string> repositories;  // several repositories, each into target_dir/<name>.git
    bool all = false;                       // "repositories": "all": every repository in storage
    std::filesystem::path target_dir;       // with repositories/all: the tree the repositories go to
    std::optional<Clock::time_point> as_of; // the newest snapshot at or before this time, per repository
    std::string as_of_text;                 // as written, for reports
    std::optional<PushTo> push_to;          // push the restored refs to this remote
    // True when the job restores several repositories (repositories or all).
    [[nodiscard]] bool several() const { return all || !repositories.empty(); }
};

struct VerifySpec {
    std::vector<std::string> repositories; // empty: all
    std::string snapshot;                  // "latest", "all" or an id
    bool drill = false;
};

struct ListSpec {
    std::optional<std::string> repository; // nullopt: all
};

// Which snapshots a prune keeps; the rules are combined with OR, as restic's
// `forget` does. A count of 0 means the rule is not used.
struct Retention {
    int keep_last = defaults::k_keep;   // the newest N snapshots
    int keep_hourly = defaults::k_keep; // the newest snapshot of each of the last N hours that have one (UTC)
    int keep_daily = defaults::k_keep;  // ... days
    int keep_weekly = defaults::k_keep; // ... ISO weeks (Monday to Sunday)
    int keep_monthly = defaults::k_keep;     // ... months
    int keep_yearly = defaults::k_keep;      // ... years
    std::optional<CalendarSpan> keep_within; // everything newer than the newest snapshot minus this
    std::string keep_within_text;            // as written, for reports
    std::vector<std::string> pinned;         // snapshot ids kept whatever the rules say
    // True when no keep_* rule is set (pinned snapshots alone are not a policy).
    [[nodiscard]] bool empty() const {
        return keep_last + keep_hourly + keep_daily + keep_weekly + keep_monthly + keep_yearly == 0 &&
               !keep_within;
    }
};

struct PruneSpec {
    std::vector<std::string> repositories; // empty: all
    Retention policy;
    bool rebase =
        defaults::k_rebase; // write a new full bundle where a kept chain depends on a dropped snapshot
};

struct MergeReportsSpec {
    std::string job_id; // the sharded job whose reports to merge
};

struct GcSpec {
    long long min_age_s = defaults::k_gc_min_age_s; // leftovers idle at least this long go
    bool allow_short_age = defaults::k_gc_allow_short_age;
};

struct Job {
    int version = 1;
    Action action = Action::snapshot;
    std::string job_id;
    StorageSpec storage;
    std::vector<Repository> repositories;
    std::vector<Source> sources; // expanded into repositories when a snapshot starts
    Options options;
    RestoreSpec restore;
    VerifySpec verify;
    ListSpec list;
    MergeReportsSpec merge_reports;
    PruneSpec prune;
    GcSpec gc;
};

// Reads an environment variable; injectable for tests.
using GetEnv = std::function<std::optional<std::string>(const std::string&)>;

// The process environment.
std::optional<std::string> process_env(const std::string& name);

// Parse and validate `text`. Errors are PayloadError with the JSON path of the
// problem first, e.g. `repositories[2].url: scheme "ext" is not allowed`.
Result<Job> parse_job(std::string_view text, const GetEnv& env = process_env);

// True when `name` is a valid repository name: '/'-separated segments of
// [A-Za-z0-9._-], none "." or "..", at most 200 bytes.
bool is_valid_repository_name(std::string_view name);

// The keys each payload object accepts, by schema object name ("job",
// "storage", "repository", ...), so tests can compare them with the schema.
const std::map<std::string, std::vector<std::string>>& known_keys();

} // namespace snapshotter::job
