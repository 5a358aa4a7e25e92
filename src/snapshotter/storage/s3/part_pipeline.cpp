#include "snapshotter/storage/s3/part_pipeline.hpp"

#include "snapshotter/storage/s3/xml.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace snapshotter::storage {

namespace {

void sort_by_number(PartList& parts) {
    std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.number < b.number; });
}

} // namespace

std::string complete_multipart_body(PartList parts) {
    sort_by_number(parts);
    std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (const auto& part : parts) {
        body += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>", part.number,
                            xml::escape(part.etag));
        if (!part.crc32.empty())
            body += fmt::format("<ChecksumCRC32>{}</ChecksumCRC32>", xml::escape(part.crc32));
        body += "</Part>";
    }
    body += "</CompleteMultipartUpload>";
    return body;
}

PartPipeline::PartPipeline(std::size_t slots, Upload upload)
    : m_slots(std::max<std::size_t>(slots, 1)), m_upload(std::move(upload)) {}

PartPipeline::~PartPipeline() {
    cancel();
}

Status PartPipeline::submit(int number, std::vector<std::byte> data, std::string crc32) {
    std::unique_lock lock(m_mutex);
    m_space.wait(lock, [&] { return m_in_flight < m_slots || m_error || m_stop; });
    if (m_error)
        return fail(*m_error);
    if (m_stop)
        return fail(Error::internal("part submitted after the upload was stopped"));
    m_queue.push_back(Part{number, std::move(data), std::move(crc32)});
    ++m_in_flight;
    m_peak = std::max(m_peak, m_in_flight);
    // Workers start as parts need them: a two-part object never runs `slots` threads.
    if (m_idle == 0 && m_workers.size() < m_slots)
        m_workers.emplace_back([this] { work(); });
    m_work.notify_one();
    return {};
}

std::vector<std::byte> PartPipeline::recycle() {
    std::lock_guard lock(m_mutex);
    return std::exchange(m_spare, {});
}

Result<PartList> PartPipeline::finish() {
    {
        std::unique_lock lock(m_mutex);
        m_space.wait(lock, [&] { return m_in_flight == 0; });
    }
    cancel();
    std::lock_guard lock(m_mutex);
    if (m_error)
        return fail(*m_error);
    PartList parts = m_done;
    sort_by_number(parts);
    return parts;
}

void PartPipeline::cancel() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
        m_in_flight -= m_queue.size();
        m_queue.clear();
    }
    m_work.notify_all();
    m_space.notify_all();
    for (auto& worker : m_workers)
        worker.join();
    m_workers.clear();
}

std::size_t PartPipeline::peak_in_flight() const {
    std::lock_guard lock(m_mutex);
    return m_peak;
}

void PartPipeline::work() {
    for (;;) {
        Part part;
        bool skip = false;
        {
            std::unique_lock lock(m_mutex);
            ++m_idle;
            m_work.wait(lock, [&] { return !m_queue.empty() || m_stop; });
            --m_idle;
            if (m_queue.empty())
                return;
            part = std::move(m_queue.front());
            m_queue.pop_front();
            // Another part failed: the upload will be aborted, spend no bandwidth.
            skip = m_error.has_value();
        }
        Result<std::string> etag = skip ? Result<std::string>(fail(Error::internal("skipped")))
                                        : m_upload(part.number, part.data, part.crc32);
        std::lock_guard lock(m_mutex);
        if (etag)
            m_done.push_back(UploadedPart{part.number, std::move(*etag), std::move(part.crc32)});
        else if (!m_error)
            m_error = etag.error();
        part.data.clear();
        if (m_spare.capacity() == 0)
            m_spare = std::move(part.data);
        --m_in_flight;
        m_space.notify_all();
    }
}

} // namespace snapshotter::storage
