// The parallel half of a multipart upload, apart from HTTP: parts handed over
// by one producer are uploaded by at most `slots` worker threads at once, and
// the producer blocks while every slot is taken, so that memory stays bounded
// by the parts in flight (each holds its bytes until it succeeds: a retry
// re-sends them) plus the one the producer is filling. Internal to storage/.
#pragma once

#include "snapshotter/util/error.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace snapshotter::storage {

// One uploaded part as CompleteMultipartUpload lists it.
struct UploadedPart {
    int number = 0;
    std::string etag;
    // The part's CRC32 in base64 as it was sent (checksum.hpp); empty: none.
    std::string crc32;
    bool operator==(const UploadedPart&) const = default;
};

// The uploaded parts, ascending by number.
using PartList = std::vector<UploadedPart>;

// The CompleteMultipartUpload request body for `parts` (any order; listed by
// ascending part number, ETags XML-escaped, with <ChecksumCRC32> for the
// parts that have one).
std::string complete_multipart_body(PartList parts);

class PartPipeline {
  public:
    // Upload part `number` holding `data` whose base64 CRC32 is `crc32`
    // (empty: none); its ETag, or an error that stops the pipeline. Called
    // on worker threads, up to `slots` at once.
    using Upload = std::function<Result<std::string>(int number, std::span<const std::byte> data,
                                                     const std::string& crc32)>;

    // A pipeline of `slots` (at least 1) workers, started as parts arrive.
    PartPipeline(std::size_t slots, Upload upload);
    // Cancels what is left and joins the workers.
    ~PartPipeline();
    PartPipeline(const PartPipeline&) = delete;
    PartPipeline& operator=(const PartPipeline&) = delete;

    // Hand part `number` with `data` (and its base64 CRC32 `crc32`, or empty)
    // to a worker, first waiting while `slots` parts are in flight; fails,
    // without taking the part, once any part has failed.
    Status submit(int number, std::vector<std::byte> data, std::string crc32 = {});
    // An emptied buffer of a finished part (its capacity kept), or an empty
    // vector: at most one is kept, so the producer need not allocate anew.
    std::vector<std::byte> recycle();
    // Wait for every part submitted; their numbers, ETags and checksums by
    // ascending number, or the first failure.
    Result<PartList> finish();
    // Drop the parts not started, wait for those uploading, stop the workers
    // (idempotent). Nothing is uploaded after it returns.
    void cancel();
    // The most parts ever in flight at once (submitted, not yet finished).
    [[nodiscard]] std::size_t peak_in_flight() const;

  private:
    struct Part {
        int number = 0;
        std::vector<std::byte> data;
        std::string crc32;
    };
    void work();

    const std::size_t m_slots;
    Upload m_upload;
    mutable std::mutex m_mutex;
    std::condition_variable m_work;  // a part was queued, or stop
    std::condition_variable m_space; // a part finished
    std::deque<Part> m_queue;
    std::size_t m_in_flight = 0;
    std::size_t m_peak = 0;
    std::size_t m_idle = 0; // workers waiting for a part
    bool m_stop = false;
    std::optional<Error> m_error;
    PartList m_done;
    std::vector<std::byte> m_spare;
    std::vector<std::thread> m_workers;
};

} // namespace snapshotter::storage
