#include "snapshotter/storage/s3/part_pipeline.hpp"

#include <atomic>
#include <condition_variable>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mutex>
#include <set>
#include <thread>

using namespace snapshotter;
using namespace snapshotter::storage;

namespace {

// A fake UploadPart whose calls wait until the test lets each part number
// through; it counts the calls running at once.
class GatedUpload {
  public:
    PartPipeline::Upload upload() {
        return [this](int number, std::span<const std::byte> data,
                      const std::string& crc32) -> Result<std::string> {
            std::unique_lock lock(m_mutex);
            ++m_running;
            ++m_calls;
            m_peak = std::max(m_peak, m_running);
            m_changed.notify_all();
            m_changed.wait(lock, [&] { return m_open || m_allowed.contains(number); });
            --m_running;
            m_finished.push_back(number);
            m_changed.notify_all();
            if (number == m_failing)
                return fail(Error::storage(fmt::format("part {} refused", number)));
            return fmt::format("\"etag-{}-{}{}\"", number, data.size(), crc32);
        };
    }
    // Let part `number` finish.
    void allow(int number) {
        std::lock_guard lock(m_mutex);
        m_allowed.insert(number);
        m_changed.notify_all();
    }
    // Let every part finish from now on.
    void open() {
        std::lock_guard lock(m_mutex);
        m_open = true;
        m_changed.notify_all();
    }
    // Wait until `n` calls are running at once.
    void wait_running(int n) {
        std::unique_lock lock(m_mutex);
        m_changed.wait(lock, [&] { return m_running == n; });
    }
    // Wait until `n` parts have finished.
    void wait_finished(std::size_t n) {
        std::unique_lock lock(m_mutex);
        m_changed.wait(lock, [&] { return m_finished.size() == n; });
    }
    void fail_part(int number) { m_failing = number; }
    int peak() {
        std::lock_guard lock(m_mutex);
        return m_peak;
    }
    int calls() {
        std::lock_guard lock(m_mutex);
        return m_calls;
    }
    std::vector<int> finished() {
        std::lock_guard lock(m_mutex);
        return m_finished;
    }

  private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::set<int> m_allowed;
    bool m_open = false;
    int m_running = 0;
    int m_peak = 0;
    int m_calls = 0;
    int m_failing = 0;
    std::vector<int> m_finished;
};

std::vector<std::byte> bytes(std::size_t n) {
    return std::vector<std::byte>(n, std::byte{7});
}

} // namespace

TEST(PartPipeline, NeverHasMoreThanItsSlotsInFlightAndTheProducerWaits) {
    GatedUpload fake;
    PartPipeline pipeline(3, fake.upload());
    std::atomic<int> submitted = 0;
    std::thread producer([&] {
        for (int n = 1; n <= 10; ++n) {
            ASSERT_TRUE(pipeline.submit(n, bytes(static_cast<std::size_t>(n))));
            ++submitted;
        }
    });
    // Three parts are uploading and none may finish: the fourth submit waits.
    fake.wait_running(3);
    EXPECT_LE(submitted.load(), 3);
    // One finishes: exactly one more part gets in.
    fake.allow(2);
    fake.wait_finished(1);
    fake.wait_running(3);
    EXPECT_LE(submitted.load(), 4);
    EXPECT_EQ(fake.calls(), 4);
    fake.open();
    producer.join();
    auto parts = pipeline.finish();
    ASSERT_TRUE(parts) << parts.error().message;
    ASSERT_EQ(parts->size(), 10U);
    for (int n = 1; n <= 10; ++n)
        EXPECT_EQ((*parts)[static_cast<std::size_t>(n - 1)],
                  (UploadedPart{n, fmt::format("\"etag-{}-{}\"", n, n), ""}));
    EXPECT_EQ(fake.peak(), 3);
    EXPECT_EQ(pipeline.peak_in_flight(), 3U);
}

TEST(PartPipeline, PartsFinishingOutOfOrderAreListedByNumber) {
    GatedUpload fake;
    PartPipeline pipeline(4, fake.upload());
    for (int n = 1; n <= 4; ++n)
        ASSERT_TRUE(pipeline.submit(n, bytes(1)));
    fake.wait_running(4);
    for (int n = 4; n >= 1; --n) {
        fake.allow(n);
        fake.wait_finished(static_cast<std::size_t>(5 - n));
    }
    EXPECT_EQ(fake.finished(), (std::vector<int>{4, 3, 2, 1}));
    auto parts = pipeline.finish();
    ASSERT_TRUE(parts);
    std::vector<int> numbers;
    for (const auto& part : *parts)
        numbers.push_back(part.number);
    EXPECT_EQ(numbers, (std::vector<int>{1, 2, 3, 4}));
    // And so does the Complete request built from them, in any order given.
    PartList shuffled = {{3, "\"c\"", ""}, {1, "\"a\"", ""}, {2, "\"b\"", ""}};
    EXPECT_EQ(complete_multipart_body(shuffled),
              "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
              "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
              "<Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part>"
              "<Part><PartNumber>3</PartNumber><ETag>&quot;c&quot;</ETag></Part>"
              "</CompleteMultipartUpload>");
}

TEST(PartPipeline, AFailedPartStopsTheUploadAndIsReported) {
    // Only parts 1 and 2 may finish until the loop ends, so the slots fill
    // and a submit must wait until part 2's failure is recorded: the outcome
    // does not depend on how the threads are scheduled.
    GatedUpload fake;
    fake.fail_part(2);
    fake.allow(1);
    fake.allow(2);
    PartPipeline pipeline(2, fake.upload());
    Status last;
    int submitted = 0;
    for (int n = 1; n <= 50 && last; ++n)
        if ((last = pipeline.submit(n, bytes(1))))
            ++submitted;
    fake.open();
    auto parts = pipeline.finish();
    ASSERT_FALSE(parts);
    EXPECT_NE(parts.error().message.find("part 2 refused"), std::string::npos) << parts.error().message;
    // Once part 2 has failed, no further part is taken: at most the two
    // slots freed by parts 1 and 2 were refilled before the failure.
    EXPECT_LE(submitted, 4);
    EXPECT_LE(fake.calls(), 4);
    EXPECT_FALSE(pipeline.submit(99, bytes(1)));
}

TEST(PartPipeline, CancelWaitsForPartsUploadingAndDropsTheRest) {
    GatedUpload fake;
    PartPipeline pipeline(2, fake.upload());
    ASSERT_TRUE(pipeline.submit(1, bytes(1)));
    ASSERT_TRUE(pipeline.submit(2, bytes(1)));
    fake.wait_running(2);
    std::thread canceller([&] { pipeline.cancel(); });
    fake.open();
    canceller.join();
    // Both uploads ended before cancel returned, and nothing more is sent.
    EXPECT_EQ(fake.finished().size(), 2U);
    EXPECT_FALSE(pipeline.submit(3, bytes(1)));
    EXPECT_EQ(fake.calls(), 2);
}

TEST(PartPipeline, AFinishedPartsBufferIsRecycled) {
    GatedUpload fake;
    fake.open();
    PartPipeline pipeline(1, fake.upload());
    std::vector<std::byte> buffer;
    buffer.reserve(4096);
    buffer.resize(100);
    ASSERT_TRUE(pipeline.submit(1, std::move(buffer)));
    fake.wait_finished(1);
    // The worker puts the buffer back just after the upload call returns.
    std::vector<std::byte> again;
    while (again.capacity() == 0)
        again = pipeline.recycle();
    EXPECT_TRUE(again.empty());
    EXPECT_GE(again.capacity(), 4096U);
    ASSERT_TRUE(pipeline.finish());
}

TEST(PartPipeline, APartsChecksumGoesToItsUploadAndIntoTheCompleteRequest) {
    GatedUpload fake;
    fake.open();
    PartPipeline pipeline(2, fake.upload());
    ASSERT_TRUE(pipeline.submit(2, bytes(3), "BBBBBB=="));
    ASSERT_TRUE(pipeline.submit(1, bytes(5), "y/Q5Jg=="));
    auto parts = pipeline.finish();
    ASSERT_TRUE(parts) << parts.error().message;
    // The fake's ETag shows the checksum its upload call was given.
    EXPECT_EQ(*parts,
              (PartList{{1, "\"etag-1-5y/Q5Jg==\"", "y/Q5Jg=="}, {2, "\"etag-2-3BBBBBB==\"", "BBBBBB=="}}));
    // CompleteMultipartUpload lists each part's CRC32 after its ETag, as S3's
    // API reference orders them; a part without one has no element.
    PartList mixed = {{2, "\"b\"", "BBBBBB=="}, {1, "\"a\"", "y/Q5Jg=="}, {3, "\"c\"", ""}};
    EXPECT_EQ(complete_multipart_body(mixed),
              "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
              "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag><ChecksumCRC32>y/Q5Jg==</"
              "ChecksumCRC32></Part>"
              "<Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag><ChecksumCRC32>BBBBBB==</"
              "ChecksumCRC32></Part>"
              "<Part><PartNumber>3</PartNumber><ETag>&quot;c&quot;</ETag></Part>"
              "</CompleteMultipartUpload>");
}
