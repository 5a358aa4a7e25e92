// Smart HTTP (gitprotocol-http) with protocol v2, through libcurl's easy
// interface. Kept deliberately small: GET info/refs for the advertisement,
// then one POST per command, every body streamed to the caller's handler as
// curl delivers it. libcurl reads the usual proxy variables (http_proxy,
// https_proxy, no_proxy, all_proxy) itself. Credentials go through
// CURLOPT_USERNAME/PASSWORD (never the URL) and are not resent to another
// host after a redirect (curl's default without CURLOPT_UNRESTRICTED_AUTH).
#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"

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
        if (t.error_body.size() < k_max_error_body)
            t.error_body.append(data, std::min(n, k_max_error_body - t.error_body.size()));
        return n;
    }
    if (t.done)
        return n; // nothing should follow a complete response; ignore it
    auto done = (*t.handler)(std::as_bytes(std::span<const char>(data, n)));
    if (!done) {
        t.failure = done.error();
        return 0; // makes curl abort with CURLE_WRITE_ERROR
    }
    t.done = *done;
    return n;
}

class HttpConnection final : public Connection {
  public:
    HttpConnection(std::string base_url, const TransportOptions& options, bool allow_plain_http)
        : m_base(std::move(base_url)), m_options(options), m_allow_http(allow_plain_http),
          m_deadline(std::chrono::steady_clock::now() + options.timeout), m_description(redact_url(m_base)) {}

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
        return {};
    }

    Status request(std::string_view body, const ResponseHandler& handler) override {
        return perform(m_base + "/git-upload-pack", &body, "application/x-git-upload-pack-result", handler,
                       nullptr);
    }

    Status close() override { return {}; }

    [[nodiscard]] std::string describe() const override { return m_description; }

  private:
    Status perform(const std::string& url, const std::string_view* post_body, std::string_view expected_type,
                   const ResponseHandler& handler, std::string* effective_url) {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            m_deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0)
            return fail(Error::timeout(fmt::format("{}: no time left for the request", m_description)));
        CurlHandle curl(curl_easy_init());
        if (!curl)
            return fail(Error::internal("curl_easy_init failed"));
        CURL* c = curl.get();
        Transfer t{.curl = c, .handler = &handler, .expected_type = expected_type};
        char error_buffer[CURL_ERROR_SIZE] = {};
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
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
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
        if (!m_options.password.empty() || !m_options.username.empty()) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, m_options.username.c_str());
            curl_easy_setopt(c, CURLOPT_PASSWORD, m_options.password.c_str());
        }
        if (post_body != nullptr) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_ALL)); // stay a POST
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->data());
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
        }

        CURLcode rc = curl_easy_perform(c);
        if (t.failure)
            return fail(*t.failure);
        if (rc != CURLE_OK) {
            if (rc == CURLE_ABORTED_BY_CALLBACK && processes_aborted())
                return fail(
                    Error::interrupted(fmt::format("{}: stopped, the job is stopping", m_description)));
            if (rc == CURLE_OPERATION_TIMEDOUT)
                return fail(Error::timeout(fmt::format("{}: {}", m_description, redact(error_buffer))));
            return fail(Error::git(
                fmt::format("{}: {}", m_description,
                            redact(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc)))));
        }
        if (!t.checked) // an empty body never reached the callback
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
        if (t.status == 401 || t.status == 403)
            return fail(
                Error::git(fmt::format("{}: authentication failed (HTTP {})", m_description, t.status)));
        if (t.status == 404)
            return fail(Error::git(fmt::format("{}: repository not found (HTTP 404)", m_description)));
        // Worded so that git::is_transient_failure retries them, as it does git's own messages.
        if (t.status == 429)
            return fail(Error::git(fmt::format("{}: too many requests (HTTP 429)", m_description)));
        if (t.status >= 500 && t.status < 600)
            return fail(Error::git(fmt::format("{}: server error (HTTP {})", m_description, t.status)));
        if (t.status != 200)
            return fail(Error::git(fmt::format("{}: HTTP {}", m_description, t.status)));
        if (!t.accepted)
            return fail(Error::git(fmt::format("{}: not a smart git HTTP server (Content-Type \"{}\")",
                                               m_description, redact(t.content_type))));
        if (!t.done)
            return fail(Error::git(fmt::format("{}: the response ended early", m_description)));
        if (effective_url != nullptr) {
            char* eff = nullptr;
            curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
            *effective_url = eff != nullptr ? eff : "";
        }
        return {};
    }

    std::string m_base;
    TransportOptions m_options;
    bool m_allow_http;
    std::chrono::steady_clock::time_point m_deadline;
    std::string m_description;
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
