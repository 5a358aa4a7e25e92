// A forge's repository listing API behind one small interface: which URL
// lists a scope, how requests authenticate, and how one page of the answer
// reads (its repositories and the next page). The HTTP exchange, retries and
// rate limits live in discover.hpp; these functions are pure, so unit tests
// feed them recorded responses.
#pragma once

#include "snapshotter/job/job.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/http.hpp"
#include "snapshotter/util/time.hpp"

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::source {

// One repository as a forge lists it.
struct RemoteRepository {
    std::string full_name; // "owner/repo"; GitLab "group/subgroup/project"
    std::string https_url; // clone URL over http(s)
    std::string ssh_url;   // clone URL over ssh (may be empty)
    bool archived = false;
    bool fork = false;
    std::string visibility; // public | private | internal
    std::vector<std::string> topics;
    std::optional<Clock::time_point> pushed_at; // last push or activity, when the forge says
    bool has_wiki = false;                      // the forge says the repository has a wiki
    std::string wiki_https_url;
    std::string wiki_ssh_url;
};

// One page of a listing.
struct Page {
    std::vector<RemoteRepository> repositories;
    std::string next_url; // empty on the last page
};

class Forge {
  public:
    virtual ~Forge() = default;
    // A request to make before the listing (GitHub: who owns the token), or
    // empty when none is needed; `has_token` says whether a token is sent.
    [[nodiscard]] virtual std::string identity_url(bool has_token) const;
    // The URL of the first page; `identity` is the parsed answer to
    // identity_url() when one was made.
    [[nodiscard]] virtual Result<std::string> first_page_url(const nlohmann::json* identity) const = 0;
    // Headers that authenticate a request with `token` (empty: anonymous).
    [[nodiscard]] virtual std::vector<http::Header> auth_headers(const std::string& token,
                                                                 const std::string& username) const = 0;
    // The repositories in `response` to a request for `url`, and the next page.
    [[nodiscard]] virtual Result<Page> parse_page(const http::Response& response,
                                                  const std::string& url) const = 0;
    // The user name git sends with the token over https unless the source names one.
    [[nodiscard]] virtual std::string_view git_username() const = 0;
};

// The forge of `source.type`, listing `source`'s scope.
std::unique_ptr<Forge> make_forge(const job::Source& source);

// The rel="next" target of an RFC 8288 Link header value, or empty.
std::string link_next(std::string_view link);

// `url` with query parameter `name` set to `value` (added or replaced).
std::string with_query(std::string_view url, std::string_view name, std::string_view value);

// `text` percent-encoded for a path segment or query value (RFC 3986 unreserved kept).
std::string percent_encode(std::string_view text);

// A clone URL's wiki counterpart: ".git" replaced by ".wiki.git" (GitHub, GitLab, Gitea).
std::string wiki_url_of(std::string_view clone_url);

// Helpers for the forge implementations: a string or boolean member of an
// object ("" or false when absent or of another type), and a response body
// parsed as JSON whose top level must be `kind` (array or object).
std::string json_string(const nlohmann::json& j, const char* key);
bool json_bool(const nlohmann::json& j, const char* key);
Result<nlohmann::json> parse_json_body(const http::Response& response, nlohmann::json::value_t kind);

// A page of the repository listings GitHub and Gitea write alike: a JSON array of repository
// objects (full_name, clone_url, ssh_url, archived, fork, has_wiki, topics), the time of the
// last push under `pushed_at_key`, the visibility as `visibility_of` reads it from an object,
// wiki URLs derived from the clone URLs, and the next page from the `Link` header.
Result<Page> parse_github_style_page(const http::Response& response, const char* pushed_at_key,
                                     std::string (*visibility_of)(const nlohmann::json& r));

// Forge constructors (one file each).
std::unique_ptr<Forge> make_github(const job::Source& source);
std::unique_ptr<Forge> make_gitlab(const job::Source& source);
std::unique_ptr<Forge> make_gitea(const job::Source& source);
std::unique_ptr<Forge> make_bitbucket(const job::Source& source);

} // namespace snapshotter::source
