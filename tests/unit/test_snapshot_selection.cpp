#include "snapshotter/snapshot/selection.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

Clock::time_point at(const char* rfc3339) {
    auto t = parse_rfc3339(rfc3339);
    EXPECT_TRUE(t) << rfc3339;
    return t.value_or(Clock::time_point{});
}

const std::vector<std::string> k_ids{
    "20261124T000000.000Z-aaaaaa", // exactly at midnight
    "20261123T235959.999Z-bbbbbb",
    "20261125T120000.000Z-cccccc",
    "20261120T080000.000Z-dddddd",
};

} // namespace

TEST(AsOf, NewestAtOrBefore) {
    EXPECT_EQ(newest_at_or_before(k_ids, at("2026-11-24T00:00:00Z")), "20261124T000000.000Z-aaaaaa")
        << "a snapshot at the very time counts";
    EXPECT_EQ(newest_at_or_before(k_ids, at("2026-11-23T23:59:59Z")), "20261120T080000.000Z-dddddd")
        << "999 ms after the second is after it";
    EXPECT_EQ(newest_at_or_before(k_ids, at("2026-11-30T00:00:00Z")), "20261125T120000.000Z-cccccc");
    EXPECT_EQ(newest_at_or_before(k_ids, at("2026-11-01T00:00:00Z")), std::nullopt);
    EXPECT_EQ(newest_at_or_before({"not-an-id"}, at("2030-01-01T00:00:00Z")), std::nullopt);
    EXPECT_EQ(newest_at_or_before({}, at("2030-01-01T00:00:00Z")), std::nullopt);
}

TEST(Prefix, UniquePrefixWholeIdAmbiguousAndMissing) {
    EXPECT_EQ(resolve_prefix(k_ids, "20261125", "org/app"), "20261125T120000.000Z-cccccc");
    EXPECT_EQ(resolve_prefix(k_ids, "20261124T000000.000Z-aaaaaa", "org/app"), "20261124T000000.000Z-aaaaaa");
    auto ambiguous = resolve_prefix(k_ids, "202611", "org/app");
    ASSERT_FALSE(ambiguous);
    EXPECT_EQ(ambiguous.error().kind, ErrorKind::NotFound);
    EXPECT_NE(ambiguous.error().message.find("\"202611\" is ambiguous: 4 snapshots"), std::string::npos)
        << ambiguous.error().message;
    auto missing = resolve_prefix(k_ids, "2025", "org/app");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "org/app: no snapshot id starts with \"2025\"");
}

TEST(UnknownRepository, SuggestsTheNearestName) {
    EXPECT_EQ(unknown_repository("org/ap", {"org/app", "org/lib"}).message,
              "unknown repository \"org/ap\" (did you mean \"org/app\"?)");
    EXPECT_EQ(unknown_repository("team/website", {"org/app"}).message, "unknown repository \"team/website\"");
    EXPECT_EQ(unknown_repository("x", {"org/app"}).kind, ErrorKind::NotFound);
}

TEST(AsOf, OldestNamesTheEarliestSnapshot) {
    EXPECT_EQ(oldest_of(k_ids), "20261120T080000.000Z-dddddd");
    EXPECT_EQ(oldest_of({"not-an-id", "20261124T000000.000Z-aaaaaa"}), "20261124T000000.000Z-aaaaaa");
    EXPECT_EQ(oldest_of({"not-an-id"}), std::nullopt);
    EXPECT_EQ(oldest_of({}), std::nullopt);
}

TEST(AsOf, TimesWithAnOffsetCompareAsUtc) {
    // 01:00+02:00 is 23:00Z the day before: the midnight snapshot is after it.
    auto t = parse_iso8601("2026-11-24T01:00:00+02:00");
    ASSERT_TRUE(t);
    EXPECT_EQ(newest_at_or_before(k_ids, *t), "20261120T080000.000Z-dddddd");
    auto later = parse_iso8601("2026-11-24T02:00:00+02:00");
    ASSERT_TRUE(later);
    EXPECT_EQ(newest_at_or_before(k_ids, *later), "20261124T000000.000Z-aaaaaa");
}
