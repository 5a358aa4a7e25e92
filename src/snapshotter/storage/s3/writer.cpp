#include "snapshotter/storage/s3/writer.hpp"

#include "snapshotter/storage/s3/checksum.hpp"
#include "snapshotter/storage/s3/part_pipeline.hpp"
#include "snapshotter/storage/s3/xml.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

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
// Up to this size a writer's buffer grows as needed instead of taking a part.
constexpr std::size_t k_small_object = std::size_t{1} << 20;

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

// The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then
// "-N"; nullopt when a part ETag is not a plain MD5 (SSE-KMS, some stores).
std::optional<std::string> composite_etag(const PartList& parts) {
    std::string digests;
    for (const auto& part : parts) {
        std::string_view hex = part.etag;
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
    return fmt::format("\"{}-{}\"", to_hex({digest, length}), parts.size());
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
            // The part's CRC32 is taken while its bytes are still in cache.
            m_crc.update(data.first(n));
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
        const std::string crc32 = crc32_base64(m_crc.value());
        request.headers.emplace_back(k_checksum_header, crc32);
        request.body = m_buffer;
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error());
        if (auto s = check_answered_checksum(request, *response, crc32); !s)
            return s;
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
        // Every part then carries its CRC32 (checksum.hpp).
        request.headers.emplace_back("x-amz-checksum-algorithm", k_checksum_algorithm);
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
            [this](int number, std::span<const std::byte> data, const std::string& crc32) {
                return upload_part(number, data, crc32);
            });
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
        std::string crc32 = crc32_base64(m_crc.value());
        m_crc.reset();
        if (auto s = m_pipeline->submit(m_next_part++, std::move(m_buffer), std::move(crc32)); !s)
            return s;
        // Reuse a finished part's memory for the next one when there is one.
        m_buffer = m_pipeline->recycle();
        return {};
    }

    // UploadPart `number` with `data` whose base64 CRC32 is `crc32`; its
    // ETag. Runs on a pipeline worker.
    Result<std::string> upload_part(int number, std::span<const std::byte> data, const std::string& crc32) {
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
        // The CRC32 declared with CreateMultipartUpload: S3 checks the part
        // against it (and moto then spares itself a whole-object checksum).
        request.headers.emplace_back(k_checksum_header, crc32);
        request.body = data;
        auto response = m_client->send(request);
        if (!response)
            return fail(response.error().with_context(fmt::format("part {}", number)));
        if (!response->ok())
            return fail(m_client->error_of(request, *response).with_context(fmt::format("part {}", number)));
        if (auto s = check_answered_checksum(request, *response, crc32); !s)
            return fail(s.error().with_context(fmt::format("part {}", number)));
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
        if (auto s = check_completed_checksum(request, *response); !s)
            return s;
        return m_client->confirm_protection(m_key, &*response, m_lock_until, true);
    }

    // Fail with Integrity when the server answered `response` to `request`
    // with a CRC32 (x-amz-checksum-crc32) other than `ours`, the one sent.
    Status check_answered_checksum(const S3Request& request, const http::Response& response,
                                   const std::string& ours) const {
        auto answered = response.header(k_checksum_header);
        if (!answered || !checksum_differs(*answered, ours))
            return {};
        return fail(Error::integrity(fmt::format("{}: the server's CRC32 of the bytes is {}, ours is {}",
                                                 m_client->describe(request), *answered, ours)));
    }

    // Fail with Integrity when CompleteMultipartUpload's answer carries a
    // <ChecksumCRC32> of the object other than the one our parts make up.
    Status check_completed_checksum(const S3Request& request, const http::Response& response) const {
        auto answered = xml::first(response.body, "ChecksumCRC32");
        if (!answered)
            return {};
        std::vector<std::string> crcs;
        for (const auto& part : m_parts)
            crcs.push_back(part.crc32);
        auto ours = crc32_composite(crcs);
        if (!ours || !checksum_differs(*answered, *ours))
            return {};
        return fail(Error::integrity(fmt::format("{}: the server's CRC32 of the object is {}, ours is {}",
                                                 m_client->describe(request), *answered, *ours)));
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
    // The CRC32 of the bytes in m_buffer (the part being filled).
    Crc32 m_crc;
    int m_next_part = 1;
    std::string m_upload_id;
    // Bytes handed to the pipeline so far.
    std::uint64_t m_size = 0;
    // The parts in flight, from the first part on.
    std::unique_ptr<PartPipeline> m_pipeline;
    // Every part's number, ETag and CRC32, ascending, once all are uploaded.
    PartList m_parts;
};

} // namespace

std::unique_ptr<ObjectWriter> make_s3_writer(std::shared_ptr<S3Client> client, std::string key,
                                             Overwrite overwrite) {
    return std::make_unique<S3Writer>(std::move(client), std::move(key), overwrite);
}

} // namespace snapshotter::storage
