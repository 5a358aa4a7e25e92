#include "snapshotter/git/async_scan.hpp"

#include <algorithm>

namespace snapshotter::git {
namespace {

// Bytes gathered into one queued chunk before the scanner is woken for it.
constexpr std::size_t k_chunk = std::size_t{256} << 10;

} // namespace

AsyncPackScanner::AsyncPackScanner(PackScanner scanner, std::size_t max_queued)
    : m_scanner(std::move(scanner)), m_max_queued(std::max(max_queued, k_chunk)) {
    m_thread = std::thread([this] { run(); });
}

AsyncPackScanner::~AsyncPackScanner() {
    cancel();
}

void AsyncPackScanner::run() {
    for (;;) {
        std::string chunk;
        {
            std::unique_lock lock(m_mutex);
            m_ready.wait(lock, [this] { return !m_queue.empty() || m_closed || m_cancelled; });
            if (m_cancelled || m_failure || m_queue.empty())
                return; // cancelled, failed, or closed with nothing left
            chunk = std::move(m_queue.front());
            m_queue.pop_front();
            m_queued -= chunk.size();
        }
        m_drained.notify_all();
        if (auto s = m_scanner.feed(chunk); !s) {
            {
                std::lock_guard lock(m_mutex);
                m_failure = s.error();
                m_queue.clear();
                m_queued = 0;
            }
            m_drained.notify_all();
            return;
        }
    }
}

Status AsyncPackScanner::feed(std::string_view data) {
    std::unique_lock lock(m_mutex);
    while (!data.empty()) {
        if (m_failure)
            return fail(*m_failure);
        if (m_cancelled || m_closed)
            return fail(Error::internal("pack scan fed after it was finished or cancelled"));
        // Append to the last chunk while it is small, so that the thread wakes per chunk, not per write.
        if (m_queue.empty() || m_queue.back().size() >= k_chunk) {
            m_drained.wait(lock, [this] { return m_queued < m_max_queued || m_failure || m_cancelled; });
            if (m_failure || m_cancelled)
                continue;
            m_queue.emplace_back();
            m_queue.back().reserve(k_chunk);
        }
        std::string& last = m_queue.back();
        const std::size_t n = std::min(data.size(), k_chunk - last.size());
        last.append(data.substr(0, n));
        m_queued += n;
        data.remove_prefix(n);
        m_ready.notify_one();
    }
    return m_failure ? fail(*m_failure) : Status{};
}

void AsyncPackScanner::stop_thread() {
    m_ready.notify_all();
    if (m_thread.joinable())
        m_thread.join();
}

Result<PackScanSummary> AsyncPackScanner::finish() {
    if (m_result)
        return *m_result;
    {
        std::lock_guard lock(m_mutex);
        m_closed = true;
    }
    stop_thread();
    std::lock_guard lock(m_mutex);
    if (m_failure)
        m_result = fail(*m_failure);
    else if (m_cancelled)
        m_result = fail(Error::internal("pack scan cancelled"));
    else
        m_result = m_scanner.finish();
    return *m_result;
}

void AsyncPackScanner::cancel() {
    {
        std::lock_guard lock(m_mutex);
        m_cancelled = true;
        m_queue.clear();
        m_queued = 0;
    }
    m_drained.notify_all();
    stop_thread();
}

} // namespace snapshotter::git
