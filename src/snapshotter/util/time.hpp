// UTC time stamps and the sortable snapshot identifiers built from them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter {

using Clock = std::chrono::system_clock;

// RFC 3339 UTC with seconds, e.g. "2026-11-28T07:35:45Z".
std::string format_rfc3339(Clock::time_point tp);

// An ISO 8601 date and time as forge APIs write it: `YYYY-MM-DD`, `T` or a space,
// `HH:MM:SS`, an optional fraction (ignored), then `Z` or `+HH:MM`/`-HH:MM`;
// nullopt for anything else.
std::optional<Clock::time_point> parse_iso8601(std::string_view text);

// Parse the form format_rfc3339 writes; nullopt for anything else.
std::optional<Clock::time_point> parse_rfc3339(std::string_view text);

// The time snapshots are stamped with and retention is computed from: the
// system clock, unless the test hook SNAPSHOTTER_TEST_NOW holds an RFC 3339
// UTC time ("2026-01-31T23:59:59Z"), which is then returned as is. The hook
// lets tests generate histories over simulated dates; it is read here only.
// A malformed value is ignored with a warning. Never use it for anything the
// outside world checks against real time (S3 signatures, Object Lock dates).
Clock::time_point current_time();

// A new snapshot id: UTC time to the millisecond plus a random suffix, so that
// ids sort by creation time, e.g. "20261128T073545.123Z-9f3a1c".
std::string new_snapshot_id(Clock::time_point now = current_time());

// The creation time a snapshot id encodes (to the millisecond), or nullopt
// when `id` is not a snapshot id.
std::optional<Clock::time_point> snapshot_id_time(std::string_view id);

// True when `id` has the shape new_snapshot_id() produces.
bool is_snapshot_id(std::string_view id);

// A calendar duration such as "1y6m" or "2w3d12h": years, months, weeks, days
// and hours, each at most once and in that order.
struct CalendarSpan {
    int years = 0;
    int months = 0;
    int weeks = 0;
    int days = 0;
    int hours = 0;
    bool operator==(const CalendarSpan&) const = default;
};

// Parse `text` in the grammar `span = term+`, `term = digits unit`, units
// y (years), m (months), w (weeks), d (days), h (hours) in that order, each
// at most once, 1-6 digits each, not all zero; nullopt for anything else.
std::optional<CalendarSpan> parse_calendar_span(std::string_view text);

// `tp` moved back by `span` in UTC: years and months on the calendar (a day
// the target month lacks overflows into the next, as Go's AddDate does, so
// Mar 31 - 1m is Mar 3 or Mar 2), then weeks as 7 days, days, hours.
Clock::time_point subtract_span(Clock::time_point tp, const CalendarSpan& span);

// Milliseconds elapsed since `start` on the steady clock.
long long elapsed_ms(std::chrono::steady_clock::time_point start);

} // namespace snapshotter
