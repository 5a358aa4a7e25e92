// parse_json_bounded(): nesting is counted outside strings, and a document
// deeper than the bound is refused before it is parsed.
#include "snapshotter/util/json.hpp"

#include <gtest/gtest.h>
#include <string>

using namespace snapshotter;

TEST(JsonDepth, CountsNestingOutsideStrings) {
    EXPECT_EQ(json_nesting_depth("1", 10), 0U);
    EXPECT_EQ(json_nesting_depth("{}", 10), 1U);
    EXPECT_EQ(json_nesting_depth(R"({"a": [[1], {"b": []}]})", 10), 4U);
    EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[{{{{"})", 10), 1U);
    EXPECT_EQ(json_nesting_depth(R"(["\"[[[", "\\", [[]]])", 10), 3U);
    // Stops counting past the limit.
    EXPECT_EQ(json_nesting_depth(std::string(1000, '['), 5), 6U);
}

TEST(JsonDepth, RefusesDeepDocumentsWithoutRecursing) {
    std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    auto parsed = parse_json_bounded(deep);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().kind, ErrorKind::Integrity);
    EXPECT_NE(parsed.error().message.find("nested deeper than 128 levels"), std::string::npos);
    std::string ok = std::string(128, '[') + std::string(128, ']');
    EXPECT_TRUE(parse_json_bounded(ok));
    EXPECT_FALSE(parse_json_bounded(std::string(129, '[') + std::string(129, ']')));
}

TEST(JsonDepth, ParsesAndReportsBadJson) {
    auto parsed = parse_json_bounded(R"({"a": [1, 2]})");
    ASSERT_TRUE(parsed);
    EXPECT_EQ((*parsed)["a"][1], 2);
    auto bad = parse_json_bounded("{\"a\": ");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::Integrity);
    EXPECT_NE(bad.error().message.find("not valid JSON"), std::string::npos);
    EXPECT_FALSE(parse_json_bounded("1e999999"));
}
