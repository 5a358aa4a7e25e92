#include "snapshotter/snapshot/retention.hpp"

#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <set>

namespace snapshotter::snapshot {
namespace {

using namespace std::chrono;

// The ISO 8601 week of `day` as year * 100 + week (weeks start on Monday;
// week 1 holds the year's first Thursday).
long long iso_week(sys_days day) {
    weekday wd{day};
    auto thursday = day - days{(wd.iso_encoding() - 1)} + days{3};
    year_month_day ymd{thursday};
    auto jan1 = sys_days{ymd.year() / January / 1};
    return static_cast<long long>(static_cast<int>(ymd.year())) * 100 + (thursday - jan1).count() / 7 + 1;
}

// The bucket `tp` falls in for each periodic rule, in the order hourly,
// daily, weekly, monthly, yearly.
std::array<long long, 5> buckets_of(Clock::time_point tp) {
    auto day = floor<days>(tp);
    year_month_day ymd{day};
    auto y = static_cast<long long>(static_cast<int>(ymd.year()));
    return {floor<hours>(tp).time_since_epoch().count(), day.time_since_epoch().count(), iso_week(day),
            y * 12 + static_cast<unsigned>(ymd.month()) - 1, y};
}

} // namespace

KeptSet apply_retention(const std::vector<std::string>& ids, const job::Retention& policy) {
    // Newest first; ids sort by time, and equal times by their random suffix.
    std::vector<std::pair<std::string, Clock::time_point>> snapshots;
    for (const auto& id : ids)
        if (auto t = snapshot_id_time(id))
            snapshots.emplace_back(id, *t);
    std::sort(snapshots.begin(), snapshots.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    KeptSet kept;
    if (snapshots.empty())
        return kept;

    const std::set<std::string> pinned(policy.pinned.begin(), policy.pinned.end());
    static constexpr std::array<const char*, 5> k_names = {"hourly", "daily", "weekly", "monthly", "yearly"};
    std::array<int, 5> left = {policy.keep_hourly, policy.keep_daily, policy.keep_weekly, policy.keep_monthly,
                               policy.keep_yearly};
    std::array<std::optional<long long>, 5> last_kept_bucket;
    const auto within_from = policy.keep_within
                                 ? std::optional(subtract_span(snapshots.front().second, *policy.keep_within))
                                 : std::nullopt;

    for (std::size_t nr = 0; nr < snapshots.size(); ++nr) {
        const auto& [id, time] = snapshots[nr];
        std::vector<std::string> reasons;
        if (nr == 0)
            reasons.emplace_back("newest");
        if (nr < static_cast<std::size_t>(policy.keep_last))
            reasons.emplace_back("last");
        auto buckets = buckets_of(time);
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            if (left[i] <= 0 || last_kept_bucket[i] == buckets[i])
                continue;
            last_kept_bucket[i] = buckets[i];
            --left[i];
            reasons.emplace_back(k_names[i]);
        }
        if (within_from && time > *within_from)
            reasons.emplace_back("within");
        if (pinned.contains(id))
            reasons.emplace_back("pinned");
        if (!reasons.empty())
            kept.emplace(id, std::move(reasons));
    }
    return kept;
}

} // namespace snapshotter::snapshot
