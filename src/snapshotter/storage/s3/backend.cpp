// s3:// backend: S3 and S3-compatible stores over our own HTTP client
// (client.hpp) and SigV4 signer (signer.hpp); objects are written by
// writer.hpp. This file is the Storage implementation and the factory that
// resolves the typed settings (settings.hpp) into the client's.
#include "snapshotter/storage/backends.hpp"
#include "snapshotter/storage/s3/client.hpp"
#include "snapshotter/storage/s3/writer.hpp"
#include "snapshotter/storage/s3/xml.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <thread>

namespace snapshotter::storage {
namespace {

// Attempts to resume a broken download, the first included.
constexpr int k_max_attempts = 5;
// DeleteObjects takes at most this many keys per request.
constexpr std::size_t k_delete_batch = 1000;
// Rounds of read and conditional write update() tries before giving up.
constexpr int k_update_attempts = 10;

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
        return make_s3_writer(m_client, m_client->full_key(key), overwrite);
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
