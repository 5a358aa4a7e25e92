// The typed settings of each storage backend. The payload's storage section
// (job/job.cpp) parses and validates them once, naming the payload keys of
// docs/job-payload.md in its messages; backends take them as they are.
// file:// and memory:// take nothing but their URL; s3:// takes S3Settings.
#pragma once

#include "snapshotter/util/time.hpp"

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::storage {

// Defaults and bounds of the S3 settings, shared by the parser and the backend.
// A transfer slower than 1 KiB/s for this long has stalled (storage.stall_timeout_s).
constexpr std::chrono::seconds k_default_stall_timeout{60};
// A request is retried while its attempts and waits fit in this budget
// (storage.retry_budget_s): long enough for a gateway restart or a load
// balancer failover.
constexpr std::chrono::seconds k_default_retry_budget{90};
// stall_timeout_s and retry_budget_s are at most this many seconds.
constexpr int k_max_timeout_setting_s = 3600;
// Parts uploading at once (storage.upload_concurrency), each on its own
// connection; memory is bounded by (this + 2) parts: those in flight, the one
// being filled and one recycled buffer.
constexpr int k_default_upload_concurrency = 8;
constexpr int k_max_upload_concurrency = 64;

// storage.addressing: the bucket in the host name or in the path.
enum class Addressing { virtual_host, path };
// storage.sse: the server-side encryption requested for every object written.
enum class Sse { aes256, aws_kms };
// storage.object_lock_mode.
enum class LockMode { governance, compliance };

// The payload spelling of `value` ("virtual", "path").
std::string_view to_string(Addressing value);
// The payload and header spelling of `value` ("AES256", "aws:kms").
std::string_view to_string(Sse value);
// The payload and header spelling of `value` ("GOVERNANCE", "COMPLIANCE").
std::string_view to_string(LockMode value);
// The value spelt `text`, or nullopt when `text` is none of them.
std::optional<Addressing> parse_addressing(std::string_view text);
std::optional<Sse> parse_sse(std::string_view text);
std::optional<LockMode> parse_lock_mode(std::string_view text);

// Object Lock retention for objects published with Overwrite::no: a mode and
// either a fixed date or a number of days from the (real) time of writing.
struct ObjectLock {
    LockMode mode = LockMode::governance;
    std::optional<Clock::time_point> until; // storage.object_lock_retain_until
    int days = 0;                           // storage.object_lock_retain_days, when `until` is not set
};

// The settings of the s3:// backend, one member per payload key.
struct S3Settings {
    std::string region;                   // empty: from the AWS environment
    std::string endpoint;                 // empty: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or AWS itself
    std::optional<Addressing> addressing; // nullopt: path with an endpoint or a dotted bucket, else virtual
    std::optional<Sse> sse;
    std::string kms_key_id;         // with Sse::aws_kms only
    std::optional<bool> bucket_key; // with Sse::aws_kms only; sent only when set
    std::string storage_class;      // empty: the bucket's default
    std::chrono::seconds stall_timeout = k_default_stall_timeout;
    std::chrono::seconds retry_budget = k_default_retry_budget;
    int upload_concurrency = k_default_upload_concurrency;
    std::optional<ObjectLock> object_lock;
    // Fail (true) or warn (false) when the server did not apply a requested
    // SSE or Object Lock retention.
    bool require_protection = true;
};

// An S3 endpoint split into its parts.
struct S3Endpoint {
    std::string scheme;    // "http" or "https"
    std::string authority; // "host[:port]"
};

// Split `endpoint`, which must be http(s)://host[:port] with an optional
// trailing '/'; otherwise the problem, worded to follow the setting's name
// (values are redacted).
std::expected<S3Endpoint, std::string> split_s3_endpoint(std::string_view endpoint);

// How to reach a backend (storage::open): its URL and, for s3://, its typed
// settings, validated by the payload parser before they get here.
struct Config {
    std::string url;
    S3Settings s3; // used by s3:// only
};

// True when `name` looks like an S3 storage class (STANDARD_IA): A-Z and '_'.
bool is_storage_class(std::string_view name);

} // namespace snapshotter::storage
