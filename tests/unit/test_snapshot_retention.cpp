// The retention policy over generated histories of hundreds to thousands of
// snapshots, checked against an independent oracle that buckets times with
// strftime in UTC (%Y-%m-%dT%H, %Y-%m-%d, %G-W%V, %Y-%m, %Y).
#include "snapshotter/snapshot/retention.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <random>
#include <set>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace std::chrono_literals;

namespace {

Clock::time_point at(const char* rfc3339) {
    return *parse_rfc3339(rfc3339);
}

std::string id_at(Clock::time_point tp, int suffix = 0) {
    auto id = new_snapshot_id(tp);
    return id.substr(0, 21) + fmt::format("{:06x}", suffix);
}

// `count` snapshots from `start`, `step` apart with up to `jitter` added.
std::vector<std::string> history(Clock::time_point start, int count, std::chrono::minutes step,
                                 std::chrono::minutes jitter, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<long long> ms(0, std::chrono::milliseconds(jitter).count());
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i)
        ids.push_back(id_at(start + step * i + std::chrono::milliseconds{ms(rng)}, i));
    return ids;
}

std::string bucket(const std::string& id, const char* format) {
    auto t = Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(*snapshot_id_time(id)));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// The oracle for one periodic rule: newest of each of the `n` newest buckets.
std::set<std::string> oracle(std::vector<std::string> ids, const char* format, int n) {
    std::sort(ids.rbegin(), ids.rend());
    std::set<std::string> kept, seen;
    for (const auto& id : ids) {
        if (static_cast<int>(seen.size()) == n)
            break;
        if (seen.insert(bucket(id, format)).second)
            kept.insert(id);
    }
    return kept;
}

std::set<std::string> ids_of(const KeptSet& kept) {
    std::set<std::string> out;
    for (const auto& [id, reasons] : kept)
        out.insert(id);
    return out;
}

std::set<std::string> with_reason(const KeptSet& kept, const std::string& reason) {
    std::set<std::string> out;
    for (const auto& [id, reasons] : kept)
        if (std::find(reasons.begin(), reasons.end(), reason) != reasons.end())
            out.insert(id);
    return out;
}

std::string newest(const std::vector<std::string>& ids) {
    return *std::max_element(ids.begin(), ids.end());
}

struct Rule {
    const char* reason;
    const char* format;
    int job::Retention::*field;
};

const Rule k_rules[] = {
    {"hourly", "%Y-%m-%dT%H", &job::Retention::keep_hourly},
    {"daily", "%Y-%m-%d", &job::Retention::keep_daily},
    {"weekly", "%G-W%V", &job::Retention::keep_weekly},
    {"monthly", "%Y-%m", &job::Retention::keep_monthly},
    {"yearly", "%Y", &job::Retention::keep_yearly},
};

} // namespace

TEST(PruneRetention, EachPeriodicRuleAloneMatchesTheOracle) {
    test::NonUtcZone zone; // buckets are UTC whatever the local zone
    // About 700 snapshots every 7h +- 3h over seven months, across a year end.
    auto ids = history(at("2026-09-03T05:00:00Z"), 700, 420min, 180min, 7);
    for (const auto& rule : k_rules) {
        for (int n : {1, 3, 10, 40, 5000}) {
            job::Retention policy;
            policy.*rule.field = n;
            auto kept = apply_retention(ids, policy);
            auto expected = oracle(ids, rule.format, n);
            EXPECT_EQ(with_reason(kept, rule.reason), expected) << rule.reason << " " << n;
            expected.insert(newest(ids));
            EXPECT_EQ(ids_of(kept), expected) << rule.reason << " " << n;
        }
    }
}

TEST(PruneRetention, KeepLastKeepsTheNewestN) {
    auto ids = history(at("2026-01-01T00:00:00Z"), 300, 60min, 50min, 3);
    job::Retention policy;
    policy.keep_last = 25;
    auto kept = apply_retention(ids, policy);
    std::sort(ids.rbegin(), ids.rend());
    EXPECT_EQ(ids_of(kept), std::set<std::string>(ids.begin(), ids.begin() + 25));
    EXPECT_EQ(kept.at(ids[0]), (std::vector<std::string>{"newest", "last"}));
    EXPECT_EQ(kept.at(ids[1]), (std::vector<std::string>{"last"}));
}

TEST(PruneRetention, RulesCombineWithOr) {
    auto ids = history(at("2025-06-01T00:00:00Z"), 900, 300min, 200min, 11);
    job::Retention all;
    all.keep_last = 5;
    all.keep_hourly = 12;
    all.keep_daily = 14;
    all.keep_weekly = 8;
    all.keep_monthly = 6;
    all.keep_yearly = 3;
    all.keep_within = parse_calendar_span("3d");
    std::set<std::string> expected;
    for (int job::Retention::*field :
         {&job::Retention::keep_last, &job::Retention::keep_hourly, &job::Retention::keep_daily,
          &job::Retention::keep_weekly, &job::Retention::keep_monthly, &job::Retention::keep_yearly}) {
        job::Retention one;
        one.*field = all.*field;
        auto part = ids_of(apply_retention(ids, one));
        expected.insert(part.begin(), part.end());
    }
    job::Retention within;
    within.keep_within = all.keep_within;
    auto part = ids_of(apply_retention(ids, within));
    expected.insert(part.begin(), part.end());
    auto kept = apply_retention(ids, all);
    EXPECT_EQ(ids_of(kept), expected);
    EXPECT_LT(kept.size(), ids.size());
}

TEST(PruneRetention, BucketsSplitExactlyAtUtcBoundaries) {
    // Thursday 2026-12-31 and Friday 2027-01-01 share ISO week 2026-W53 but
    // not a day, month or year; Sunday 2027-01-03 23:59:59.999 and Monday
    // 2027-01-04 00:00 are in different weeks.
    std::vector<std::string> ids = {
        id_at(at("2026-12-31T23:59:59Z") + 999ms), id_at(at("2027-01-01T00:00:00Z")),
        id_at(at("2027-01-03T23:59:59Z") + 999ms), id_at(at("2027-01-04T00:00:00Z"))};
    auto kept_by = [&](int job::Retention::*field) {
        job::Retention p;
        p.*field = 10;
        return apply_retention(ids, p).size();
    };
    EXPECT_EQ(kept_by(&job::Retention::keep_daily), 4u);
    EXPECT_EQ(kept_by(&job::Retention::keep_weekly), 2u); // W53 (newest: Jan 3) and W01
    EXPECT_EQ(kept_by(&job::Retention::keep_monthly), 2u);
    EXPECT_EQ(kept_by(&job::Retention::keep_yearly), 2u);
    EXPECT_EQ(kept_by(&job::Retention::keep_hourly), 4u);
    job::Retention weekly;
    weekly.keep_weekly = 10;
    EXPECT_EQ(ids_of(apply_retention(ids, weekly)), (std::set<std::string>{ids[2], ids[3]}));
}

TEST(PruneRetention, KeepWithinCountsBackFromTheNewestSnapshot) {
    auto ids = history(at("2026-01-01T00:00:00Z"), 400, 180min, 0min, 5); // every 3h, 50 days
    job::Retention policy;
    policy.keep_within = parse_calendar_span("2w");
    auto kept = apply_retention(ids, policy);
    auto from = *snapshot_id_time(newest(ids)) - std::chrono::days{14};
    std::set<std::string> expected;
    for (const auto& id : ids)
        if (*snapshot_id_time(id) > from) // strictly newer, as restic
            expected.insert(id);
    EXPECT_EQ(ids_of(kept), expected);
    EXPECT_EQ(expected.size(), 14u * 8u); // the one exactly 14 days older is not kept
}

TEST(PruneRetention, PinnedAndNewestAreAlwaysKept) {
    auto ids = history(at("2026-03-01T00:00:00Z"), 200, 720min, 0min, 9);
    job::Retention policy;
    policy.keep_monthly = 1;
    policy.pinned = {ids[0], ids[57], "20200101T000000.000Z-000000"};
    auto kept = apply_retention(ids, policy);
    EXPECT_EQ(kept.at(ids[0]), std::vector<std::string>{"pinned"});
    EXPECT_EQ(kept.at(ids[57]), std::vector<std::string>{"pinned"});
    EXPECT_EQ(kept.at(newest(ids)), (std::vector<std::string>{"newest", "monthly"}));
    EXPECT_FALSE(kept.contains("20200101T000000.000Z-000000")); // not a snapshot of this repository
    EXPECT_EQ(kept.size(), 3u);
}

TEST(PruneRetention, TiesAtTheSameMillisecondKeepOnePerBucket) {
    auto t = at("2026-05-05T10:00:00Z");
    std::vector<std::string> ids = {id_at(t, 1), id_at(t, 2), id_at(t, 3), id_at(t - 24h, 1)};
    job::Retention policy;
    policy.keep_daily = 5;
    EXPECT_EQ(ids_of(apply_retention(ids, policy)), (std::set<std::string>{ids[2], ids[3]}));
}

TEST(PruneRetention, NoSnapshotsKeepsNothingAndIgnoresForeignNames) {
    job::Retention policy;
    policy.keep_last = 3;
    EXPECT_TRUE(apply_retention({}, policy).empty());
    EXPECT_TRUE(apply_retention({"latest", "junk"}, policy).empty());
}
