// s3:// backend: S3 and S3-compatible stores over our own HTTP client and
// SigV4 signer.
//
// Overwrite::no and stores that ignore If-None-Match: every publication that
// must not overwrite (PutObject and CompleteMultipartUpload) is sent with
// `If-None-Match: *`, which S3 answers with 412 when the key exists; that is
// atomic. Some S3-compatible stores ignore the header and would overwrite
// silently, so before publishing we also HEAD the key and report Conflict
// when it exists. On such stores this only narrows the race window to the
// time between the HEAD and the write: two writers racing on one key can
// still both succeed, and the later one wins. Snapshot keys are unique by
// construction, so that race needs two jobs writing the same snapshot id.
#include "snapshotter/storage/backends.hpp"
#include "snapshotter/storage/part_pipeline.hpp"
#include "snapshotter/storage/s3_credentials.hpp"
#include "snapshotter/storage/sigv4.hpp"
#include "snapshotter/storage/xml.hpp"
#include "snapshotter/util/backoff.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/http.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <ctime>
#include <fmt/format.h>
#include <mutex>
#include <openssl/evp.h>
#include <random>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <thread>

namespace snapshotter::storage {
namespace {

// Parts start at 8 MiB and double every 1,000 parts: 10,000 parts then hold
// 8 MiB x 1000 x (2^10 - 1), about 8.6 TB, more than S3's 5 TB object limit,
// and the largest part (4 GiB) stays under S3's 5 GiB part limit.
constexpr std::size_t k_min_part_size = std::size_t{8} << 20;
constexpr int k_parts_per_tier = 1000;
constexpr int k_max_parts = 10000;
// CompleteMultipartUpload: the server assembles the parts before it answers
// (moto copies them, S3 sends whitespace meanwhile), so its answer may take
// minutes without a byte flowing. It gets this long plus k_complete_per_gib
// per GiB of the object, and never less than storage.stall_timeout_s.
constexpr std::chrono::seconds k_complete_base{60};
constexpr std::chrono::seconds k_complete_per_gib{60};
constexpr std::chrono::seconds k_complete_cap{3600};
// Attempts to resume a broken download, the first included.
constexpr int k_max_attempts = 5;
// A request is retried while its attempts and waits fit in storage.retry_budget_s.
// Waits are full jitter, capped so that an endpoint that comes back is tried
// again within seconds.
// Attempts a request gets even when they take longer than the budget (stalls).
constexpr int k_min_attempts = 3;
constexpr std::chrono::milliseconds k_backoff_base{200};
constexpr std::chrono::milliseconds k_backoff_cap{8'000};
// Up to this size a writer's buffer grows as needed instead of taking a part.
constexpr std::size_t k_small_object = std::size_t{1} << 20;
// DeleteObjects takes at most this many keys per request.
constexpr std::size_t k_delete_batch = 1000;
// Rounds of read and conditional write update() tries before giving up.
constexpr int k_update_attempts = 10;

// Every request the backend sends, most specific first (UploadPart also
// carries uploadId). IAM: HeadObject needs s3:GetObject, the multipart calls
// except Abort need s3:PutObject, DeleteObjects needs s3:DeleteObject.
constexpr S3Operation k_s3_operations[] = {
    {"UploadPart", "PUT", "partNumber", "s3:PutObject", S3Access::write},
    {"PutObjectRetention", "PUT", "retention", "s3:PutObjectRetention", S3Access::write},
    {"PutObject", "PUT", "", "s3:PutObject", S3Access::write},
    {"CreateMultipartUpload", "POST", "uploads", "s3:PutObject", S3Access::write},
    {"CompleteMultipartUpload", "POST", "uploadId", "s3:PutObject", S3Access::write},
    {"AbortMultipartUpload", "DELETE", "uploadId", "s3:AbortMultipartUpload", S3Access::write},
    {"ListObjectsV2", "GET", "list-type", "s3:ListBucket", S3Access::read},
    {"ListMultipartUploads", "GET", "uploads", "s3:ListBucketMultipartUploads", S3Access::read},
    {"ListParts", "GET", "uploadId", "s3:ListMultipartUploadParts", S3Access::read},
    {"GetObject", "GET", "", "s3:GetObject", S3Access::read},
    {"HeadObject", "HEAD", "", "s3:GetObject", S3Access::read},
    {"DeleteObjects", "POST", "delete", "s3:DeleteObject", S3Access::remove},
};

std::size_t part_size_for(int part_number) {
    int tier = (part_number - 1) / k_parts_per_tier;
    return k_min_part_size << tier;
}

// How long CompleteMultipartUpload of `size` bytes may go without a byte of
// its answer (see k_complete_base).
std::chrono::seconds complete_wait(std::uint64_t size) {
    auto gib = static_cast<long>((size + (std::uint64_t{1} << 30) - 1) >> 30);
    return std::min(k_complete_cap, k_complete_base + k_complete_per_gib * gib);
}

std::string md5_base64(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr);
    unsigned char out[64];
    int n = EVP_EncodeBlock(out, digest, static_cast<int>(length));
    return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

std::string sha256_of(std::span<const std::byte> data) {
    Sha256 h;
    h.update(data);
    return h.hex_digest();
}

// Parse an RFC 7231 date ("Sat, 28 Nov 2026 07:44:27 GMT").
std::optional<Clock::time_point> parse_http_date(std::string_view text) {
    std::tm tm{};
    std::string s(text);
    const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
    if (end == nullptr)
        return std::nullopt;
    return Clock::from_time_t(timegm(&tm));
}

std::chrono::milliseconds backoff_delay(int attempt) {
    return snapshotter::backoff_delay(attempt, k_backoff_base, k_backoff_cap);
}

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

// A 200 answer to CompleteMultipartUpload that carries an <Error> document:
// S3 sends 200 at once, then whitespace while it assembles, then the result.
bool is_error_in_200(const http::Response& response) {
    return response.status == 200 && response.body.find("<Error>") != std::string::npos;
}

// The statuses the AWS SDKs retry (501 Not Implemented is final).
bool is_retryable_status(long status) {
    return status == 500 || status == 502 || status == 503 || status == 504;
}

// The S3 error codes worth another attempt besides those statuses.
bool is_retryable_code(std::string_view code) {
    return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
           code == "ServiceUnavailable" || code == "RequestTimeTooSkewed" || code == "Throttling" ||
           code == "ThrottlingException";
}

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
    Result<http::Response> send(const S3Request& request) {
        if (operation_of(request) == nullptr)
            return fail(Error::internal(
                fmt::format("S3 {} with query {} is not in the operation table of storage/s3_storage.cpp",
                            request.method, sigv4::encode_query(request.query))));
        // A repeated header is signed as "a,b"; S3 reads Content-MD5, the
        // lock and SSE headers as one value and refuses the signature.
        for (std::size_t i = 0; i < request.headers.size(); ++i)
            for (std::size_t j = i + 1; j < request.headers.size(); ++j)
                if (strcasecmp(request.headers[i].first.c_str(), request.headers[j].first.c_str()) == 0)
                    return fail(Error::internal(
                        fmt::format("{}: header {} set twice", describe(request), request.headers[i].first)));
        std::string payload_hash =
            request.body.empty() ? std::string(sigv4::k_empty_sha256) : sha256_of(request.body);
        std::string path = "/";
        if (m_settings.path_style)
            path += m_settings.bucket + (request.key.empty() ? "" : "/" + request.key);
        else
            path += request.key;
        std::string query = sigv4::encode_query(request.query);
        std::string url =
            m_settings.scheme_host + sigv4::canonical_uri(path) + (query.empty() ? "" : "?" + query);
        std::string what = describe(request);
        const auto started = std::chrono::steady_clock::now();

        for (int attempt = 1;; ++attempt) {
            auto credentials = m_credentials.get();
            if (!credentials)
                return fail(credentials.error().with_context(what));
            auto now = Clock::now() + std::chrono::milliseconds{m_skew_ms.load()};
            auto signed_request =
                sigv4::sign({request.method, m_settings.host, path, query, request.headers, payload_hash},
                            *credentials, m_settings.region, "s3", now);
            http::Request r;
            r.method = request.method;
            r.url = url;
            r.headers = std::move(signed_request.headers);
            r.body = request.body;
            r.on_body = request.on_body;
            r.max_body = request.max_body;
            r.ca_bundle = m_settings.ca_bundle;
            r.low_speed_time = std::max(m_settings.stall_timeout, request.stall_timeout);
            auto client = m_pool.take();
            auto response = client->perform(r);
            m_pool.give(std::move(client));
            // The next wait, and whether it and another attempt still fit the budget.
            const auto delay = backoff_delay(attempt);
            const bool last = attempt >= k_min_attempts &&
                              std::chrono::steady_clock::now() - started + delay >= m_settings.retry_budget;

            std::string cause;
            if (!response) {
                // Bytes already handed to a sink cannot be taken back: the
                // caller resumes (read) or fails.
                if (!response.error().transport || response.error().streamed > 0 || last) {
                    // A stalled or timed-out exchange is a storage failure like a reset one,
                    // not the repository's time limit (Timeout).
                    Error error = response.error().error.with_context(what);
                    if (error.kind == ErrorKind::Timeout)
                        error.kind = ErrorKind::Storage;
                    return fail(std::move(error));
                }
                cause = response.error().error.message;
            } else {
                auto code = xml::first(response->body, "Code").value_or("");
                bool error_200 = request.error_in_200 && is_error_in_200(*response);
                if (response->ok() && !error_200)
                    return std::move(*response);
                if (code == "ExpiredToken" || code == "TokenRefreshRequired") {
                    m_credentials.invalidate();
                } else if (code == "RequestTimeTooSkewed") {
                    // Sign with the server's clock from now on, as the SDKs do.
                    if (auto server = parse_http_date(response->header("date").value_or("")))
                        m_skew_ms =
                            std::chrono::duration_cast<std::chrono::milliseconds>(*server - Clock::now())
                                .count();
                } else if (!(is_retryable_status(response->status) || is_retryable_code(code))) {
                    return std::move(*response);
                }
                if (last)
                    return std::move(*response);
                cause = fmt::format("HTTP {}{}", response->status, code.empty() ? "" : " " + code);
            }
            auto left = std::max(std::chrono::seconds{0},
                                 std::chrono::duration_cast<std::chrono::seconds>(
                                     m_settings.retry_budget - (std::chrono::steady_clock::now() - started)));
            spdlog::warn("{}: attempt {} failed ({}); retrying in {} ms ({} s of the {} s retry budget left)",
                         what, attempt, redact(cause), delay.count(), left.count(),
                         m_settings.retry_budget.count());
            std::this_thread::sleep_for(delay);
        }
    }

    // An Error for the failed `response` to `request`, with the S3 Code and the key.
    // Always the HTTP status, the S3 code, the request id when there is one,
    // and a hint for the failures whose answer says nothing useful.
    Error error_of(const S3Request& request, const http::Response& response) const {
        auto code = xml::first(response.body, "Code").value_or("");
        auto message = xml::first(response.body, "Message").value_or("");
        std::string text = fmt::format("{}: HTTP {}", describe(request), response.status);
        if (request.error_in_200 && is_error_in_200(response))
            text += " with an error document";
        if (!code.empty())
            text += " " + code;
        if (!message.empty())
            text += ": " + message;
        else if (response.status >= 400)
            text += " (the server gave no message)";
        auto request_id = response.header("x-amz-request-id");
        if (!request_id || request_id->empty())
            request_id = xml::first(response.body, "RequestId");
        if (request_id && !request_id->empty())
            text += fmt::format(" [request id {}]", *request_id);
        if (auto hint = hint_for(request, response, code); !hint.empty())
            text += "; hint: " + hint;
        text = redact(text);
        if (response.status == 412 || code == "PreconditionFailed")
            return Error::conflict(text);
        if (code == "NoSuchKey" || (request.method == "HEAD" && response.status == 404))
            return Error::not_found(text);
        return Error::storage(text);
    }

    // Advice for refusals known to come back without a useful message.
    std::string hint_for(const S3Request& request, const http::Response& response,
                         std::string_view code) const {
        bool sent_sse = std::any_of(request.headers.begin(), request.headers.end(), [](const auto& h) {
            return strcasecmp(h.first.c_str(), "x-amz-server-side-encryption") == 0;
        });
        if (!sent_sse && request.method == "POST" && request.query.size() == 1 &&
            request.query[0].first == "uploads")
            sent_sse = !m_settings.sse.empty();
        if (!sent_sse || response.status < 400 || response.status >= 500)
            return {};
        std::string hint;
        if (m_settings.scheme_host.starts_with("http://") &&
            (code == "InvalidRequest" || code == "InvalidArgument"))
            hint = "the server may refuse server-side encryption over plain HTTP (Ceph RGW does unless "
                   "`rgw crypt require ssl = false`): use an https:// endpoint";
        if (m_settings.sse == "aws:kms" && (code.starts_with("KMS") || code == "InvalidArgument" ||
                                            code == "InvalidRequest" || code == "AccessDenied"))
            hint += std::string(hint.empty() ? "" : "; or ") +
                    "SSE-KMS needs a KMS configured on the server and a key it knows (storage.kms_key_id)";
        return hint;
    }

    // "S3 PutObject s3://bucket/key" style context for messages.
    std::string describe(const S3Request& request) const {
        const S3Operation* op = operation_of(request);
        return fmt::format("S3 {} s3://{}/{}", op ? op->api : std::string_view(request.method),
                           m_settings.bucket, request.key);
    }

    static const S3Operation* operation_of(const S3Request& request) {
        std::vector<std::string_view> names;
        names.reserve(request.query.size());
        for (const auto& [name, value] : request.query)
            names.push_back(name);
        return s3_operation_of(request.method, names);
    }

    std::string full_key(std::string_view key) const { return m_settings.prefix + std::string(key); }

    // HEAD `full`; nullopt when absent.
    Result<std::optional<http::Response>> head_object(const std::string& full) {
        S3Request request{.method = "HEAD", .key = full};
        auto response = send(request);
        if (!response)
            return fail(response.error());
        if (response->status == 404)
            return std::optional<http::Response>{};
        if (!response->ok())
            return fail(error_of(request, *response));
        return std::optional<http::Response>(std::move(*response));
    }

    // Confirm that the server applied the SSE and the Object Lock retention
    // (until `lock_until`) requested for the committed object `full`, from
    // the write's answer `written` when it tells, else from a HEAD. A
    // protection not applied fails, or with require_protection false, warns.
    // A multipart object's retention is set again with PutObjectRetention
    // when `set_retention` and the server ignored the one sent with
    // CreateMultipartUpload (moto and Ceph RGW 16.2 do).
    Status confirm_protection(const std::string& full, const http::Response* written,
                              std::optional<Clock::time_point> lock_until, bool set_retention = false) {
        const auto& sse = m_settings.sse;
        if (sse.empty() && !lock_until)
            return {};
        std::optional<http::Response> head;
        if (lock_until || !written || !written->header("x-amz-server-side-encryption")) {
            auto found = head_object(full);
            if (!found)
                return fail(found.error().with_context("confirming the object's protection"));
            if (!*found)
                return fail(Error::storage(
                    fmt::format("s3://{}/{}: gone right after it was written", m_settings.bucket, full)));
            head = std::move(*found);
        }
        if (set_retention && lock_until && !(*head).header("x-amz-object-lock-mode")) {
            spdlog::info("s3://{}/{}: the server ignored the multipart upload's retention; setting it",
                         m_settings.bucket, full);
            if (auto s = put_retention(full, *lock_until); !s)
                return s;
            return confirm_protection(full, written, lock_until, false);
        }
        const http::Response& seen = head ? *head : *written;
        std::vector<std::string> missing;
        if (!sse.empty()) {
            auto applied = seen.header("x-amz-server-side-encryption").value_or("");
            if (applied != sse)
                missing.push_back(fmt::format("server-side encryption {} (the server reports {})", sse,
                                              applied.empty() ? "none" : applied));
        }
        if (lock_until) {
            auto mode = seen.header("x-amz-object-lock-mode").value_or("");
            auto until_text = seen.header("x-amz-object-lock-retain-until-date").value_or("");
            auto until =
                until_text.size() >= 19 ? parse_rfc3339(until_text.substr(0, 19) + "Z") : std::nullopt;
            // A bucket default retention applied a little later than our date also counts.
            if (mode != m_settings.lock_mode || !until || *until + std::chrono::minutes{5} < *lock_until)
                missing.push_back(fmt::format("Object Lock {} until {} (the server reports {})",
                                              m_settings.lock_mode, format_rfc3339(*lock_until),
                                              mode.empty() ? std::string("no retention")
                                                           : fmt::format("{} until {}", mode, until_text)));
        }
        if (missing.empty())
            return {};
        std::string message = redact(fmt::format("s3://{}/{}: the server did not apply the requested {}",
                                                 m_settings.bucket, full, fmt::join(missing, " and ")));
        if (lock_until && missing.back().starts_with("Object Lock"))
            message += " (hint: some S3-compatible servers, Ceph RGW among them, ignore the retention sent "
                       "with a multipart upload; give the bucket a default retention)";
        if (!sse.empty() && missing.front().starts_with("server-side"))
            message += " (hint: a server may accept SSE headers without encrypting, e.g. Ceph RGW with "
                       "AES256 over plain HTTP; use aws:kms or HTTPS)";
        if (!m_settings.require_protection) {
            spdlog::warn("{} (storage.require_protection is false: continuing)", message);
            return {};
        }
        return fail(Error::storage(message + "; set storage.require_protection to false to accept it"));
    }

    // PutObjectRetention: the lock mode of the settings until `until` on `full`.
    Status put_retention(const std::string& full, Clock::time_point until) {
        std::string body =
            fmt::format("<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>"
                        "<RetainUntilDate>{}</RetainUntilDate></Retention>",
                        m_settings.lock_mode, format_rfc3339(until));
        S3Request request{
            .method = "PUT",
            .key = full,
            .query = {{"retention", ""}},
            .headers = {{"Content-MD5", md5_base64(body)}, {"Content-Type", "application/xml"}}};
        request.body = http::as_body(body);
        auto response = send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok())
            return fail(error_of(request, *response));
        return {};
    }

  private:
    S3ClientSettings m_settings;
    CredentialCache m_credentials;
    ClientPool m_pool;
    // Server time minus ours, learnt from RequestTimeTooSkewed answers.
    std::atomic<long long> m_skew_ms{0};
};

// The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then
// "-N"; nullopt when a part ETag is not a plain MD5 (SSE-KMS, some stores).
std::optional<std::string> composite_etag(const PartList& etags) {
    std::string digests;
    for (const auto& [number, etag] : etags) {
        (void)number;
        std::string_view hex = etag;
        if (hex.size() == 34 && hex.front() == '"' && hex.back() == '"')
            hex = hex.substr(1, 32);
        if (hex.size() != 32)
            return std::nullopt;
        for (std::size_t i = 0; i < 32; i += 2) {
            unsigned value = 0;
            auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
            if (ec != std::errc() || p != hex.data() + i + 2)
                return std::nullopt;
            digests.push_back(static_cast<char>(value));
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(digests.data(), digests.size(), digest, &length, EVP_md5(), nullptr);
    return fmt::format("\"{}-{}\"", to_hex({digest, length}), etags.size());
}

// A streamed object: buffered into parts; nothing is sent until the first
// part is full, so small objects become one PutObject at commit.
class S3Writer final : public ObjectWriter {
  public:
    S3Writer(std::shared_ptr<S3Client> client, std::string key, Overwrite overwrite)
        : m_client(std::move(client)), m_key(std::move(key)), m_overwrite(overwrite) {
        // The date is computed from the real clock: S3 checks it against its own.
        const auto& settings = m_client->settings();
        if (locked())
            m_lock_until = settings.lock_until.value_or(Clock::now() + std::chrono::days{settings.lock_days});
    }

    ~S3Writer() override { abort(); }

    Status write(std::span<const std::byte> data) override {
        if (m_done)
            return fail(Error::internal("write after commit or abort"));
        while (!data.empty()) {
            std::size_t target = part_size_for(m_next_part);
            // Small objects (manifests) stay small; streams get a whole part.
            if (m_buffer.capacity() < target && m_buffer.size() + data.size() > k_small_object)
                m_buffer.reserve(target);
            std::size_t n = std::min(data.size(), target - m_buffer.size());
            m_buffer.insert(m_buffer.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
            data = data.subspan(n);
            if (m_buffer.size() == target)
                if (auto s = submit_part(); !s) {
                    abort();
                    return s;
                }
        }
        return {};
    }

    Status commit() override {
        if (m_done)
            return fail(Error::internal("commit after commit or abort"));
        auto s = m_upload_id.empty() ? put_single() : complete_multipart();
        if (!s) {
            abort();
            return s;
        }
        m_done = true;
        return {};
    }

    void abort() override {
        if (m_done)
            return;
        m_done = true;
        // Every part stops before the abort, so that none lands after it.
        if (m_pipeline)
            m_pipeline->cancel();
        if (!m_upload_id.empty()) {
            S3Request request{.method = "DELETE", .key = m_key, .query = {{"uploadId", m_upload_id}}};
            auto response = m_client->send(request);
            if (!response)
                spdlog::warn("{}: abort failed: {}", m_client->describe(request), response.error().message);
            else if (!response->ok() && response->status != 404)
                spdlog::warn("abort failed: {}", m_client->error_of(request, *response).message);
            m_upload_id.clear();
        }
        m_buffer = {};
    }

  private:
    // Refuse early, with Conflict, when the key exists and must not be
    // overwritten (see the comment at the top of this file).
    Status check_absent() {
        if (m_overwrite == Overwrite::yes)
            return {};
        auto found = m_client->head_object(m_key);
        if (!found)
            return fail(found.error());
        if (*found)
            return fail(Error::conflict(
                fmt::format("s3://{}/{} already exists", m_client->settings().bucket, m_key)));
        return {};
    }

    std::vector<http::Header> publish_headers() const {
        std::vector<http::Header> headers;
        if (m_overwrite == Overwrite::no)
            headers.emplace_back("If-None-Match", "*");
        return headers;
    }

    // Whether this object gets Object Lock retention: committed data that is
    // never overwritten (bundles, manifests), not pointers and reports.
    bool locked() const { return m_overwrite == Overwrite::no && !m_client->settings().lock_mode.empty(); }

    // SSE and storage class, plus the retention when the object is locked.
    std::vector<http::Header> create_headers() const {
        const auto& settings = m_client->settings();
        auto headers = settings.write_headers;
        if (m_lock_until) {
            headers.emplace_back("x-amz-object-lock-mode", settings.lock_mode);
            headers.emplace_back("x-amz-object-lock-retain-until-date", format_rfc3339(*m_lock_until));
        }
        return headers;
    }

    Status put_single() {
        if (auto s = check_absent(); !s)
            return s;
        S3Request request{.method = "PUT", .key = m_key, .headers = publish_headers()};
        for (auto& h : create_headers())
            request.headers.push_back(std::move(h));
        // S3 requires Content-MD5 (or a checksum) with Object Lock; we always send it.
        std::string_view bytes{reinterpret_cast<const char*>(m_buffer.data()), m_buffer.size()};
        request.headers.emplace_back("Content-MD5", md5_base64(bytes));
        request.body = m_buffer;
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok()) {
            // A retried PUT whose first attempt went through but whose answer
            // was lost meets our own object (412): accept it when the bytes
            // there are ours (its ETag is their MD5, without SSE-KMS).
            if (response->status == 412 && holds_bytes(bytes)) {
                spdlog::info("{}: already written by an earlier attempt", m_client->describe(request));
                return m_client->confirm_protection(m_key, nullptr, m_lock_until);
            }
            return fail(m_client->error_of(request, *response));
        }
        return m_client->confirm_protection(m_key, &*response, m_lock_until);
    }

    // True when the object under the key has exactly `bytes` (by its ETag).
    bool holds_bytes(std::string_view bytes) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_md5(), nullptr);
        auto found = m_client->head_object(m_key);
        return found && *found && (*found)->header("etag") == fmt::format("\"{}\"", to_hex({digest, length}));
    }

    Status start_multipart() {
        // Fail before uploading gigabytes when the key is already taken.
        if (auto s = check_absent(); !s)
            return s;
        S3Request request{
            .method = "POST", .key = m_key, .query = {{"uploads", ""}}, .headers = create_headers()};
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok())
            return fail(m_client->error_of(request, *response));
        auto id = xml::first(response->body, "UploadId");
        if (!id || id->empty())
            return fail(
                Error::storage(fmt::format("{}: no UploadId in the answer", m_client->describe(request))));
        m_upload_id = *id;
        m_pipeline = std::make_unique<PartPipeline>(
            m_client->settings().upload_concurrency,
            [this](int number, std::span<const std::byte> data) { return upload_part(number, data); });
        return {};
    }

    // Hand the filled buffer to the pipeline as the next part, waiting while
    // every slot is busy (the producer blocks rather than buffering more).
    Status submit_part() {
        if (m_upload_id.empty())
            if (auto s = start_multipart(); !s)
                return s;
        if (m_next_part > k_max_parts)
            return fail(Error::storage(fmt::format("s3://{}/{}: more than {} parts",
                                                   m_client->settings().bucket, m_key, k_max_parts)));
        m_size += m_buffer.size();
        if (auto s = m_pipeline->submit(m_next_part++, std::move(m_buffer)); !s)
            return s;
        // Reuse a finished part's memory for the next one when there is one.
        m_buffer = m_pipeline->recycle();
        return {};
    }

    // UploadPart `number` with `data`; its ETag. Runs on a pipeline worker.
    Result<std::string> upload_part(int number, std::span<const std::byte> data) {
        // The part's bytes stay in memory until it succeeds: a retry
        // re-sends them and never re-reads the source stream.
        S3Request request{.method = "PUT",
                          .key = m_key,
                          .query = {{"partNumber", std::to_string(number)}, {"uploadId", m_upload_id}}};
        // S3 refuses parts without Content-MD5 (or a checksum) in buckets with
        // an Object Lock default retention; it also catches corruption in transit.
        // Sent once: a second copy is signed as "X,X", which S3 reads as one value.
        request.headers.emplace_back("Content-MD5",
                                     md5_base64({reinterpret_cast<const char*>(data.data()), data.size()}));
        request.body = data;
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error().with_context(fmt::format("part {}", number)));
        if (!response->ok())
            return fail(m_client->error_of(request, *response).with_context(fmt::format("part {}", number)));
        auto etag = response->header("etag");
        if (!etag || etag->empty())
            return fail(Error::storage(
                fmt::format("{}: part {} answered without an ETag", m_client->describe(request), number)));
        return *etag;
    }

    Status complete_multipart() {
        if (!m_buffer.empty())
            if (auto s = submit_part(); !s)
                return s;
        auto parts = m_pipeline->finish();
        if (!parts)
            return fail(parts.error());
        m_parts = std::move(*parts);
        if (auto s = check_absent(); !s)
            return s;
        std::string body = complete_multipart_body(m_parts);
        S3Request request{.method = "POST",
                          .key = m_key,
                          .query = {{"uploadId", m_upload_id}},
                          .headers = publish_headers(),
                          .error_in_200 = true,
                          .stall_timeout = complete_wait(m_size)};
        request.headers.emplace_back("Content-Type", "application/xml");
        request.body = http::as_body(body);
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok() || is_error_in_200(*response)) {
            // A retried Complete whose first attempt went through but whose
            // answer was lost finds no upload (404) or, with If-None-Match,
            // our own object (412): accept it when the object is ours.
            auto code = xml::first(response->body, "Code").value_or("");
            if ((code == "NoSuchUpload" || response->status == 412) && is_ours()) {
                spdlog::info("{}: already completed by an earlier attempt", m_client->describe(request));
                m_upload_id.clear();
                return m_client->confirm_protection(m_key, nullptr, m_lock_until, true);
            }
            return fail(m_client->error_of(request, *response));
        }
        m_upload_id.clear(); // published: nothing left to abort
        return m_client->confirm_protection(m_key, &*response, m_lock_until, true);
    }

    // True when the object under the key is the one our parts make up.
    bool is_ours() {
        auto expected = composite_etag(m_parts);
        if (!expected)
            return false;
        auto found = m_client->head_object(m_key);
        return found && *found && (*found)->header("etag") == *expected;
    }

    std::shared_ptr<S3Client> m_client;
    std::string m_key;
    Overwrite m_overwrite;
    // The retention requested for this object, when it is locked.
    std::optional<Clock::time_point> m_lock_until;
    bool m_done = false;
    std::vector<std::byte> m_buffer;
    int m_next_part = 1;
    std::string m_upload_id;
    // Bytes handed to the pipeline so far.
    std::uint64_t m_size = 0;
    // The parts in flight, from the first part on.
    std::unique_ptr<PartPipeline> m_pipeline;
    // Every part's number and ETag, ascending, once all are uploaded.
    PartList m_parts;
};

class S3Storage final : public Storage {
  public:
    explicit S3Storage(std::shared_ptr<S3Client> client) : m_client(std::move(client)) {}

    [[nodiscard]] std::string describe() const override { return m_client->settings().url; }

    Status check() override {
        // A listing of one key under our prefix: proves credentials, bucket
        // and read permission without writing anything.
        S3Request request{
            .method = "GET",
            .query = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", m_client->settings().prefix}}};
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok())
            return fail(m_client->error_of(request, *response));
        return {};
    }

    Result<std::unique_ptr<ObjectWriter>> create(std::string_view key, Overwrite overwrite) override {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        return std::make_unique<S3Writer>(m_client, m_client->full_key(key), overwrite);
    }

    Status read(std::string_view key, const OutputSink& sink) override {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        std::uint64_t delivered = 0;
        std::string etag;
        for (int attempt = 1;; ++attempt) {
            S3Request request{.method = "GET", .key = m_client->full_key(key)};
            if (delivered > 0) {
                // Resume where the broken transfer stopped, from the same version.
                request.headers.emplace_back("Range", fmt::format("bytes={}-", delivered));
                if (!etag.empty())
                    request.headers.emplace_back("If-Match", etag);
            }
            std::optional<Error> sink_error;
            request.on_body = [&](std::span<const std::byte> chunk) -> Status {
                auto s = sink(chunk);
                if (!s) {
                    sink_error = s.error();
                    return s;
                }
                delivered += chunk.size();
                return {};
            };
            std::uint64_t before = delivered;
            auto response = m_client->send(request);
            if (response && response->ok())
                return {};
            if (sink_error)
                return fail(*sink_error);
            if (response) {
                if (response->status == 404)
                    return fail(Error::not_found(
                        fmt::format("{}/{}: object does not exist", m_client->settings().url, key)));
                return fail(m_client->error_of(request, *response));
            }
            // A transport failure after some bytes: resume with a Range.
            if (delivered == before || attempt >= k_max_attempts)
                return fail(response.error());
            if (etag.empty()) {
                auto head = m_client->head_object(request.key);
                if (head && *head)
                    etag = (*head)->header("etag").value_or("");
            }
            spdlog::warn("{}: transfer broke after {} bytes ({}); resuming", m_client->describe(request),
                         delivered, response.error().message);
            std::this_thread::sleep_for(backoff_delay(attempt));
        }
    }

    Result<std::optional<ObjectInfo>> head(std::string_view key) override {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        auto found = m_client->head_object(m_client->full_key(key));
        if (!found)
            return fail(found.error());
        if (!*found)
            return std::optional<ObjectInfo>{};
        ObjectInfo info{std::string(key), 0, std::nullopt, std::nullopt};
        auto length = (*found)->header("content-length").value_or("0");
        std::from_chars(length.data(), length.data() + length.size(), info.size);
        if (auto modified = (*found)->header("last-modified"))
            info.modified = parse_http_date(*modified);
        // "2030-01-01T00:00:00.000Z" or without the fraction.
        if (auto until = (*found)->header("x-amz-object-lock-retain-until-date");
            until && until->size() >= 19)
            info.retain_until = parse_rfc3339(until->substr(0, 19) + "Z");
        return std::optional<ObjectInfo>(std::move(info));
    }

    Result<std::vector<ObjectInfo>> list(std::string_view prefix) override {
        std::vector<ObjectInfo> out;
        const std::string& base = m_client->settings().prefix;
        std::string token;
        for (;;) {
            S3Request request{.method = "GET",
                              .query = {{"list-type", "2"}, {"prefix", m_client->full_key(prefix)}}};
            if (!token.empty())
                request.query.emplace_back("continuation-token", token);
            auto response = m_client->send(request);
            if (!response)
                return fail(response.error());
            if (!response->ok())
                return fail(m_client->error_of(request, *response));
            for (std::string_view contents : xml::all(response->body, "Contents")) {
                auto key = xml::first(contents, "Key");
                if (!key || !key->starts_with(base))
                    continue;
                ObjectInfo info{key->substr(base.size()), 0, std::nullopt, std::nullopt};
                auto size = xml::first(contents, "Size").value_or("0");
                std::from_chars(size.data(), size.data() + size.size(), info.size);
                if (auto modified = xml::first(contents, "LastModified"))
                    info.modified = parse_aws_time(*modified);
                out.push_back(std::move(info));
            }
            bool truncated = xml::first(response->body, "IsTruncated").value_or("false") == "true";
            token = xml::first(response->body, "NextContinuationToken").value_or("");
            if (!truncated)
                break;
            if (token.empty())
                return fail(Error::storage(fmt::format("{}: truncated listing without a continuation token",
                                                       m_client->describe(request))));
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        return out;
    }

    Result<bool> update(std::string_view key, const UpdateFn& next, Durability /*durability*/) override {
        if (!is_valid_key(key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
        const std::string full = m_client->full_key(key);
        // What the last refused write was conditioned on: absent, or an ETag.
        std::optional<std::optional<std::string>> refused;
        for (int attempt = 1;; ++attempt) {
            // 1. The current content and its ETag.
            S3Request get{.method = "GET", .key = full, .max_body = std::size_t{1} << 20};
            auto current = m_client->send(get);
            if (!current)
                return fail(current.error());
            if (!current->ok() && current->status != 404)
                return fail(m_client->error_of(get, *current));
            const bool exists = current->ok();
            auto etag = current->header("etag").value_or("");
            if (exists && etag.empty())
                return fail(
                    Error::storage(fmt::format("{}: answered without an ETag", m_client->describe(get))));
            // Refused although nobody changed it: the store does not honour
            // this condition (a concurrent writer of the same bytes would have
            // made our condition true), so more rounds cannot succeed.
            auto state = exists ? std::optional(etag) : std::nullopt;
            if (refused && *refused == state)
                return fail(Error::conflict(
                    fmt::format("{}: the store refused the conditional write (HTTP 412) although the object "
                                "did not change: it does not honour {}",
                                m_client->describe(get),
                                exists ? "If-Match in either ETag spelling" : "If-None-Match: *")));
            auto wanted = next(exists ? std::optional(current->body) : std::nullopt);
            if (!wanted)
                return false;
            // 2. Write only if nobody wrote in between. The ETag is sent in
            //    the spelling this server last accepted (see if_match_spellings).
            auto spellings = exists ? if_match_spellings(etag) : std::vector<std::string>{"*"};
            S3Request put;
            Result<http::Response> written;
            std::string sent;
            for (std::size_t form = 0; form < spellings.size(); ++form) {
                sent = spellings[form];
                put = S3Request{.method = "PUT", .key = full, .headers = m_client->settings().write_headers};
                put.headers.emplace_back(exists ? "If-Match" : "If-None-Match", spellings[form]);
                put.headers.emplace_back("Content-MD5", md5_base64(*wanted));
                put.body = http::as_body(*wanted);
                written = m_client->send(put);
                if (!written)
                    return fail(written.error());
                if (written->status != 412)
                    break;
                if (form + 1 < spellings.size())
                    spdlog::debug("{}: If-Match {} refused; trying {}", m_client->describe(put),
                                  spellings[form], spellings[form + 1]);
            }
            if (written->ok()) {
                if (exists)
                    m_unquoted_if_match = !sent.starts_with('"');
                if (auto s = m_client->confirm_protection(full, &*written, std::nullopt); !s)
                    return fail(s.error());
                return true;
            }
            // 412: changed since we read it; 409: a concurrent conditional
            // write; 404 under If-Match: deleted since we read it.
            bool lost_race =
                written->status == 412 || written->status == 409 || (exists && written->status == 404);
            if (!lost_race || attempt >= k_update_attempts)
                return fail(m_client->error_of(put, *written));
            refused = written->status == 412 ? std::optional(state) : std::nullopt;
            spdlog::debug("{}: changed concurrently; reading it again", m_client->describe(put));
            std::this_thread::sleep_for(backoff_delay(attempt));
        }
    }

    Result<std::vector<PendingUpload>> list_pending(std::string_view prefix) override {
        std::vector<PendingUpload> out;
        const std::string& base = m_client->settings().prefix;
        std::string key_marker, id_marker;
        for (;;) {
            S3Request request{.method = "GET",
                              .query = {{"uploads", ""}, {"prefix", m_client->full_key(prefix)}}};
            if (!key_marker.empty())
                request.query.insert(request.query.end(),
                                     {{"key-marker", key_marker}, {"upload-id-marker", id_marker}});
            auto response = m_client->send(request);
            if (!response)
                return fail(response.error());
            if (!response->ok())
                return fail(m_client->error_of(request, *response));
            for (std::string_view upload : xml::all(response->body, "Upload")) {
                auto key = xml::first(upload, "Key");
                auto id = xml::first(upload, "UploadId");
                if (!key || !id || !key->starts_with(base))
                    continue;
                PendingUpload pending{key->substr(base.size()), *id, 0, std::nullopt};
                if (auto initiated = xml::first(upload, "Initiated"))
                    pending.since = parse_aws_time(*initiated);
                auto size = uploaded_bytes(*key, *id);
                if (!size)
                    return fail(size.error());
                pending.size = *size;
                out.push_back(std::move(pending));
            }
            bool truncated = xml::first(response->body, "IsTruncated").value_or("false") == "true";
            key_marker = xml::first(response->body, "NextKeyMarker").value_or("");
            id_marker = xml::first(response->body, "NextUploadIdMarker").value_or("");
            if (!truncated)
                break;
            if (key_marker.empty())
                return fail(Error::storage(
                    fmt::format("{}: truncated listing without a marker", m_client->describe(request))));
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        return out;
    }

    Status abort_pending(const PendingUpload& upload) override {
        if (!is_valid_key(upload.key))
            return fail(Error::internal(fmt::format("invalid storage key \"{}\"", upload.key)));
        S3Request request{.method = "DELETE",
                          .key = m_client->full_key(upload.key),
                          .query = {{"uploadId", upload.handle}}};
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (!response->ok() && response->status != 404)
            return fail(m_client->error_of(request, *response));
        return {};
    }

    Status remove(std::span<const std::string> keys) override {
        for (std::size_t start = 0; start < keys.size(); start += k_delete_batch) {
            auto batch = keys.subspan(start, std::min(k_delete_batch, keys.size() - start));
            std::string body =
                "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
            for (const auto& key : batch) {
                if (!is_valid_key(key))
                    return fail(Error::internal(fmt::format("invalid storage key \"{}\"", key)));
                body += "<Object><Key>" + xml::escape(m_client->full_key(key)) + "</Key></Object>";
            }
            body += "</Delete>";
            S3Request request{
                .method = "POST",
                .query = {{"delete", ""}},
                .headers = {{"Content-MD5", md5_base64(body)}, {"Content-Type", "application/xml"}}};
            request.body = http::as_body(body);
            auto response = m_client->send(request);
            if (!response)
                return fail(response.error());
            if (!response->ok())
                return fail(m_client->error_of(request, *response));
            // Quiet mode lists only the failures.
            auto errors = xml::all(response->body, "Error");
            if (!errors.empty()) {
                return fail(Error::storage(
                    redact(fmt::format("S3 DeleteObjects s3://{}: {} of {} keys failed, first {}: {} {}",
                                       m_client->settings().bucket, errors.size(), batch.size(),
                                       xml::first(errors.front(), "Key").value_or("?"),
                                       xml::first(errors.front(), "Code").value_or("?"),
                                       xml::first(errors.front(), "Message").value_or("")))));
            }
        }
        return {};
    }

  private:
    // Bytes of the parts uploaded so far under `upload_id` (ListParts).
    Result<std::uint64_t> uploaded_bytes(const std::string& full, const std::string& upload_id) {
        std::uint64_t total = 0;
        std::string marker;
        for (;;) {
            S3Request request{.method = "GET", .key = full, .query = {{"uploadId", upload_id}}};
            if (!marker.empty())
                request.query.emplace_back("part-number-marker", marker);
            auto response = m_client->send(request);
            if (!response)
                return fail(response.error());
            if (response->status == 404) // finished or aborted since it was listed
                return total;
            if (!response->ok())
                return fail(m_client->error_of(request, *response));
            for (std::string_view part : xml::all(response->body, "Part")) {
                std::uint64_t size = 0;
                auto text = xml::first(part, "Size").value_or("0");
                std::from_chars(text.data(), text.data() + text.size(), size);
                total += size;
            }
            bool truncated = xml::first(response->body, "IsTruncated").value_or("false") == "true";
            marker = xml::first(response->body, "NextPartNumberMarker").value_or("");
            if (!truncated || marker.empty())
                return total;
        }
    }

    // The two spellings of `etag` for If-Match, the one this server last
    // accepted first. S3 and moto take the quoted ETag as GET returned it;
    // Ceph RGW 16.2 compares against the unquoted one and answers 412 to the
    // quoted form. Both carry the same condition, so a 412 to both is a lost race.
    std::vector<std::string> if_match_spellings(const std::string& etag) const {
        std::string bare = etag;
        if (bare.size() >= 2 && bare.front() == '"' && bare.back() == '"')
            bare = bare.substr(1, bare.size() - 2);
        std::string quoted = "\"" + bare + "\"";
        if (m_unquoted_if_match)
            return {bare, quoted};
        return {quoted, bare};
    }

    std::shared_ptr<S3Client> m_client;
    // Whether the last successful If-Match carried the unquoted ETag.
    std::atomic<bool> m_unquoted_if_match{false};
};

} // namespace

std::span<const S3Operation> s3_operations() {
    return k_s3_operations;
}

const S3Operation* s3_operation_of(std::string_view method, std::span<const std::string_view> query_names) {
    for (const auto& op : k_s3_operations) {
        if (op.method != method)
            continue;
        // A plain object request has no query at all, so that a request with a
        // subresource the table does not know (?retention, ?tagging) matches nothing.
        bool matches = op.subresource.empty() ? query_names.empty()
                                              : std::find(query_names.begin(), query_names.end(),
                                                          op.subresource) != query_names.end();
        if (matches)
            return &op;
    }
    return nullptr;
}

Result<std::unique_ptr<Storage>> open_s3_backend(const Config& config) {
    return open_s3_backend_with(config, AwsEnvironment::system());
}

Result<std::unique_ptr<Storage>> open_s3_backend_with(const Config& config, AwsEnvironment env) {
    const S3Settings& settings = config.s3;
    S3ClientSettings s;
    // s3://bucket/prefix
    std::string_view rest = std::string_view(config.url).substr(5);
    auto slash = rest.find('/');
    s.bucket = std::string(rest.substr(0, slash));
    std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    while (prefix.starts_with('/'))
        prefix.erase(0, 1);
    while (prefix.ends_with('/'))
        prefix.pop_back();
    if (!prefix.empty() && !is_valid_key(prefix))
        return fail(Error::payload(fmt::format("storage.url: \"{}\" has an invalid prefix", config.url)));
    s.prefix = prefix.empty() ? "" : prefix + "/";
    if (s.bucket.size() < 3 || s.bucket.size() > 63 ||
        s.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
        return fail(Error::payload(
            fmt::format("storage.url: \"{}\": the bucket name must be 3-63 of a-z 0-9 . -", config.url)));
    s.url = "s3://" + s.bucket + (prefix.empty() ? "" : "/" + prefix);

    s.region = resolve_region(env, settings.region);
    s.ca_bundle = ca_bundle(env);
    // The endpoint: storage.endpoint (validated by the payload parser), else
    // the environment's, which is checked here and named in messages.
    std::string endpoint_name = "storage.endpoint";
    std::optional<std::string> endpoint;
    if (!settings.endpoint.empty())
        endpoint = settings.endpoint;
    for (const char* variable : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
        if (endpoint)
            break;
        endpoint = env.getenv(variable);
        if (endpoint && endpoint->empty())
            endpoint.reset();
        if (endpoint)
            endpoint_name = variable;
    }
    // Path style by default with a custom endpoint, and for dotted bucket
    // names, which the *.s3 TLS certificates do not cover.
    s.path_style = settings.addressing.value_or(endpoint || s.bucket.find('.') != std::string::npos
                                                    ? Addressing::path
                                                    : Addressing::virtual_host) == Addressing::path;

    std::string scheme = "https";
    std::string authority = fmt::format("s3.{}.amazonaws.com", s.region);
    if (endpoint) {
        auto parts = split_s3_endpoint(*endpoint);
        if (!parts)
            return fail(Error::payload(fmt::format("{}: {}", endpoint_name, parts.error())));
        scheme = parts->scheme;
        authority = parts->authority;
    }
    s.host = s.path_style ? authority : s.bucket + "." + authority;
    s.scheme_host = scheme + "://" + s.host;

    if (settings.sse) {
        s.sse = std::string(to_string(*settings.sse));
        s.write_headers.emplace_back("x-amz-server-side-encryption", s.sse);
        if (!settings.kms_key_id.empty())
            s.write_headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", settings.kms_key_id);
        if (settings.bucket_key)
            s.write_headers.emplace_back("x-amz-server-side-encryption-bucket-key-enabled",
                                         *settings.bucket_key ? "true" : "false");
    }
    s.stall_timeout = settings.stall_timeout;
    s.require_protection = settings.require_protection;
    s.retry_budget = settings.retry_budget;
    s.upload_concurrency = static_cast<std::size_t>(settings.upload_concurrency);
    if (!settings.storage_class.empty())
        s.write_headers.emplace_back("x-amz-storage-class", settings.storage_class);
    if (settings.object_lock) {
        s.lock_mode = std::string(to_string(settings.object_lock->mode));
        s.lock_until = settings.object_lock->until;
        s.lock_days = settings.object_lock->days;
    }
    return std::make_unique<S3Storage>(std::make_shared<S3Client>(std::move(s), std::move(env)));
}

} // namespace snapshotter::storage
