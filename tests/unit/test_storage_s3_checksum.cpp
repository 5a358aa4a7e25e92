#include "snapshotter/storage/s3/checksum.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

using namespace snapshotter::storage;

namespace {

std::span<const std::byte> bytes_of(std::string_view text) {
    return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

} // namespace

TEST(S3Checksum, Crc32OfTheCheckStringIsItsKnownValueBigEndianInBase64) {
    // The CRC-32 check value of "123456789" is 0xCBF43926; S3 carries its four
    // bytes most significant first: CB F4 39 26.
    Crc32 crc;
    crc.update(bytes_of("123456789"));
    EXPECT_EQ(crc.value(), 0xCBF43926U);
    EXPECT_EQ(crc32_base64(crc.value()), "y/Q5Jg==");
    EXPECT_EQ(crc32_base64_of(bytes_of("123456789")), "y/Q5Jg==");
    EXPECT_EQ(crc32_base64(0), "AAAAAA==");
    EXPECT_EQ(crc32_base64_of({}), "AAAAAA==");
}

TEST(S3Checksum, Crc32FedInPiecesEqualsTheWholeAndResets) {
    Crc32 crc;
    crc.update(bytes_of("hello "));
    EXPECT_EQ(crc32_base64(crc.value()), "7YH59g==");
    crc.update(bytes_of("world"));
    EXPECT_EQ(crc32_base64(crc.value()), "DUoRhQ==");
    EXPECT_EQ(crc32_base64_of(bytes_of("hello world")), "DUoRhQ==");
    crc.reset();
    crc.update(bytes_of("123456789"));
    EXPECT_EQ(crc.value(), 0xCBF43926U);
}

TEST(S3Checksum, CompositeIsTheCrc32OfThePartsCrc32sWithTheirCount) {
    // Python: zlib.crc32 of b"a"*100, b"hello world" and b"123456789", then
    // zlib.crc32 of their big-endian bytes concatenated (as S3 and moto compute it).
    std::vector<std::string> parts = {crc32_base64_of(bytes_of(std::string(100, 'a'))),
                                      "DUoRhQ==", "y/Q5Jg=="};
    EXPECT_EQ(parts[0], "r3B6ZA==");
    EXPECT_EQ(crc32_composite(parts), "aosReg==-3");
    EXPECT_FALSE(crc32_composite(std::vector<std::string>{"not base64"}));
    EXPECT_FALSE(crc32_composite(std::vector<std::string>{"AAAAAAAA"}));
}

TEST(S3Checksum, OnlyAnAnswerOfOurFormThatDiffersIsAMismatch) {
    EXPECT_FALSE(checksum_differs("y/Q5Jg==", "y/Q5Jg=="));
    EXPECT_TRUE(checksum_differs("AAAAAA==", "y/Q5Jg=="));
    EXPECT_FALSE(checksum_differs("aosReg==-3", "aosReg==-3"));
    EXPECT_TRUE(checksum_differs("AAAAAA==-3", "aosReg==-3"));
    // Another type of checksum (a full-object one, another part count) is not ours to judge.
    EXPECT_FALSE(checksum_differs("AAAAAA==", "aosReg==-3"));
    EXPECT_FALSE(checksum_differs("AAAAAA==-2", "aosReg==-3"));
    EXPECT_FALSE(checksum_differs("AAAAAA==-2", "y/Q5Jg=="));
}
