// The Storage interface: a flat namespace of keys holding byte streams, and
// the table of backends keyed by URL scheme (file://, s3://, memory://).
// Backends only move bytes; what the keys mean is decided in snapshot/.
#pragma once

#include "snapshotter/storage/settings.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/object_writer.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/time.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::storage {

struct ObjectInfo {
    std::string key;
    std::uint64_t size = 0;
    std::optional<Clock::time_point> modified;
    // S3 Object Lock: the object cannot be deleted before this time (set by
    // head() only; list() does not know it).
    std::optional<Clock::time_point> retain_until;
};

// An upload begun and neither committed nor aborted: a temporary file of the
// file backend, an incomplete multipart upload on S3. A live writer has one
// while it writes; a process killed while writing leaves it behind for good.
struct PendingUpload {
    std::string key;        // the key it would have published
    std::string handle;     // what abort_pending() needs: the temporary file, the S3 UploadId
    std::uint64_t size = 0; // bytes stored so far
    // File: the last write to it. S3: when the upload was initiated.
    std::optional<Clock::time_point> since;
};

// Computes the new content of an object from its current one (nullopt when
// absent); returning nullopt leaves the object as it is.
using UpdateFn = std::function<std::optional<std::string>(const std::optional<std::string>& current)>;

// The byte sink a backend hands out for one key (util/object_writer.hpp).
using ObjectWriter = snapshotter::ObjectWriter;

class Storage {
  public:
    virtual ~Storage() = default;

    // The backend's URL, safe to print.
    [[nodiscard]] virtual std::string describe() const = 0;
    // Check that the backend is reachable and usable without writing anything.
    virtual Status check() = 0;
    // Start writing `key`; with Overwrite::no, commit() fails with Conflict if
    // `key` exists by then.
    virtual Result<std::unique_ptr<ObjectWriter>> create(std::string_view key, Overwrite overwrite) = 0;
    // Stream the object `key` into `sink`; NotFound when absent.
    virtual Status read(std::string_view key, const OutputSink& sink) = 0;
    // Size and time of `key`, or nullopt when absent.
    virtual Result<std::optional<ObjectInfo>> head(std::string_view key) = 0;
    // Every key that starts with `prefix`, sorted by key.
    virtual Result<std::vector<ObjectInfo>> list(std::string_view prefix) = 0;
    // Delete `keys`; keys that do not exist are not an error.
    virtual Status remove(std::span<const std::string> keys) = 0;

    // Replace the small object `key` by what `next` makes of its current
    // content, as a compare-and-swap: when another update() (of this or any
    // process) changed it in between, `next` runs again on the new content.
    // Returns whether it wrote. File: a lock on the key's directory; S3: a
    // conditional PUT (If-Match on the ETag, If-None-Match: * to create).
    // Durability::atomic_only lets the file backend skip its fsyncs, for
    // pointers that readers treat as hints (S3 is always durable).
    virtual Result<bool> update(std::string_view key, const UpdateFn& next, Durability durability) = 0;

    // Uploads under `prefix` begun and not finished, sorted by key. Backends
    // without such state (memory://) have none.
    virtual Result<std::vector<PendingUpload>> list_pending(std::string_view prefix);
    // Discard `upload` and its bytes; one that is already gone is not an error.
    virtual Status abort_pending(const PendingUpload& upload);

    // Write a small object in one step.
    virtual Status put(std::string_view key, std::string_view data, Overwrite overwrite);
    // Read a small object whole; fails when larger than `max_bytes`.
    virtual Result<std::string> get(std::string_view key, std::size_t max_bytes = std::size_t{64} << 20);
};

// Open the backend for `config.url` through the scheme table. A plain path
// (absolute or relative) means file://.
Result<std::unique_ptr<Storage>> open(const Config& config);

// The whole object at `url` ("s3://bucket/dir/key.json", "file:///dir/key.json"
// or a plain path), at most `max_bytes`: the storage is the URL up to the last
// '/', configured from the environment only (for S3: AWS_ENDPOINT_URL_S3,
// AWS_REGION, the credential chain). Used for payloads fetched by URL.
Result<std::string> read_url(std::string_view url, std::size_t max_bytes = std::size_t{16} << 20);

// The URL schemes open() accepts.
std::vector<std::string> supported_schemes();

// True when `key` is a valid storage key: non-empty `/`-separated segments,
// none of them "." or "..", no control characters, no leading `/`.
bool is_valid_key(std::string_view key);

// The in-memory backend behind "memory://NAME" URLs (for tests): every
// storage opened with the same NAME in one process shares its objects.
std::unique_ptr<Storage> open_memory(std::string_view name);

} // namespace snapshotter::storage
