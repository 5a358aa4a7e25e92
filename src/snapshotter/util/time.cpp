#include "snapshotter/util/time.hpp"

#include "snapshotter/util/fs.hpp"

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter {

namespace {

// The UTC calendar time of `tp`, whole seconds (rounded down). fmt 9 formats a
// system_clock time_point in local time, so never pass one to fmt directly.
std::tm utc_tm(Clock::time_point tp) {
    return fmt::gmtime(Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(tp)));
}

} // namespace

std::string format_rfc3339(Clock::time_point tp) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", utc_tm(tp));
}

std::optional<Clock::time_point> parse_iso8601(std::string_view text) {
    if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != ' ') ||
        text[13] != ':' || text[16] != ':')
        return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len) -> int {
        int v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(text[i])))
                return -1;
            v = v * 10 + (text[i] - '0');
        }
        return v;
    };
    std::tm tm{};
    tm.tm_year = num(0, 4) - 1900;
    tm.tm_mon = num(5, 2) - 1;
    tm.tm_mday = num(8, 2);
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
    tm.tm_sec = num(17, 2);
    if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60)
        return std::nullopt;
    std::size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') { // fraction: ignored
        ++pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])))
            ++pos;
    }
    long offset_s = 0;
    std::string_view zone = text.substr(pos);
    if (zone == "Z" || zone == "z") {
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
        int h = num(pos + 1, 2), m = num(pos + 4, 2);
        if (h < 0 || m < 0)
            return std::nullopt;
        offset_s = (zone[0] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
    } else {
        return std::nullopt;
    }
    return Clock::from_time_t(timegm(&tm) - offset_s);
}

std::optional<Clock::time_point> parse_rfc3339(std::string_view text) {
    if (text.size() != 20 || text[10] != 'T' || text[19] != 'Z')
        return std::nullopt;
    return parse_iso8601(text);
}

Clock::time_point current_time() {
    const char* hook = std::getenv("SNAPSHOTTER_TEST_NOW");
    if (hook == nullptr || *hook == '\0')
        return Clock::now();
    if (auto simulated = parse_rfc3339(hook))
        return *simulated;
    spdlog::warn("SNAPSHOTTER_TEST_NOW=\"{}\" is not an RFC 3339 UTC time; using the system clock", hook);
    return Clock::now();
}

std::optional<Clock::time_point> snapshot_id_time(std::string_view id) {
    if (!is_snapshot_id(id))
        return std::nullopt;
    // 20261128T073545.123Z -> 2026-11-28T07:35:45Z plus 123 ms.
    auto text = fmt::format("{}-{}-{}T{}:{}:{}Z", id.substr(0, 4), id.substr(4, 2), id.substr(6, 2),
                            id.substr(9, 2), id.substr(11, 2), id.substr(13, 2));
    auto seconds = parse_rfc3339(text);
    if (!seconds)
        return std::nullopt;
    return *seconds + std::chrono::milliseconds{std::stoi(std::string(id.substr(16, 3)))};
}

std::string new_snapshot_id(Clock::time_point now) {
    auto ms = std::chrono::floor<std::chrono::milliseconds>(now);
    auto millis = (ms - std::chrono::floor<std::chrono::seconds>(ms)).count();
    return fmt::format("{:%Y%m%dT%H%M%S}.{:03}Z-{}", utc_tm(now), millis, random_hex(3));
}

bool is_snapshot_id(std::string_view id) {
    // 20261128T073545.123Z-9f3a1c
    if (id.size() != 27)
        return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        bool ok = false;
        if (i == 8)
            ok = c == 'T';
        else if (i == 15)
            ok = c == '.';
        else if (i == 19)
            ok = c == 'Z';
        else if (i == 20)
            ok = c == '-';
        else if (i > 20)
            ok = std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
        else
            ok = std::isdigit(static_cast<unsigned char>(c));
        if (!ok)
            return false;
    }
    return true;
}

std::optional<CalendarSpan> parse_calendar_span(std::string_view text) {
    CalendarSpan span;
    constexpr std::string_view units = "ymwdh";
    std::size_t next_unit = 0; // units must come in order, each once
    std::size_t i = 0;
    bool any = false, nonzero = false;
    while (i < text.size()) {
        std::size_t start = i;
        int value = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && i - start < 6)
            value = value * 10 + (text[i++] - '0');
        if (i == start || i == text.size())
            return std::nullopt;
        auto unit = units.find(text[i++], next_unit);
        if (unit == std::string_view::npos)
            return std::nullopt;
        next_unit = unit + 1;
        int* fields[] = {&span.years, &span.months, &span.weeks, &span.days, &span.hours};
        *fields[unit] = value;
        any = true;
        nonzero = nonzero || value > 0;
    }
    if (!any || !nonzero)
        return std::nullopt;
    return span;
}

Clock::time_point subtract_span(Clock::time_point tp, const CalendarSpan& span) {
    using namespace std::chrono;
    auto day = floor<days>(tp);
    auto time_of_day = tp - day;
    year_month_day ymd{day};
    // Whole months back, then the day of month added to the month's first
    // day, so an overflowing day rolls into the next month (Go's AddDate).
    auto first = year_month_day{ymd.year(), ymd.month(), std::chrono::day{1}} - years{span.years} -
                 months{span.months};
    auto moved = sys_days{first} + days{static_cast<unsigned>(ymd.day()) - 1};
    return moved + time_of_day - days{7 * span.weeks + span.days} - hours{span.hours};
}

long long elapsed_ms(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
        .count();
}

} // namespace snapshotter
