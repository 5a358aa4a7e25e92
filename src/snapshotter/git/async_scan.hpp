// A PackScanner on a thread of its own. feed() copies the bytes into a
// bounded queue and returns (it blocks only while `max_queued` bytes wait),
// so that the scan, which inflates every object of a pack, runs beside what
// the caller does with the same bytes (receiving, hashing and storing them):
// on a full snapshot of libgit2 the scan is most of the client's CPU
// (bench/README.md, round 29).
//
// The scanner's callbacks run on the scanning thread: what they collect may
// be read only after finish() or cancel() returned. A scan failure is
// returned by the next feed() (so that the caller stops the transfer) and by
// finish(). Memory: the scanner's own, plus at most `max_queued` bytes queued
// (2 MiB by default) and the chunk being scanned. The destructor cancels.
#pragma once

#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/util/error.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace snapshotter::git {

class AsyncPackScanner {
  public:
    explicit AsyncPackScanner(PackScanner scanner, std::size_t max_queued = std::size_t{2} << 20);
    ~AsyncPackScanner();
    AsyncPackScanner(const AsyncPackScanner&) = delete;
    AsyncPackScanner& operator=(const AsyncPackScanner&) = delete;

    // Queue `data` for the scanner; fails with the scan's error once it failed.
    Status feed(std::string_view data);
    // Wait until every queued byte is scanned, then check that a whole pack
    // arrived (PackScanner::finish()); the scan's error if it failed.
    Result<PackScanSummary> finish();
    // Drop what is queued and stop the thread; finish() then fails.
    void cancel();

  private:
    void run();
    void stop_thread();

    PackScanner m_scanner;
    std::size_t m_max_queued;
    std::mutex m_mutex;
    std::condition_variable m_ready;   // a chunk was queued, or the input closed
    std::condition_variable m_drained; // queued bytes went down, or the scan failed
    std::deque<std::string> m_queue;
    std::size_t m_queued = 0;
    bool m_closed = false;
    bool m_cancelled = false;
    std::optional<Error> m_failure;
    std::optional<Result<PackScanSummary>> m_result;
    std::thread m_thread;
};

} // namespace snapshotter::git
