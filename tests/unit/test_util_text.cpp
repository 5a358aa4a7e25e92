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

TEST(Text, PrintableKeepsUnicodeAndReplacesControlsAndBadBytes) {
    EXPECT_EQ(printable("org/app"), "org/app");
    EXPECT_EQ(printable("ünïcødé/ブランチ"), "ünïcødé/ブランチ");
    // An escape sequence from untrusted storage must not reach the terminal.
    EXPECT_EQ(printable("a\x1b[31mb"), "a\xEF\xBF\xBD[31mb");
    EXPECT_EQ(printable("tab\there\n"), "tab\xEF\xBF\xBDhere\xEF\xBF\xBD");
    EXPECT_EQ(printable("\x7f"), "\xEF\xBF\xBD");
    EXPECT_EQ(printable("\xc2\x9b"), "\xEF\xBF\xBD");                             // C1 CSI
    EXPECT_EQ(printable("\xff"), "\xEF\xBF\xBD");                                 // never valid
    EXPECT_EQ(printable("\xc3"), "\xEF\xBF\xBD");                                 // truncated
    EXPECT_EQ(printable("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                 // overlong '/'
    EXPECT_EQ(printable("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // surrogate
}

TEST(Text, DisplayWidthCountsTerminalColumns) {
    EXPECT_EQ(display_width(""), 0u);
    EXPECT_EQ(display_width("refs/heads/main"), 15u);
    EXPECT_EQ(display_width("ü"), 1u);         // precomposed: one column, two bytes
    EXPECT_EQ(display_width("u\xcc\x88"), 1u); // u + combining diaeresis
    EXPECT_EQ(display_width("リリース"), 8u);  // katakana are wide
    EXPECT_EQ(display_width("漢字"), 4u);
    EXPECT_EQ(display_width("\xf0\x9f\x9a\x80"), 2u); // rocket emoji
    EXPECT_EQ(display_width("\xff"), 1u);
}

TEST(Text, EditDistanceCountsInsertionsDeletionsAndSubstitutions) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("list", "list"), 0u);
    EXPECT_EQ(edit_distance("lsit", "list"), 2u);
    EXPECT_EQ(edit_distance("restor", "restore"), 1u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(edit_distance("", "gc"), 2u);
}

TEST(Text, NearestNameSuggestsOnlyCloseCandidates) {
    const std::vector<std::string> actions{"snapshot", "restore", "verify", "list", "prune", "gc"};
    EXPECT_EQ(nearest_name("lsit", actions), "list");
    EXPECT_EQ(nearest_name("restroe", actions), "restore");
    EXPECT_EQ(nearest_name("snapshots", actions), "snapshot");
    EXPECT_EQ(nearest_name("--stroage", {"--storage", "--repo"}), "--storage");
    EXPECT_EQ(nearest_name("backup", actions), std::nullopt) << "too far from everything";
    EXPECT_EQ(nearest_name("x", {}), std::nullopt);
    // A tie goes to the earlier candidate; max_distance is exclusive.
    EXPECT_EQ(nearest_name("ab", {"xb", "ay"}), "xb");
    EXPECT_EQ(nearest_name("abc", {"xyz"}, 3), std::nullopt);
    EXPECT_EQ(nearest_name("abc", {"xyz"}, 4), "xyz");
}

TEST(EscapeControl, KeepsTextAndEscapesWhatATerminalWouldActOn) {
    EXPECT_EQ(escape_control("refs/heads/main ünïcode 漢字"), "refs/heads/main ünïcode 漢字");
    EXPECT_EQ(escape_control("a\nb\rc\td"), "a\\nb\\rc\\td");
    EXPECT_EQ(escape_control("\x1b[31mred\x07"), "\\u001b[31mred\\u0007");
    EXPECT_EQ(escape_control("del\x7f c1\xc2\x9b"), "del\\u007f c1\\u009b");
    EXPECT_EQ(escape_control("bad \xff\xfe"), "bad \\xff\\xfe");
    // A literal backslash cannot pass for an escape.
    EXPECT_EQ(escape_control("a\\nb"), "a\\\\nb");
    EXPECT_EQ(escape_control(std::string_view("nul\0x", 5)), "nul\\u0000x");
}
