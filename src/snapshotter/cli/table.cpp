#include "snapshotter/cli/table.hpp"

#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <optional>

namespace snapshotter::cli {
namespace {

using nlohmann::json;

// "2026-11-28T07:35:45.123Z" -> "2026-11-28 07:35:45"; anything else as is.
std::string utc_time(const std::string& rfc3339) {
    if (rfc3339.size() >= 20 && rfc3339[10] == 'T' && rfc3339.back() == 'Z')
        return rfc3339.substr(0, 10) + " " + rfc3339.substr(11, 8);
    return rfc3339;
}

// The non-negative integer under `key`, or nullopt.
std::optional<std::uint64_t> count_in(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_number_integer() || it->get<long long>() < 0)
        return std::nullopt;
    return it->get<std::uint64_t>();
}

std::uint64_t count_of(const json& object, const char* key) {
    return count_in(object, key).value_or(0);
}

// "+2 ~1 !1 -3" from the ledger counts; "none" when nothing moved, "" for a
// first snapshot (no parent to compare with).
std::string refs_changed(const json& snapshot) {
    auto it = snapshot.find("changes");
    if (it == snapshot.end() || !it->is_object())
        return "";
    const std::array<std::pair<char, std::uint64_t>, 4> parts{{
        {'+', count_of(*it, "created")},
        {'~', count_of(*it, "fast_forward") + count_of(*it, "updated")},
        {'!', count_of(*it, "rewritten")},
        {'-', count_of(*it, "deleted")},
    }};
    std::string out;
    for (const auto& [sign, n] : parts)
        if (n > 0)
            out += fmt::format("{}{}{}", out.empty() ? "" : " ", sign, n);
    if (!out.empty())
        return out;
    return snapshot.value("parent", json(nullptr)).is_null() ? "" : "none";
}

std::string string_of(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string number_of(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_number() ? it->dump() : "";
}

const std::vector<std::string> k_list_header{"CREATED (UTC)", "SNAPSHOT", "KIND", "REFS",
                                             "CHANGED",       "SIZE",     "CHAIN"};
const std::vector<Align> k_list_align{Align::left, Align::left,  Align::left, Align::right,
                                      Align::left, Align::right, Align::right};

// One repository of the list result: a title line, its table, and its
// unreadable manifests.
std::string render_repository(const json& entry) {
    std::string name = printable(string_of(entry, "name"));
    const json snapshots = entry.value("snapshots", json::array());
    if (snapshots.empty())
        return fmt::format("{}: no snapshots\n", name);
    std::vector<std::vector<std::string>> rows;
    std::string problems;
    for (const auto& s : snapshots) {
        std::string id = string_of(s, "snapshot_id");
        if (s.contains("error")) {
            rows.push_back({"?", id, "unreadable", "", "", "", ""});
            problems += fmt::format("  {}: {}\n", printable(id), printable(string_of(s, "error")));
            continue;
        }
        auto bytes = count_in(s, "bytes");
        rows.push_back({utc_time(string_of(s, "created_at")), id, string_of(s, "kind"), number_of(s, "refs"),
                        refs_changed(s), bytes ? human_bytes(*bytes) : "", number_of(s, "chain")});
    }
    std::string out =
        fmt::format("{}: {} snapshot{}\n", name, snapshots.size(), snapshots.size() == 1 ? "" : "s");
    out += render_columns(k_list_header, rows, k_list_align);
    if (!problems.empty())
        out += "unreadable manifests:\n" + problems;
    return out;
}

} // namespace

std::string render_columns(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows,
                           const std::vector<Align>& align) {
    std::vector<std::vector<std::string>> cells;
    cells.reserve(rows.size() + 1);
    cells.push_back(header);
    cells.insert(cells.end(), rows.begin(), rows.end());
    std::vector<std::size_t> widths;
    for (auto& row : cells) {
        for (std::size_t c = 0; c < row.size(); ++c) {
            row[c] = printable(row[c]);
            if (widths.size() <= c)
                widths.push_back(0);
            widths[c] = std::max(widths[c], display_width(row[c]));
        }
    }
    std::string out;
    for (const auto& row : cells) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            std::string padding(widths[c] - display_width(row[c]), ' ');
            bool right = c < align.size() && align[c] == Align::right;
            if (c > 0)
                line += "  ";
            line += right ? padding + row[c] : row[c] + padding;
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out += line + "\n";
    }
    return out;
}

std::string human_bytes(std::uint64_t bytes) {
    if (bytes < 1024)
        return fmt::format("{} B", bytes);
    constexpr const char* k_units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    while (value >= 1023.95 && unit + 1 < std::size(k_units)) { // never "1024.0 KiB"
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, k_units[unit]);
}

std::string render_list_table(const nlohmann::json& result) {
    const json repositories = result.value("repositories", json::array());
    if (repositories.empty())
        return "no snapshots\n";
    std::string out;
    for (const auto& entry : repositories) {
        if (!out.empty())
            out += "\n";
        out += render_repository(entry);
    }
    out +=
        "\nCHANGED: +created ~updated !rewritten (force-pushed) -deleted refs since the previous snapshot\n"
        "SIZE: bytes this snapshot added; CHAIN: bundles a restore replays\n";
    return out;
}

} // namespace snapshotter::cli
