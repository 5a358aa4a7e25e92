// git::ObjectTable: lookups by offset and by id, duplicates, order and
// length checks, growth past many index resizes, and its memory per object.
#include "snapshotter/git/object_table.hpp"

#include <cstring>
#include <gtest/gtest.h>
#include <stdexcept>
#include <string>

namespace snapshotter::git {
namespace {

// A raw id of `len` bytes made from `n` (distinct for distinct n).
std::string raw_id(std::uint64_t n, std::size_t len = 20) {
    std::string id(len, '\0');
    for (std::size_t i = 0; i < len; ++i)
        id[i] = static_cast<char>((n * 0x9E3779B97F4A7C15ULL >> ((i % 8) * 8)) ^ i);
    std::memcpy(id.data(), &n, sizeof n); // the first 8 bytes alone tell ids apart
    return id;
}

TEST(ObjectTable, FindsEveryObjectByOffsetAndById) {
    ObjectTable table(20);
    for (std::uint64_t i = 0; i < 100'000; ++i)
        table.add(12 + 7 * i, static_cast<std::uint8_t>(1 + i % 3), raw_id(i));
    ASSERT_EQ(table.size(), 100'000U);
    for (std::uint64_t i = 0; i < 100'000; i += 997) {
        auto index = table.find_offset(12 + 7 * i);
        ASSERT_TRUE(index.has_value()) << i;
        EXPECT_EQ(table.type(*index), 1 + i % 3);
        EXPECT_EQ(table.raw_oid(*index), raw_id(i));
        EXPECT_EQ(table.find_oid(raw_id(i)), 12 + 7 * i);
    }
    EXPECT_FALSE(table.find_offset(13).has_value());
    EXPECT_FALSE(table.find_offset(12 + 7 * 100'000).has_value());
    EXPECT_FALSE(table.find_oid(raw_id(100'000)).has_value());
    EXPECT_FALSE(table.find_oid("short").has_value());
}

TEST(ObjectTable, UsesUnderEightyBytesPerSha1Object) {
    ObjectTable table(20);
    for (std::uint64_t i = 0; i < 400'000; ++i)
        table.add(100 + i, 3, raw_id(i));
    // 9 + 20 bytes of arrays (up to 2x by geometric growth) and at most 8 of
    // index per object at half load (16 just after a resize).
    EXPECT_LT(table.bytes(), 400'000U * 80U);
    EXPECT_GT(table.bytes(), 400'000U * 37U);
}

TEST(ObjectTable, ADuplicatedObjectIsFoundAtBothOffsetsAndByIdAtTheFirst) {
    ObjectTable table(32);
    table.add(12, 3, raw_id(7, 32));
    table.add(40, 3, raw_id(8, 32));
    table.add(90, 3, raw_id(7, 32));
    EXPECT_EQ(table.size(), 3U);
    EXPECT_EQ(table.find_oid(raw_id(7, 32)), 12U);
    ASSERT_TRUE(table.find_offset(90).has_value());
    EXPECT_EQ(table.raw_oid(*table.find_offset(90)), raw_id(7, 32));
}

TEST(ObjectTable, RefusesOffsetsOutOfOrderAndIdsOfAnotherLength) {
    ObjectTable table(20);
    table.add(50, 1, raw_id(1));
    EXPECT_THROW(table.add(50, 1, raw_id(2)), std::invalid_argument);
    EXPECT_THROW(table.add(49, 1, raw_id(2)), std::invalid_argument);
    EXPECT_THROW(table.add(60, 1, raw_id(2, 32)), std::invalid_argument);
    EXPECT_THROW(ObjectTable(4), std::invalid_argument);
    EXPECT_EQ(table.size(), 1U);
}

TEST(ObjectTable, IdsAlikeButForTheirHighPrefixBitsStillResolve) {
    // Ids that differ only in the high bits of their 8-byte prefix, which a
    // hash keeping the low bits would put in one slot: each is still found
    // at its own offset (correctness only; how far they spread is not
    // measured here).
    ObjectTable table(20);
    for (std::uint64_t i = 0; i < 5'000; ++i)
        table.add(100 + i, 3, raw_id(i << 44));
    for (std::uint64_t i = 0; i < 5'000; ++i)
        ASSERT_EQ(table.find_oid(raw_id(i << 44)), 100 + i);
}

} // namespace
} // namespace snapshotter::git
