#include "snapshotter/source/discover.hpp"

#include "snapshotter/util/backoff.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/stop.hpp"
#include "snapshotter/util/time.hpp"

#include <charconv>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <thread>

namespace snapshotter::source {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds k_backoff_cap{30'000};
constexpr std::size_t k_max_pages = 100'000;
constexpr std::size_t k_max_page_bytes = std::size_t{64} << 20;

std::optional<long long> header_number(const http::Response& r, std::string_view name) {
    auto v = r.header(name);
    if (!v)
        return std::nullopt;
    long long n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || end != v->data() + v->size())
        return std::nullopt;
    return n;
}

// Seconds until the reset of a spent quota (GitHub/Gitea X-RateLimit-*, GitLab RateLimit-*).
std::optional<std::chrono::seconds> until_reset(const http::Response& r, Clock::time_point now) {
    for (auto [remaining, reset] : {std::pair{"x-ratelimit-remaining", "x-ratelimit-reset"},
                                    std::pair{"ratelimit-remaining", "ratelimit-reset"}}) {
        auto left = header_number(r, remaining);
        auto at = header_number(r, reset);
        if (left && *left == 0 && at) {
            auto wait =
                *at - std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
            return std::chrono::seconds{std::max<long long>(1, wait)};
        }
    }
    return std::nullopt;
}

// The scheme and authority of `url` ("https://host:port"), for same-origin checks.
std::string origin_of(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos)
        return {};
    auto slash = url.find('/', scheme + 3);
    return std::string(url.substr(0, slash));
}

// The "message" of an API error body, shortened and redacted, or "".
std::string api_message(const http::Response& r) {
    json body = json::parse(r.body, nullptr, false);
    std::string m;
    if (body.is_object()) {
        m = json_string(body, "message");
        if (m.empty())
            if (auto e = body.find("error"); e != body.end())
                m = e->is_object() ? json_string(*e, "message") : e->is_string() ? e->get<std::string>() : "";
    }
    if (m.size() > 200)
        m = m.substr(0, 200) + "...";
    return m.empty() ? std::string() : ": " + redact(m);
}

// Drop from a kept repository what only the filters needed (topics,
// visibility, times) and the URLs of the other transport, heap included.
void keep_only_what_the_snapshot_needs(RemoteRepository& r, bool ssh) {
    auto drop = [](std::string& s) { std::string().swap(s); };
    drop(ssh ? r.https_url : r.ssh_url);
    drop(ssh ? r.wiki_https_url : r.wiki_ssh_url);
    drop(r.visibility);
    std::vector<std::string>().swap(r.topics);
    r.pushed_at.reset();
}

bool default_sleep(std::chrono::milliseconds duration) {
    auto end = SteadyClock::now() + duration;
    while (SteadyClock::now() < end) {
        if (stop_requested())
            return false;
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
            std::chrono::milliseconds{50},
            std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now())));
    }
    return !stop_requested();
}

class Fetcher {
  public:
    Fetcher(const job::Source& source, http::Client& client, std::vector<http::Header> headers,
            const DiscoverOptions& options, Discovery& out)
        : m_source(source), m_client(client), m_headers(std::move(headers)), m_options(options), m_out(out) {}

    // GET `url`: retries network failures, 5xx and 429 with backoff, waits
    // out rate limits; any other non-2xx fails.
    Result<http::Response> get(const std::string& url) {
        const std::string shown = redact_url(url);
        for (int attempt = 0;; ++attempt) {
            http::Request request;
            request.url = url;
            request.headers = m_headers;
            request.max_body = k_max_page_bytes;
            request.timeout = std::chrono::seconds{120};
            const auto start = SteadyClock::now();
            auto r = m_client.perform(request);
            m_out.calls.push_back(
                {shown, r ? r->status : 0,
                 std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count()});
            if (!r) {
                if (r.error().transport && attempt < m_options.retries) {
                    if (!backoff(attempt))
                        return fail(Error::interrupted("the job was interrupted"));
                    continue;
                }
                return fail(Error::git(fmt::format("GET {}: {}", shown, redact(r.error().error.message))));
            }
            const auto now = Clock::now();
            if (r->ok()) {
                if (auto w = quota_wait(*r, now))
                    if (auto s = wait(*w, shown); !s)
                        return fail(s.error());
                return std::move(*r);
            }
            if (auto w = rate_limit_wait(*r, now)) {
                if (auto s = wait(*w, shown); !s)
                    return fail(s.error());
                --attempt; // a rate-limit wait is not a failed attempt
                continue;
            }
            const long status = r->status;
            if ((status >= 500 || status == 429) && attempt < m_options.retries) {
                if (!backoff(attempt))
                    return fail(Error::interrupted("the job was interrupted"));
                continue;
            }
            return fail(Error::git(describe(status, shown, *r)));
        }
    }

  private:
    std::string describe(long status, const std::string& shown, const http::Response& r) const {
        const bool token = m_source.credentials && !m_source.credentials->token_env.empty();
        if (status == 401)
            return fmt::format("GET {}: HTTP 401, authentication failed ({}){}", shown,
                               token ? fmt::format("check the token in {}", m_source.credentials->token_env)
                                     : "the API needs a token: set credentials.token_env",
                               api_message(r));
        if (status == 403)
            return fmt::format(
                "GET {}: HTTP 403, access denied (the token lacks the scope or permission to list "
                "this {}){}",
                shown, job::to_string(m_source.scope), api_message(r));
        if (status == 404)
            return fmt::format("GET {}: HTTP 404, the {} \"{}\" does not exist or is not visible to {}{}",
                               shown, job::to_string(m_source.scope), m_source.owner,
                               token ? "this token" : "anonymous requests", api_message(r));
        return fmt::format("GET {}: HTTP {}{}", shown, status, api_message(r));
    }

    bool backoff(int attempt) { return sleep(backoff_delay(attempt, m_options.backoff_base, k_backoff_cap)); }

    Status wait(std::chrono::seconds duration, const std::string& shown) {
        if (duration > m_options.max_wait)
            return fail(Error::git(fmt::format(
                "GET {}: the API rate limit resets at {} ({} s from now), later than this source waits "
                "(max_rate_limit_wait_s: {}); run it again after the reset or use another token",
                shown,
                format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(Clock::now() + duration)),
                duration.count(), m_options.max_wait.count())));
        if (++m_out.rate_limit_waits > m_options.max_rate_limit_waits)
            return fail(Error::git(fmt::format("GET {}: rate limited {} times in a row; giving up", shown,
                                               m_options.max_rate_limit_waits)));
        spdlog::warn("{}: rate limited by the API; waiting {} s", m_source.path, duration.count());
        if (!sleep(duration))
            return fail(Error::interrupted("the job was interrupted"));
        return {};
    }

    bool sleep(std::chrono::milliseconds d) {
        return m_options.sleep ? m_options.sleep(d) : default_sleep(d);
    }

    const job::Source& m_source;
    http::Client& m_client;
    std::vector<http::Header> m_headers;
    const DiscoverOptions& m_options;
    Discovery& m_out;
};

} // namespace

std::optional<std::chrono::seconds> rate_limit_wait(const http::Response& response, Clock::time_point now) {
    if (response.status != 403 && response.status != 429)
        return std::nullopt;
    if (auto after = header_number(response, "retry-after"); after && *after >= 0)
        return std::chrono::seconds{std::max<long long>(1, *after)};
    return until_reset(response, now);
}

std::optional<std::chrono::seconds> quota_wait(const http::Response& response, Clock::time_point now) {
    return until_reset(response, now);
}

Discovery discover(const job::Source& source, const Forge& forge, http::Client& client,
                   const job::GetEnv& env, const DiscoverOptions& options) {
    Discovery out;
    std::string token, username;
    if (source.credentials && !source.credentials->token_env.empty()) {
        auto value = env(source.credentials->token_env);
        if (!value || value->empty()) {
            out.error =
                Error::payload(fmt::format("{}.credentials.token_env: environment variable {} is not set",
                                           source.path, source.credentials->token_env));
            return out;
        }
        token = *value;
        register_secret(token);
        username = source.credentials->username;
    }
    Fetcher fetch(source, client, forge.auth_headers(token, username), options, out);
    const std::string origin = origin_of(source.api_url);

    // 1. Who the token belongs to, where the scope depends on it.
    std::optional<json> identity;
    if (auto url = forge.identity_url(!token.empty()); !url.empty()) {
        auto r = fetch.get(url);
        if (!r) {
            out.error = r.error();
            return out;
        }
        auto body = parse_json_body(*r, json::value_t::object);
        if (!body) {
            out.error = body.error().with_context(fmt::format("GET {}", redact_url(url)));
            return out;
        }
        identity = std::move(*body);
    }

    // 2. Every page, following the forge's next links on the API's own origin.
    auto first = forge.first_page_url(identity ? &*identity : nullptr);
    if (!first) {
        out.error = first.error();
        return out;
    }
    std::string url = *first;
    for (std::size_t pages = 0; !url.empty(); ++pages) {
        if (pages >= k_max_pages) {
            out.error = Error::git(fmt::format("the API returned more than {} pages; stopped", k_max_pages));
            return out;
        }
        auto r = fetch.get(url);
        if (!r) {
            out.error = r.error();
            return out;
        }
        auto page = forge.parse_page(*r, url);
        if (!page) {
            out.error = page.error().with_context(fmt::format("GET {}", redact_url(url)));
            return out;
        }
        out.listed += page->repositories.size();
        const std::size_t before = out.filtered.kept.size();
        filter_into(source, std::move(page->repositories), out.filtered);
        for (std::size_t i = before; i < out.filtered.kept.size(); ++i)
            keep_only_what_the_snapshot_needs(out.filtered.kept[i],
                                              source.transport == job::CloneTransport::ssh);
        if (!page->next_url.empty() && origin_of(page->next_url) != origin) {
            out.error =
                Error::git(fmt::format("GET {}: the next page {} is not on the API's origin {}; refused",
                                       redact_url(url), redact_url(page->next_url), origin));
            return out;
        }
        if (page->next_url == url) {
            out.error =
                Error::git(fmt::format("GET {}: the next page is the same page; stopped", redact_url(url)));
            return out;
        }
        url = std::move(page->next_url);
    }

    // 3. The hard cap on what the filters kept (never a silent truncation).
    if (source.max_repositories > 0 &&
        out.filtered.kept.size() > static_cast<std::size_t>(source.max_repositories))
        out.error =
            Error::git(fmt::format("{} repositories are left after the filters, more than max_repositories "
                                   "({}); nothing of this source is snapshotted",
                                   out.filtered.kept.size(), source.max_repositories));
    return out;
}

std::string discovered_name(const GitUrl& url, std::string_view full_name) {
    std::string host = url.port.empty() ? url.host : url.host + "_" + url.port;
    return fmt::format("{}/{}", host, full_name);
}

Expansion expand(const job::Source& source, const Forge& forge, const std::vector<RemoteRepository>& kept,
                 TransportPolicy policy) {
    Expansion out;
    const bool ssh = source.transport == job::CloneTransport::ssh;
    // `label` names the repository in the rejected list ("acme/app (wiki)").
    auto add = [&](const std::string& full_name, const std::string& label, const std::string& url,
                   std::string_view suffix) {
        if (url.empty()) {
            out.rejected.emplace_back(
                label, fmt::format("the forge gives no {} URL", job::to_string(source.transport)));
            return;
        }
        auto parsed = parse_git_url(url, policy);
        if (!parsed) {
            out.rejected.emplace_back(label, parsed.error().message);
            return;
        }
        job::Repository repo;
        repo.url = url;
        repo.parsed = *parsed;
        repo.name = discovered_name(*parsed, full_name) + std::string(suffix);
        if (!job::is_valid_repository_name(repo.name)) {
            out.rejected.emplace_back(label, fmt::format("\"{}\" is not a valid repository name", repo.name));
            return;
        }
        repo.refs = source.refs;
        repo.lfs = source.lfs;
        if (source.credentials) {
            const auto& c = *source.credentials;
            if (ssh && !c.ssh_key_env.empty())
                repo.credentials = job::Credentials{"", c.username, c.ssh_key_env};
            else if (!ssh && !c.token_env.empty())
                repo.credentials = job::Credentials{
                    c.token_env, c.username.empty() ? std::string(forge.git_username()) : c.username, ""};
        }
        out.repositories.push_back(std::move(repo));
    };
    for (const auto& r : kept) {
        add(r.full_name, r.full_name, ssh ? r.ssh_url : r.https_url, "");
        if (source.include_wikis && r.has_wiki) {
            std::size_t before = out.repositories.size();
            add(r.full_name, r.full_name + " (wiki)", ssh ? r.wiki_ssh_url : r.wiki_https_url, ".wiki");
            out.wikis += static_cast<int>(out.repositories.size() - before);
        }
    }
    return out;
}

} // namespace snapshotter::source
