#include "snapshotter/util/text.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;

TEST(Text, AsciiLowerLeavesOtherBytesAlone) {
    EXPECT_EQ(ascii_lower("X-Amz-Date \xc3\x84"), "x-amz-date \xc3\x84");
}

TEST(Text, TrimSpaceTrimsBothEnds) {
    EXPECT_EQ(trim_space(" \t value \r\n"), "value");
    EXPECT_EQ(trim_space("   "), "");
}
