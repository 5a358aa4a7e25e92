// Discovery: list a source's repositories through its forge's API (with
// retries, rate limits and pagination), filter them, and turn what is kept
// into job::Repository values that take the same path as the repositories
// a payload lists itself.
#pragma once

#include "snapshotter/job/job.hpp"
#include "snapshotter/source/filter.hpp"
#include "snapshotter/source/forge.hpp"
#include "snapshotter/util/http.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::source {

// One API request as the dry run and the report show it (never with a token).
struct ApiCall {
    std::string url;
    long status = 0; // 0: the network failed
    long long duration_ms = 0;
};

struct DiscoverOptions {
    int retries = 3;                             // extra attempts after a 5xx, 429 or network failure
    std::chrono::seconds max_wait{900};          // the longest rate-limit wait honoured
    int max_rate_limit_waits = 20;               // rate-limit waits per source
    std::chrono::milliseconds backoff_base{500}; // first backoff ceiling
    // Sleeps `duration`; false when the job was told to stop meanwhile.
    std::function<bool(std::chrono::milliseconds)> sleep;
};

struct Discovery {
    std::size_t listed = 0; // how many repositories the API listed
    // What the filters kept (in the API's order) and removed. A kept entry
    // holds only what the snapshot needs: its full name, the clone URL of
    // the source's transport, and its wiki URL when it has one (kept in
    // `https_url`/`wiki_https_url` or `ssh_url`/`wiki_ssh_url`); the rest
    // is dropped as each page is filtered.
    FilterResult filtered;
    std::vector<ApiCall> calls;
    int rate_limit_waits = 0;
    std::optional<Error> error; // set when the source failed; nothing of it is used then
};

// List, filter and check `source` through `forge`, reading its token from `env`.
Discovery discover(const job::Source& source, const Forge& forge, http::Client& client,
                   const job::GetEnv& env, const DiscoverOptions& options);

// How long the server asks to wait before retrying after `response`, seen
// at `now`: Retry-After (seconds), or on a 403/429 whose quota is spent,
// until X-RateLimit-Reset (GitHub, Gitea) or RateLimit-Reset (GitLab).
// nullopt when `response` is not a rate-limit answer.
std::optional<std::chrono::seconds> rate_limit_wait(const http::Response& response, Clock::time_point now);

// After a successful `response`: how long to wait before the next request
// because the quota is spent (remaining 0 until the reset), or nullopt.
std::optional<std::chrono::seconds> quota_wait(const http::Response& response, Clock::time_point now);

// The storage name of a discovered repository: the clone URL's host (with
// "_<port>" when the URL names a port), '/', the forge's full name.
std::string discovered_name(const GitUrl& url, std::string_view full_name);

struct Expansion {
    std::vector<job::Repository> repositories;
    // Repositories that could not be used, with why (bad URL, bad name, no ssh URL).
    std::vector<std::pair<std::string, std::string>> rejected;
    int wikis = 0;
};

// `kept` as repositories of the job: URL by `source.transport`, credentials,
// refs, discovered names, and each wiki when `source.include_wikis`.
Expansion expand(const job::Source& source, const Forge& forge, const std::vector<RemoteRepository>& kept,
                 TransportPolicy policy);

} // namespace snapshotter::source
