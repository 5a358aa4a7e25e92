// The S3 client: one backend's resolved settings, its credentials and its
// pool of connections, and the requests it sends: signed (signer.hpp), checked
// against the table of operations (backends.hpp), retried within the retry
// budget, and their failures turned into Errors that carry the HTTP status,
// the S3 code, the request id and a hint. Internal to storage/s3/.
#pragma once

#include "snapshotter/storage/backends.hpp"
#include "snapshotter/storage/s3/credentials.hpp"
#include "snapshotter/storage/settings.hpp"
#include "snapshotter/util/http.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::storage {

// The base64 of the MD5 of `data`, as Content-MD5 carries it.
std::string md5_base64(std::string_view data);

// Parse an RFC 7231 date ("Sat, 28 Nov 2026 07:44:27 GMT").
std::optional<Clock::time_point> parse_http_date(std::string_view text);

// The wait before retry `attempt` (full jitter with a cap).
std::chrono::milliseconds backoff_delay(int attempt);

// A 200 answer to CompleteMultipartUpload that carries an <Error> document:
// S3 sends 200 at once, then whitespace while it assembles, then the result.
bool is_error_in_200(const http::Response& response);

// Idle HTTP clients (libcurl handles with their connection caches), shared by
// the threads of one backend: a connection outlives the part or the object
// that opened it. It holds at most as many as were ever in use at once.
class ClientPool {
  public:
    // A client to perform requests on, idle or new.
    std::unique_ptr<http::Client> take() {
        std::lock_guard lock(m_mutex);
        if (m_idle.empty())
            return std::make_unique<http::Client>();
        auto client = std::move(m_idle.back());
        m_idle.pop_back();
        return client;
    }
    // Give `client` back for another request to use.
    void give(std::unique_ptr<http::Client> client) {
        std::lock_guard lock(m_mutex);
        m_idle.push_back(std::move(client));
    }

  private:
    std::mutex m_mutex;
    std::vector<std::unique_ptr<http::Client>> m_idle;
};

// The settings of one backend as the client uses them: the URL resolved into
// bucket, prefix and host, the typed settings (settings.hpp) turned into
// request headers and limits.
struct S3ClientSettings {
    std::string bucket;
    std::string prefix; // empty or ending in '/'
    std::string region;
    std::string scheme_host; // "https://host[:port]" of the service (bucket excluded)
    std::string host;        // Host header value for this bucket
    bool path_style = false;
    std::vector<http::Header> write_headers; // SSE and storage class
    std::string sse;                         // "AES256", "aws:kms" or empty
    // Fail (true) or warn (false) when the server did not apply a requested
    // SSE or Object Lock retention (storage.require_protection).
    bool require_protection = true;
    // Object Lock retention for objects published with Overwrite::no: a mode
    // and a fixed date or a number of days from the (real) time of writing.
    std::string lock_mode;
    std::optional<Clock::time_point> lock_until;
    int lock_days = 0;
    std::string ca_bundle; // AWS_CA_BUNDLE, or empty
    std::string url;       // s3://bucket/prefix, for messages
    // A transfer slower than 1 KiB/s for this long is abandoned (and retried).
    std::chrono::seconds stall_timeout{k_default_stall_timeout};
    // How long one request may keep being retried (storage.retry_budget_s).
    std::chrono::seconds retry_budget{k_default_retry_budget};
    // Parts of one multipart upload in flight at once (storage.upload_concurrency).
    std::size_t upload_concurrency = k_default_upload_concurrency;
};

// One S3 request as the backend sees it, before signing.
struct S3Request {
    std::string method = "GET";
    std::string key; // full object key, empty for bucket requests
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<http::Header> headers;
    std::span<const std::byte> body;
    OutputSink on_body;
    std::size_t max_body = std::size_t{16} << 20;
    // CompleteMultipartUpload can answer 200 with an <Error> document.
    bool error_in_200 = false;
    // How long the answer may take without a byte flowing, when longer than
    // the settings' stall_timeout (CompleteMultipartUpload of a large object).
    std::chrono::seconds stall_timeout{0};
};

// The shared half of the backend: settings, credentials, request sending.
class S3Client {
  public:
    S3Client(S3ClientSettings settings, AwsEnvironment env)
        : m_settings(std::move(settings)), m_credentials(std::move(env)) {}

    [[nodiscard]] const S3ClientSettings& settings() const { return m_settings; }

    // Send `request` with retries; any final HTTP status is a Response.
    Result<http::Response> send(const S3Request& request);

    // An Error for the failed `response` to `request`, with the S3 Code and the key.
    // Always the HTTP status, the S3 code, the request id when there is one,
    // and a hint for the failures whose answer says nothing useful.
    Error error_of(const S3Request& request, const http::Response& response) const;

    // Advice for refusals known to come back without a useful message.
    std::string hint_for(const S3Request& request, const http::Response& response,
                         std::string_view code) const;

    // "S3 PutObject s3://bucket/key" style context for messages.
    std::string describe(const S3Request& request) const;

    static const S3Operation* operation_of(const S3Request& request);

    std::string full_key(std::string_view key) const { return m_settings.prefix + std::string(key); }

    // HEAD `full`; nullopt when absent.
    Result<std::optional<http::Response>> head_object(const std::string& full);

    // Confirm that the server applied the SSE and the Object Lock retention
    // (until `lock_until`) requested for the committed object `full`, from
    // the write's answer `written` when it tells, else from a HEAD. A
    // protection not applied fails, or with require_protection false, warns.
    // A multipart object's retention is set again with PutObjectRetention
    // when `set_retention` and the server ignored the one sent with
    // CreateMultipartUpload (moto and Ceph RGW 16.2 do).
    Status confirm_protection(const std::string& full, const http::Response* written,
                              std::optional<Clock::time_point> lock_until, bool set_retention = false);

    // PutObjectRetention: the lock mode of the settings until `until` on `full`.
    Status put_retention(const std::string& full, Clock::time_point until);

  private:
    S3ClientSettings m_settings;
    CredentialCache m_credentials;
    ClientPool m_pool;
    // Server time minus ours, learnt from RequestTimeTooSkewed answers.
    std::atomic<long long> m_skew_ms{0};
};

} // namespace snapshotter::storage
