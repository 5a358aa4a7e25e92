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

// Parse the form format_rfc3339 writes; nullopt for anything else.
std::optional<Clock::time_point> parse_rfc3339(std::string_view text);

// A new snapshot id: UTC time to the millisecond plus a random suffix, so that
// ids sort by creation time, e.g. "20261128T073545.123Z-9f3a1c".
std::string new_snapshot_id(Clock::time_point now = Clock::now());

// True when `id` has the shape new_snapshot_id() produces.
bool is_snapshot_id(std::string_view id);

// Milliseconds elapsed since `start` on the steady clock.
long long elapsed_ms(std::chrono::steady_clock::time_point start);

} // namespace snapshotter
