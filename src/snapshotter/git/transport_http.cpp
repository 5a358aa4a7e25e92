// Smart HTTP (gitprotocol-http) with protocol v2, through libcurl's easy
// interface. Kept deliberately small: GET info/refs for the advertisement,
// then one POST per command, every body streamed to the caller's handler as
// curl delivers it. libcurl reads the usual proxy variables (http_proxy,
// https_proxy, no_proxy, all_proxy) itself. Credentials go through
// CURLOPT_USERNAME/PASSWORD (never the URL), and only to the origin (scheme,
// host, port) of the configured URL: redirects are followed here, one hop at
// a time, each decided by decide_redirect(), never by libcurl. A request()
// may come without read_advertisement() (stateless(): the protocol client
// skips the GET when it knows the origin, git/protocol.hpp CapabilityMemo).
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/http.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"

#include <array>
#include <curl/curl.h>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <optional>

namespace snapshotter::git {
namespace {

constexpr std::string_view k_info_refs_suffix = "/info/refs?service=git-upload-pack";
constexpr std::size_t k_max_error_body = 1024;

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlHeaders = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State of one transfer, seen by the write callback.
struct Transfer {
    CURL* curl = nullptr;
    const ResponseHandler* handler = nullptr;
    std::string_view expected_type; // Content-Type the body must have
    bool checked = false;           // status and type looked at
    bool accepted = false;          // the body goes to the handler
    bool done = false;              // the handler has the whole response
    bool stopped = false;           // the transfer was ended on purpose (a complete response, or enough of
                                    // one that is refused)
    std::size_t header_bytes = 0;   // counted against http::k_max_response_header_bytes
    bool headers_too_large = false;
    long status = 0;
    std::string content_type;
    std::string error_body;       // start of a non-200 body, for the message
    std::optional<Error> failure; // the handler's error
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    std::size_t n = size * count;
    if (!t.checked) {
        t.checked = true;
        curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
        char* type = nullptr;
        curl_easy_getinfo(t.curl, CURLINFO_CONTENT_TYPE, &type);
        t.content_type = type != nullptr ? type : "";
        t.accepted = t.status == 200 && t.content_type.starts_with(t.expected_type);
    }
    if (!t.accepted) {
        // The start of an answer that is not one is kept for the message; the
        // rest is not read (an endless body would hold the request to its deadline).
        if (t.error_body.size() >= k_max_error_body) {
            t.stopped = true;
            return 0;
        }
        t.error_body.append(data, std::min(n, k_max_error_body - t.error_body.size()));
        return n;
    }
    if (t.done) {
        // Nothing should follow a complete response (a v0 advertisement does,
        // and is not wanted): end the transfer rather than read it.
        t.stopped = true;
        return 0;
    }
    auto done = (*t.handler)(std::as_bytes(std::span<const char>(data, n)));
    if (!done) {
        t.failure = done.error();
        return 0; // makes curl abort with CURLE_WRITE_ERROR
    }
    t.done = *done;
    return n;
}

std::size_t on_header(char* /*data*/, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    t.header_bytes += size * count;
    if (t.header_bytes > http::k_max_response_header_bytes) {
        t.headers_too_large = true;
        return 0; // makes curl abort with CURLE_WRITE_ERROR
    }
    return size * count;
}

bool is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// `url` fit for a message: no userinfo, no query.
std::string url_for_message(std::string_view url) {
    std::string out = redact_url(url);
    if (auto q = out.find_first_of("?#"); q != std::string::npos)
        out.resize(q);
    return redact(wire_excerpt(out));
}

class HttpConnection final : public Connection {
  public:
    HttpConnection(std::string base_url, const TransportOptions& options, bool allow_plain_http)
        : m_base(std::move(base_url)), m_origin(origin_of(m_base)), m_options(options),
          m_allow_http(allow_plain_http), m_deadline(std::chrono::steady_clock::now() + options.timeout),
          m_description(redact_url(m_base)) {}

    Status read_advertisement(const ResponseHandler& handler) override {
        std::string url = m_base + std::string(k_info_refs_suffix);
        std::string effective;
        if (auto s =
                perform(url, nullptr, "application/x-git-upload-pack-advertisement", handler, &effective);
            !s)
            return s;
        // Later requests go where the redirects led (as git does).
        if (effective.ends_with(k_info_refs_suffix) && effective != url)
            m_base = effective.substr(0, effective.size() - k_info_refs_suffix.size());
        m_advertised_by_origin = m_origin && origin_of(effective) == m_origin;
        return {};
    }

    Status request(std::string_view body, const ResponseHandler& handler) override {
        return perform(m_base + "/git-upload-pack", &body, "application/x-git-upload-pack-result", handler,
                       nullptr);
    }

    Status close() override { return {}; }

    [[nodiscard]] std::string describe() const override { return m_description; }

    [[nodiscard]] bool stateless() const override { return true; }

    [[nodiscard]] bool advertised_by_origin() const override { return m_advertised_by_origin; }

  private:
    // One request, following redirects as the policy says; `effective_url`
    // (may be null) receives the URL that answered.
    Status perform(const std::string& url, const std::string_view* post_body, std::string_view expected_type,
                   const ResponseHandler& handler, std::string* effective_url) {
        std::string current = url;
        for (int hops = 0;; ++hops) {
            // The credentials go to the configured origin and nowhere else.
            const bool credentials = m_origin && origin_of(current) == m_origin;
            auto redirect = perform_once(current, post_body, expected_type, handler, credentials);
            if (!redirect)
                return fail(redirect.error());
            if (redirect->empty())
                break;
            if (hops >= k_max_http_redirects)
                return fail(Error::git(
                    fmt::format("{}: more than {} redirects", m_description, k_max_http_redirects)));
            if (auto s = check_redirect(*redirect); !s)
                return s;
            current = std::move(*redirect);
        }
        if (effective_url != nullptr)
            *effective_url = current;
        return {};
    }

    // Whether the policy lets this connection follow a redirect to `target`.
    Status check_redirect(const std::string& target) const {
        auto to = origin_of(target);
        if (to && to->scheme == "http" && !m_allow_http)
            return fail(Error::git(fmt::format("{}: refused a redirect to plain http ({})", m_description,
                                               url_for_message(target))));
        if (!m_origin)
            return fail(Error::internal(fmt::format("{}: no origin", m_description)));
        switch (decide_redirect(*m_origin, target, m_options.redirects)) {
        case RedirectAction::follow_with_credentials:
        case RedirectAction::follow_without_credentials:
            return {};
        case RedirectAction::refuse:
            break;
        }
        if (m_options.redirects == RedirectPolicy::never)
            return fail(Error::git(fmt::format("{}: refused a redirect to {} (options.http.follow_redirects "
                                               "is \"never\")",
                                               m_description, url_for_message(target))));
        if (!to)
            return fail(Error::git(fmt::format("{}: refused a redirect to {} (not an http(s) URL)",
                                               m_description, url_for_message(target))));
        return fail(Error::git(fmt::format(
            "{}: refused a redirect to another origin ({}): credentials and requests stay with {}://{}:{} "
            "(options.http.follow_redirects \"any_without_credentials\" follows it, sending no credential)",
            m_description, url_for_message(target), m_origin->scheme, m_origin->host, m_origin->port)));
    }

    // One HTTP exchange, redirects not followed: the redirect's target, or
    // empty when the response was the answer and went to `handler`.
    Result<std::string> perform_once(const std::string& url, const std::string_view* post_body,
                                     std::string_view expected_type, const ResponseHandler& handler,
                                     bool credentials) {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            m_deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0)
            return fail(Error::timeout(fmt::format("{}: no time left for the request", m_description)));
        // One handle for every request of the connection: curl keeps the
        // TCP (and TLS) connection alive between them, so the listing and
        // the fetch of a repository cost one connection, not three.
        if (!m_curl)
            m_curl.reset(curl_easy_init());
        else
            curl_easy_reset(m_curl.get()); // every option below is set again; live connections stay
        if (!m_curl)
            return fail(Error::internal("curl_easy_init failed"));
        CURL* c = m_curl.get();
        Transfer t{.curl = c, .handler = &handler, .expected_type = expected_type};
        // A member, as the reused handle keeps pointing at it between requests.
        char* error_buffer = m_error_buffer.data();
        m_error_buffer.fill('\0');
        std::string user_agent = fmt::format("git/2.39 (snapshotter/{})", SNAPSHOTTER_VERSION);
        const char* protocols = m_allow_http ? "http,https" : "https";

        curl_slist* raw_headers = curl_slist_append(nullptr, "Git-Protocol: version=2");
        if (post_body != nullptr) {
            raw_headers =
                curl_slist_append(raw_headers, "Content-Type: application/x-git-upload-pack-request");
            raw_headers = curl_slist_append(raw_headers, "Accept: application/x-git-upload-pack-result");
            // No "Expect: 100-continue": it costs a round trip on large want/have lists.
            raw_headers = curl_slist_append(raw_headers, "Expect:");
        }
        CurlHeaders headers(raw_headers);

        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent.c_str());
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); // each hop is decided in perform()
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::min<long long>(remaining.count(), 60000)));
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1000L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
        // A job that is stopping (SIGTERM grace over, deadline) ends the transfer.
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(
            c, CURLOPT_XFERINFOFUNCTION, +[](void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                return processes_aborted() ? 1 : 0;
            });
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        if (credentials && (!m_options.password.empty() || !m_options.username.empty())) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, m_options.username.c_str());
            curl_easy_setopt(c, CURLOPT_PASSWORD, m_options.password.c_str());
        }
        if (post_body != nullptr) {
            curl_easy_setopt(c, CURLOPT_POST, 1L); // and stays a POST when redirected
            // The size goes with it (CURLOPT_POSTFIELDSIZE_LARGE): no terminator is read.
            curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                             post_body->data()); // NOLINT(bugprone-suspicious-stringview-data-usage)
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
        }

        CURLcode rc = curl_easy_perform(c);
        if (t.failure)
            return fail(*t.failure);
        if (t.headers_too_large)
            return fail(Error::git(fmt::format("{}: response headers larger than {} bytes", m_description,
                                               http::k_max_response_header_bytes)));
        if (rc == CURLE_WRITE_ERROR && t.stopped)
            rc = CURLE_OK; // ended on purpose after a complete response
        if (rc != CURLE_OK) {
            if (rc == CURLE_ABORTED_BY_CALLBACK && processes_aborted())
                return fail(
                    Error::interrupted(fmt::format("{}: stopped, the job is stopping", m_description)));
            if (rc == CURLE_OPERATION_TIMEDOUT)
                return fail(Error::timeout(fmt::format("{}: {}", m_description, redact(error_buffer))));
            return fail(Error::git(
                fmt::format("{}: {}", m_description,
                            redact(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc))),
                http::cause_of_curl_code(rc)));
        }
        if (!t.checked) // an empty body never reached the callback
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
        if (is_redirect(t.status)) {
            char* location = nullptr;
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
            if (location == nullptr || *location == '\0')
                return fail(
                    Error::git(fmt::format("{}: HTTP {} without a Location", m_description, t.status)));
            return std::string(location);
        }
        if (t.status == 401 || t.status == 403)
            return fail(Error::git(
                fmt::format("{}: authentication failed (HTTP {})", m_description, t.status), Cause::refused));
        if (t.status == 404)
            return fail(Error::git(fmt::format("{}: repository not found (HTTP 404)", m_description),
                                   Cause::refused));
        if (t.status == 429)
            return fail(
                Error::git(fmt::format("{}: too many requests (HTTP 429)", m_description), Cause::http_429));
        if (t.status >= 500 && t.status < 600)
            return fail(Error::git(fmt::format("{}: server error (HTTP {})", m_description, t.status),
                                   Cause::http_5xx));
        if (t.status != 200)
            return fail(Error::git(fmt::format("{}: HTTP {}", m_description, t.status)));
        if (!t.accepted)
            return fail(Error::git(fmt::format("{}: not a smart git HTTP server (Content-Type \"{}\")",
                                               m_description, redact(t.content_type))));
        if (!t.done)
            return fail(Error::git(fmt::format("{}: the response ended early", m_description), Cause::reset));
        return std::string{};
    }

    std::string m_base;
    std::optional<Origin> m_origin; // of the configured URL: the only one credentials go to
    TransportOptions m_options;
    bool m_allow_http;
    std::chrono::steady_clock::time_point m_deadline;
    std::string m_description;
    bool m_advertised_by_origin = false; // set by read_advertisement()
    std::array<char, CURL_ERROR_SIZE> m_error_buffer{};
    CurlHandle m_curl; // reused by every request (keep-alive)
};

} // namespace

Result<std::unique_ptr<Connection>> connect_http(const GitUrl& url, const TransportOptions& options) {
    global_init_once();
    std::string base = options.url;
    while (base.ends_with('/'))
        base.pop_back();
    return std::make_unique<HttpConnection>(std::move(base), options, url.transport == Transport::http);
}

} // namespace snapshotter::git
