#include "snapshotter/util/time.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <gtest/gtest.h>
#include <thread>
#include <vector>

using namespace snapshotter;
using namespace std::chrono_literals;
using test::NonUtcZone;

namespace {

// 2026-11-28T07:35:45.123Z
Clock::time_point sample_time() {
    return Clock::from_time_t(1795851345) + 123ms;
}

} // namespace

TEST(Rfc3339, FormatsUtcWithSeconds) {
    EXPECT_EQ(format_rfc3339(Clock::from_time_t(0)), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339(sample_time()), "2026-11-28T07:35:45Z");
}

TEST(Rfc3339, FormatsUtcWhateverTheLocalZone) {
    NonUtcZone zone;
    EXPECT_EQ(format_rfc3339(Clock::from_time_t(0)), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339(sample_time()), "2026-11-28T07:35:45Z");
}

TEST(Rfc3339, RoundTrip) {
    for (std::time_t t : {std::time_t{0}, std::time_t{951782400} /* 2000-02-29 */, std::time_t{1795851345},
                          std::time_t{4102444799} /* 2099-12-31T23:59:59 */}) {
        auto tp = Clock::from_time_t(t);
        auto text = format_rfc3339(tp);
        auto parsed = parse_rfc3339(text);
        ASSERT_TRUE(parsed) << text;
        EXPECT_EQ(*parsed, tp) << text;
    }
    NonUtcZone zone;
    auto parsed = parse_rfc3339("2026-11-28T07:35:45Z");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(Clock::to_time_t(*parsed), 1795851345);
    EXPECT_EQ(format_rfc3339(*parsed), "2026-11-28T07:35:45Z");
}

TEST(Rfc3339, RejectsOtherForms) {
    for (const char* bad :
         {"", "2026-11-28", "2026-11-28T07:35:45", "2026-11-28 07:35:45Z", "2026-11-28T07:35:45+00:00",
          "2026-11-28T07:35:45.123Z", "2026-13-28T07:35:45Z", "2026-00-28T07:35:45Z", "2026-11-00T07:35:45Z",
          "2026-11-28T24:00:00Z", "2026-11-28T07:60:00Z", "20x6-11-28T07:35:45Z", "2026-11-28t07:35:45z"})
        EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(SnapshotId, ShapeAndTime) {
    auto id = new_snapshot_id(sample_time());
    EXPECT_EQ(id.size(), 27u);
    EXPECT_TRUE(id.starts_with("20261128T073545.123Z-")) << id;
    EXPECT_TRUE(is_snapshot_id(id)) << id;
}

TEST(SnapshotId, UsesUtcWhateverTheLocalZone) {
    NonUtcZone zone;
    auto id = new_snapshot_id(sample_time());
    EXPECT_TRUE(id.starts_with("20261128T073545.123Z-")) << id;
}

TEST(SnapshotId, RandomSuffixMakesIdsUnique) {
    auto a = new_snapshot_id(sample_time());
    auto b = new_snapshot_id(sample_time());
    EXPECT_NE(a, b);
    EXPECT_EQ(a.substr(0, 21), b.substr(0, 21));
}

TEST(SnapshotId, SortsByCreationTime) {
    std::vector<Clock::time_point> times = {
        Clock::from_time_t(1795851345) + 5ms, Clock::from_time_t(1795851345) + 999ms,
        Clock::from_time_t(1795851346),       Clock::from_time_t(1795851345) + 10ms,
        Clock::from_time_t(1700000000),       Clock::from_time_t(1900000000) + 1ms};
    std::vector<std::pair<std::string, Clock::time_point>> ids;
    for (auto t : times)
        ids.emplace_back(new_snapshot_id(t), t);
    std::sort(ids.begin(), ids.end());
    for (std::size_t i = 1; i < ids.size(); ++i)
        EXPECT_LT(ids[i - 1].second, ids[i].second) << ids[i - 1].first << " vs " << ids[i].first;
}

TEST(SnapshotId, DefaultIsNow) {
    auto before = format_rfc3339(Clock::now());
    auto id = new_snapshot_id();
    EXPECT_TRUE(is_snapshot_id(id)) << id;
    // Same date as now (allowing a midnight roll-over is not worth the noise).
    EXPECT_EQ(id.substr(0, 4), before.substr(0, 4));
}

TEST(SnapshotId, Recognition) {
    EXPECT_TRUE(is_snapshot_id("20261128T073545.123Z-9f3a1c"));
    EXPECT_TRUE(is_snapshot_id("00000000T000000.000Z-000000"));
    for (const char* bad :
         {"", "latest", "all", "20261128T073545.123Z-9f3a1", "20261128T073545.123Z-9f3a1cc",
          "20261128T073545.123Z-9F3A1C", "20261128T073545.123Z-9f3a1g", "20261128t073545.123Z-9f3a1c",
          "20261128T073545,123Z-9f3a1c", "20261128T073545.123z-9f3a1c", "20261128T073545.123Z_9f3a1c",
          "2026112xT073545.123Z-9f3a1c", "../1128T073545.123Z-9f3a1c"})
        EXPECT_FALSE(is_snapshot_id(bad)) << bad;
}

TEST(ElapsedMs, Measures) {
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(20ms);
    auto ms = elapsed_ms(start);
    EXPECT_GE(ms, 20);
    EXPECT_LT(ms, 5000);
}

TEST(CalendarSpan, ParsesTheDocumentedGrammar) {
    EXPECT_EQ(parse_calendar_span("30d"), (CalendarSpan{0, 0, 0, 30, 0}));
    EXPECT_EQ(parse_calendar_span("12h"), (CalendarSpan{0, 0, 0, 0, 12}));
    EXPECT_EQ(parse_calendar_span("2w"), (CalendarSpan{0, 0, 2, 0, 0}));
    EXPECT_EQ(parse_calendar_span("1y6m"), (CalendarSpan{1, 6, 0, 0, 0}));
    EXPECT_EQ(parse_calendar_span("1y2m3w4d5h"), (CalendarSpan{1, 2, 3, 4, 5}));
    EXPECT_EQ(parse_calendar_span("0y7d"), (CalendarSpan{0, 0, 0, 7, 0}));
    for (const char* bad :
         {"", "d", "30", "30x", "6m1y", "1d1d", "-1d", "1.5d", " 1d", "1d ", "0d", "0y0h", "1234567d", "1D"})
        EXPECT_FALSE(parse_calendar_span(bad)) << bad;
}

TEST(CalendarSpan, SubtractsOnTheUtcCalendarLikeGoAddDate) {
    NonUtcZone zone;
    auto at = [](const char* t) { return *parse_rfc3339(t); };
    EXPECT_EQ(subtract_span(at("2026-03-31T10:00:00Z"), *parse_calendar_span("1m")),
              at("2026-03-03T10:00:00Z"));
    EXPECT_EQ(subtract_span(at("2024-03-31T10:00:00Z"), *parse_calendar_span("1m")),
              at("2024-03-02T10:00:00Z"));
    EXPECT_EQ(subtract_span(at("2026-01-15T00:30:00Z"), *parse_calendar_span("1y6m")),
              at("2024-07-15T00:30:00Z"));
    EXPECT_EQ(subtract_span(at("2026-01-01T05:00:00Z"), *parse_calendar_span("1w1d6h")),
              at("2025-12-23T23:00:00Z"));
}

TEST(TestClock, SnapshotterTestNowOverridesTheClock) {
    ::setenv("SNAPSHOTTER_TEST_NOW", "2025-02-03T04:05:06Z", 1);
    EXPECT_EQ(current_time(), *parse_rfc3339("2025-02-03T04:05:06Z"));
    EXPECT_TRUE(new_snapshot_id().starts_with("20250203T040506.000Z-"));
    ::setenv("SNAPSHOTTER_TEST_NOW", "yesterday", 1);
    EXPECT_LT(std::chrono::abs(current_time() - Clock::now()), std::chrono::seconds{5});
    ::unsetenv("SNAPSHOTTER_TEST_NOW");
    EXPECT_LT(std::chrono::abs(current_time() - Clock::now()), std::chrono::seconds{5});
}

TEST(TestClock, SnapshotIdTimeInvertsNewSnapshotId) {
    auto t = sample_time();
    EXPECT_EQ(snapshot_id_time(new_snapshot_id(t)), std::chrono::floor<std::chrono::milliseconds>(t));
    EXPECT_FALSE(snapshot_id_time("20261128T073545.123Z"));
}

TEST(Iso8601, AsForgesWriteIt) {
    auto base = parse_rfc3339("2011-01-26T19:06:43Z");
    ASSERT_TRUE(base);
    EXPECT_EQ(parse_iso8601("2011-01-26T19:06:43Z"), base);
    EXPECT_EQ(parse_iso8601("2011-01-26T19:06:43.000Z"), base);
    EXPECT_EQ(parse_iso8601("2011-01-26T19:06:43.542346+00:00"), base);
    EXPECT_EQ(parse_iso8601("2011-01-26T21:06:43+02:00"), base);
    EXPECT_EQ(parse_iso8601("2011-01-26T17:06:43-02:00"), base);
    EXPECT_FALSE(parse_iso8601("2011-01-26"));
    EXPECT_FALSE(parse_iso8601("2011-01-26T19:06:43"));
    EXPECT_FALSE(parse_iso8601("2011-13-26T19:06:43Z"));
    EXPECT_FALSE(parse_iso8601(""));
    // The strict form accepts only what format_rfc3339 writes.
    EXPECT_FALSE(parse_rfc3339("2011-01-26T19:06:43.000Z"));
    EXPECT_FALSE(parse_rfc3339("2011-01-26 19:06:43Z"));
    EXPECT_FALSE(parse_rfc3339("2011-01-26T21:06:43+02:00"));
}
