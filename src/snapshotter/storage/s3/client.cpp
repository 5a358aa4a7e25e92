#include "snapshotter/storage/s3/client.hpp"

#include "snapshotter/storage/s3/signer.hpp"
#include "snapshotter/storage/s3/xml.hpp"
#include "snapshotter/util/backoff.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <thread>

namespace snapshotter::storage {
namespace {

// A request is retried while its attempts and waits fit in its budget
// (storage.retry_budget_s, settings.hpp). Waits are full jitter, capped so
// that an endpoint that comes back is tried again within seconds.
// Attempts a request gets even when they take longer than the budget (stalls).
constexpr int k_min_attempts = 3;
constexpr std::chrono::milliseconds k_backoff_base{200};
constexpr std::chrono::milliseconds k_backoff_cap{8'000};

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

std::string sha256_of(std::span<const std::byte> data) {
    Sha256 h;
    h.update(data);
    return h.hex_digest();
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

} // namespace

std::string md5_base64(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr);
    unsigned char out[64];
    int n = EVP_EncodeBlock(out, digest, static_cast<int>(length));
    return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

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

bool is_error_in_200(const http::Response& response) {
    return response.status == 200 && response.body.find("<Error>") != std::string::npos;
}

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

Result<http::Response> S3Client::send(const S3Request& request) {
    if (operation_of(request) == nullptr)
        return fail(Error::internal(
            fmt::format("S3 {} with query {} is not in the operation table of storage/s3/client.cpp",
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
                        std::chrono::duration_cast<std::chrono::milliseconds>(*server - Clock::now()).count();
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

Error S3Client::error_of(const S3Request& request, const http::Response& response) const {
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

std::string S3Client::hint_for(const S3Request& request, const http::Response& response,
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

std::string S3Client::describe(const S3Request& request) const {
    const S3Operation* op = operation_of(request);
    return fmt::format("S3 {} s3://{}/{}", op ? op->api : std::string_view(request.method), m_settings.bucket,
                       request.key);
}

const S3Operation* S3Client::operation_of(const S3Request& request) {
    std::vector<std::string_view> names;
    names.reserve(request.query.size());
    for (const auto& [name, value] : request.query)
        names.push_back(name);
    return s3_operation_of(request.method, names);
}

Result<std::optional<http::Response>> S3Client::head_object(const std::string& full) {
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

Status S3Client::confirm_protection(const std::string& full, const http::Response* written,
                                    std::optional<Clock::time_point> lock_until, bool set_retention) {
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
        auto until = until_text.size() >= 19 ? parse_rfc3339(until_text.substr(0, 19) + "Z") : std::nullopt;
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

Status S3Client::put_retention(const std::string& full, Clock::time_point until) {
    std::string body =
        fmt::format("<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>"
                    "<RetainUntilDate>{}</RetainUntilDate></Retention>",
                    m_settings.lock_mode, format_rfc3339(until));
    S3Request request{.method = "PUT",
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

} // namespace snapshotter::storage
