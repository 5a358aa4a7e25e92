#include "snapshotter/cli/table.hpp"

#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <fmt/ranges.h>
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

// Whether a snapshot of the list result's repository `entry` records Git LFS content.
bool has_lfs(const json& entry) {
    const json snapshots = entry.value("snapshots", json::array());
    return std::any_of(snapshots.begin(), snapshots.end(), [](const json& s) { return s.contains("lfs"); });
}

// The LFS column of one snapshot: the bytes of LFS content it needs, and how
// many objects it could not store.
std::string lfs_cell(const json& snapshot) {
    auto it = snapshot.find("lfs");
    if (it == snapshot.end() || !it->is_object())
        return "";
    auto bytes = count_in(*it, "bytes");
    auto missing = count_in(*it, "missing");
    std::string cell = bytes ? human_bytes(*bytes) : "";
    if (missing && *missing > 0)
        cell += fmt::format(" ({} missing)", *missing);
    return cell;
}

// One repository of the list result: a title line, its table, and its
// unreadable manifests.
std::string render_repository(const json& entry) {
    std::string name = printable(string_of(entry, "name"));
    const json snapshots = entry.value("snapshots", json::array());
    if (snapshots.empty())
        return fmt::format("{}: no snapshots\n", name);
    std::vector<std::vector<std::string>> rows;
    std::string problems;
    const bool lfs = has_lfs(entry);
    for (const auto& s : snapshots) {
        std::string id = string_of(s, "snapshot_id");
        if (s.contains("error")) {
            rows.push_back({"?", id, "unreadable", "", "", "", ""});
            if (lfs)
                rows.back().emplace_back();
            problems += fmt::format("  {}: {}\n", printable(id), printable(string_of(s, "error")));
            continue;
        }
        auto bytes = count_in(s, "bytes");
        rows.push_back({utc_time(string_of(s, "created_at")), id, string_of(s, "kind"), number_of(s, "refs"),
                        refs_changed(s), bytes ? human_bytes(*bytes) : "", number_of(s, "chain")});
        if (lfs)
            rows.back().push_back(lfs_cell(s));
    }
    std::string out =
        fmt::format("{}: {} snapshot{}\n", name, snapshots.size(), snapshots.size() == 1 ? "" : "s");
    if (lfs) {
        auto header = k_list_header;
        auto align = k_list_align;
        header.emplace_back("LFS");
        align.push_back(Align::right);
        out += render_columns(header, rows, align);
    } else {
        out += render_columns(k_list_header, rows, k_list_align);
    }
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
    if (std::any_of(repositories.begin(), repositories.end(), has_lfs))
        out += "LFS: bytes of Git LFS content the snapshot needs (stored once, shared by snapshots)\n";
    return out;
}

namespace {

// "850 ms", "12.3 s", "4m05s".
std::string duration_text(const json& ms) {
    if (!ms.is_number())
        return "";
    double v = ms.get<double>();
    if (v < 1000)
        return fmt::format("{:.0f} ms", v);
    if (v < 60'000)
        return fmt::format("{:.1f} s", v / 1000);
    auto s = static_cast<long long>(v / 1000);
    return fmt::format("{}m{:02}s", s / 60, s % 60);
}

std::string bytes_cell(const json& object, const char* key) {
    auto n = count_in(object, key);
    return n ? human_bytes(*n) : "";
}

// How a snapshot moved its refs, from the run's counts ("!2 -1"), or "".
std::string moved_cell(const json& entry) {
    std::string out;
    if (auto n = count_of(entry, "refs_rewritten"); n > 0)
        out += fmt::format("!{}", n);
    if (auto n = count_of(entry, "refs_deleted"); n > 0)
        out += fmt::format("{}-{}", out.empty() ? "" : " ", n);
    return out;
}

int status_rank(const std::string& status) {
    return status == "failed" ? 0 : status == "skipped" ? 1 : 2;
}

} // namespace

std::string render_snapshot_table(const nlohmann::json& result) {
    // Failures first, then by status; within a status, in the result's order (a stable sort,
    // written as a sort on (rank, position): std::stable_sort trips clang-tidy on libstdc++ 12).
    const auto all = result.value("repositories", json::array());
    std::vector<std::pair<int, std::size_t>> order;
    order.reserve(all.size());
    for (std::size_t i = 0; i < all.size(); ++i)
        order.emplace_back(status_rank(string_of(all[i], "status")), i);
    std::sort(order.begin(), order.end());
    std::vector<json> entries;
    entries.reserve(order.size());
    for (const auto& [rank, i] : order)
        entries.push_back(all[i]);
    const bool dry = result.value("dry_run", false);
    std::vector<std::vector<std::string>> rows;
    std::string failures;
    std::size_t rerun_skips = 0;
    for (const auto& e : entries) {
        std::string status = string_of(e, "status");
        std::string kind = dry ? string_of(e, "plan") : string_of(e, "kind");
        std::string size;
        if (auto b = e.find("bundle"); b != e.end() && b->is_object())
            size = bytes_cell(*b, "size");
        std::string note = string_of(e, "snapshot_id");
        if (status == "failed") {
            note = fmt::format("{}: {}", string_of(e, "error"), string_of(e, "message"));
            failures += fmt::format("  {}: {}\n", printable(string_of(e, "name")), printable(note));
            note = string_of(e, "error");
        } else if (status == "skipped") {
            note = string_of(e, "reason");
            rerun_skips += e.contains("snapshot_id") ? 1 : 0;
        }
        rows.push_back({string_of(e, "name"), status, kind, number_of(e, "refs"), moved_cell(e), size,
                        duration_text(e.value("duration_ms", json(nullptr))), note});
    }
    std::string out = render_columns(
        {"REPOSITORY", "STATUS", "KIND", "REFS", "MOVED", "SIZE", "TIME", dry ? "" : "SNAPSHOT / NOTE"}, rows,
        {Align::left, Align::left, Align::left, Align::right, Align::left, Align::right, Align::right,
         Align::left});
    const json summary = result.value("summary", json::object());
    out += fmt::format("\n{}{} repositories: {} ok, {} unchanged, {} failed, {} skipped; {} written in {}\n",
                       dry ? "dry run, " : "", count_of(summary, "total"), count_of(summary, "ok"),
                       count_of(summary, "unchanged"), count_of(summary, "failed"),
                       count_of(summary, "skipped"), human_bytes(count_of(summary, "bytes")),
                       duration_text(summary.value("duration_ms", json(nullptr))));
    if (auto n = count_of(summary, "skipped_already_committed"); n > 0)
        rerun_skips = static_cast<std::size_t>(n);
    if (rerun_skips > 0)
        out += fmt::format(
            "{} repositor{} skipped: job {} already snapshotted {} (a rerun resumes an interrupted "
            "job; leave job_id out to take a new snapshot)\n",
            rerun_skips, rerun_skips == 1 ? "y" : "ies", printable(string_of(result, "job_id")),
            rerun_skips == 1 ? "it" : "them");
    if (!failures.empty())
        out += "failures:\n" + failures;
    if (auto report = string_of(result, "report"); !report.empty())
        out += fmt::format("report: {}\n", printable(report));
    return out;
}

std::string render_restore_table(const nlohmann::json& result) {
    std::vector<json> all;
    if (auto it = result.find("restored"); it != result.end() && it->is_array())
        all.assign(it->begin(), it->end());
    else
        all.push_back(result);
    // Failures first, as the snapshot table shows them; otherwise in the result's order.
    std::vector<json> entries;
    entries.reserve(all.size());
    for (bool failed : {true, false})
        for (const auto& e : all)
            if ((string_of(e, "status") == "failed") == failed)
                entries.push_back(e);
    std::vector<std::vector<std::string>> rows;
    std::string failures;
    for (const auto& e : entries) {
        std::string where = string_of(e, "target");
        if (auto push = e.find("pushed_to"); push != e.end() && push->is_string())
            where = push->get<std::string>();
        const std::string status = e.contains("status") ? string_of(e, "status") : "ok";
        std::string id = string_of(e, "snapshot_id");
        rows.push_back({string_of(e, "repository"), id.empty() ? "-" : id, number_of(e, "refs"),
                        number_of(e, "preserved"), status, where});
        if (status == "failed")
            failures += fmt::format("  {}: {}: {}\n", printable(string_of(e, "repository")),
                                    printable(string_of(e, "error")), printable(string_of(e, "message")));
    }
    std::string out =
        render_columns({"REPOSITORY", "SNAPSHOT", "REFS", "PRESERVED", "STATUS", "RESTORED TO"}, rows,
                       {Align::left, Align::left, Align::right, Align::right, Align::left});
    if (auto summary = result.find("summary"); summary != result.end() && summary->is_object()) {
        out += fmt::format("\n{} repositories: {} restored, {} failed", count_of(*summary, "total"),
                           count_of(*summary, "ok"), count_of(*summary, "failed"));
        if (auto as_of = string_of(result, "as_of"); !as_of.empty())
            out += fmt::format(" (snapshots as of {})", printable(as_of));
        out += "\n";
    }
    if (auto head = string_of(result, "head"); !head.empty() && result.contains("pushed_to"))
        out += fmt::format(
            "a push cannot set the remote's HEAD: make {} its default branch (remote HEAD: {})\n",
            printable(head),
            printable(string_of(result, "remote_head").empty() ? std::string("unknown")
                                                               : string_of(result, "remote_head")));
    if (!failures.empty())
        out += "failures:\n" + failures;
    if (result.value("dry_run", false))
        out += "dry run: nothing was written\n";
    return out;
}

std::string render_verify_table(const nlohmann::json& result) {
    std::vector<std::vector<std::string>> rows;
    std::string problems;
    for (const auto& s : result.value("snapshots", json::array())) {
        bool ok = s.value("ok", false);
        std::string id =
            s.value("snapshot_id", json(nullptr)).is_string() ? string_of(s, "snapshot_id") : "-";
        rows.push_back(
            {string_of(s, "repository"), id, ok ? "ok" : "FAILED", s.value("drill", false) ? "yes" : "no"});
        for (const auto& p : s.value("problems", json::array()))
            if (p.is_string())
                problems += fmt::format("  {}@{}: {}\n", printable(string_of(s, "repository")), printable(id),
                                        printable(p.get<std::string>()));
    }
    std::string out = render_columns({"REPOSITORY", "SNAPSHOT", "RESULT", "DRILL"}, rows, {});
    const json summary = result.value("summary", json::object());
    out += fmt::format("\n{} snapshots checked: {} ok, {} failed\n", count_of(summary, "checked"),
                       count_of(summary, "ok"), count_of(summary, "failed"));
    if (!problems.empty())
        out += "problems:\n" + problems;
    const json leftovers = result.value("leftovers", json::object());
    if (auto n = count_of(leftovers, "count"); n > 0)
        out += fmt::format("{} leftover object{} in storage ({}); `snapshotter gc` removes them\n", n,
                           n == 1 ? "" : "s", human_bytes(count_of(leftovers, "bytes")));
    return out;
}

std::string render_prune_table(const nlohmann::json& result) {
    const bool dry = result.value("dry_run", false);
    std::string out;
    for (const auto& r : result.value("repositories", json::array())) {
        std::string name = printable(string_of(r, "name"));
        if (string_of(r, "status") == "failed" && !r.contains("keep")) {
            out += fmt::format("{}: FAILED: {}: {}\n\n", name, printable(string_of(r, "error")),
                               printable(string_of(r, "message")));
            continue;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& k : r.value("keep", json::array())) {
            std::vector<std::string> reasons;
            for (const auto& reason : k.value("reasons", json::array()))
                if (reason.is_string())
                    reasons.push_back(reason.get<std::string>());
            rows.push_back(
                {string_of(k, "snapshot_id"), "keep", fmt::format("{}", fmt::join(reasons, ", "))});
        }
        for (const auto& d : r.value("drop", json::array()))
            rows.push_back(
                {d.is_string() ? d.get<std::string>() : d.dump(), dry ? "would drop" : "drop", ""});
        out += fmt::format("{}: keep {} of {} snapshots, {} {}\n", name,
                           r.value("keep", json::array()).size(), number_of(r, "snapshots"),
                           dry ? "would free" : "freed", bytes_cell(r, "bytes_freed"));
        out += render_columns({"SNAPSHOT", "ACTION", "KEPT BECAUSE"}, rows, {}) + "\n";
    }
    const json summary = result.value("summary", json::object());
    out += fmt::format(
        "{}{} repositories: {} snapshots kept, {} dropped, {} {}{}\n", dry ? "dry run, " : "",
        count_of(summary, "total"), count_of(summary, "kept"), count_of(summary, "dropped"),
        human_bytes(count_of(summary, dry ? "bytes_freed" : "bytes_deleted")),
        dry ? "would be freed" : "freed",
        count_of(summary, "failed") > 0 ? fmt::format("; {} failed", count_of(summary, "failed")) : "");
    if (auto missing = result.value("pinned_not_found", json::array()); !missing.empty())
        out += fmt::format("pinned snapshots no repository has: {}\n", printable(missing.dump()));
    return out;
}

std::string render_gc_table(const nlohmann::json& result) {
    const bool dry = result.value("dry_run", false);
    const json removed = result.value("removed", json::object());
    std::vector<std::vector<std::string>> rows;
    for (const auto& item : removed.value("items", json::array()))
        rows.push_back({string_of(item, "kind"), string_of(item, "key"), bytes_cell(item, "bytes"),
                        item.value("age_s", json(nullptr)).is_number()
                            ? duration_text(json(item.at("age_s").get<double>() * 1000))
                            : ""});
    std::string out;
    if (!rows.empty())
        out += render_columns({"KIND", "KEY", "SIZE", "IDLE"}, rows,
                              {Align::left, Align::left, Align::right, Align::right}) +
               "\n";
    out +=
        fmt::format("{} {} leftover{} ({})\n", dry ? "would remove" : "removed", count_of(removed, "count"),
                    count_of(removed, "count") == 1 ? "" : "s", human_bytes(count_of(removed, "bytes")));
    const json young = result.value("kept_young", json::object());
    if (auto n = count_of(young, "count"); n > 0)
        out += fmt::format("kept {} younger than {} s ({})\n", n, number_of(result, "min_age_s"),
                           human_bytes(count_of(young, "bytes")));
    for (const auto& p : result.value("problems", json::array()))
        out += fmt::format("problem: {}\n", printable(p.is_string() ? p.get<std::string>() : p.dump()));
    return out;
}

std::string render_result(const nlohmann::json& result) {
    const std::string action = string_of(result, "action");
    if (action == "list")
        return render_list_table(result);
    if (action == "snapshot")
        return render_snapshot_table(result);
    if (action == "restore")
        return render_restore_table(result);
    if (action == "verify")
        return render_verify_table(result);
    if (action == "prune")
        return render_prune_table(result);
    if (action == "gc")
        return render_gc_table(result);
    return result.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

} // namespace snapshotter::cli
